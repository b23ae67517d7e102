//! `/webhooks/wemeet`: Tencent's URL check and event deliveries, signed as Tencent signs them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretString;
use wemeet_gateway::clock::unix_now;
use wemeet_gateway::webhooks::delivery::{WebhookKeys, signature_of};

use crate::helpers::{TestGateway, problem, start_gateway, start_gateway_with, start_simulator};

const TOKEN: &str = "webhook-test-token-3b7f";

async fn gateway_with_webhooks(aes_key: Option<&str>) -> TestGateway {
    let keys = WebhookKeys::new(
        SecretString::from(TOKEN),
        aes_key.map(SecretString::from).as_ref(),
    )
    .unwrap();
    start_gateway_with(start_simulator(100_000).await, |settings| {
        settings.webhooks = Some(keys);
    })
    .await
}

fn now_ms() -> String {
    unix_now().as_millis().to_string()
}

/// A request to the webhook URL with Tencent's headers, signed over `data` unless a signature
/// is given.
fn signed(
    gateway: &TestGateway,
    method: reqwest::Method,
    url: &str,
    timestamp: &str,
    data: &str,
) -> reqwest::RequestBuilder {
    let nonce = "829371";
    gateway
        .http
        .request(method, format!("{}{url}", gateway.base_url))
        .header("timestamp", timestamp)
        .header("nonce", nonce)
        .header("signature", signature_of(TOKEN, timestamp, nonce, data))
}

fn event(trace_id: &str) -> String {
    BASE64.encode(format!(
        r#"{{"event":"meeting.participant-joined","trace_id":"{trace_id}","payload":[{{"operate_time":1609239040864,"operator":{{"userid":"u9","uuid":"WM9","user_name":"王五","instance_id":"1"}},"meeting_info":{{"meeting_id":"100000000000000001"}}}}]}}"#
    ))
}

async fn deliver(gateway: &TestGateway, data: &str) -> reqwest::Response {
    signed(
        gateway,
        reqwest::Method::POST,
        "/webhooks/wemeet",
        &now_ms(),
        data,
    )
    .json(&serde_json::json!({ "data": data }))
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn without_a_token_the_route_is_not_found() {
    let gateway = start_gateway().await;
    for response in [
        gateway
            .get_without_key("/webhooks/wemeet?check_str=YQ")
            .await,
        deliver(&gateway, &event("t0")).await,
    ] {
        let (status, body) = problem(response).await;
        assert_eq!(status, 404);
        assert_eq!(body["type"], "urn:wemeet-gateway:problem:not-found");
    }
}

#[tokio::test]
async fn the_url_check_answers_the_decoded_check_str_and_nothing_else() {
    let gateway = gateway_with_webhooks(None).await;
    // Base64 with a '+' in it, percent-encoded as Tencent sends it.
    let plaintext = "check-7+ok ?";
    let check_str = BASE64.encode(plaintext);
    assert!(check_str.contains('+') || check_str.contains('/') || check_str.contains('='));
    let encoded =
        percent_encoding::utf8_percent_encode(&check_str, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let response = signed(
        &gateway,
        reqwest::Method::GET,
        &format!("/webhooks/wemeet?check_str={encoded}"),
        &now_ms(),
        &check_str,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.bytes().await.unwrap(), plaintext.as_bytes());
}

#[tokio::test]
async fn an_event_is_acknowledged_with_tencent_s_exact_text_once() {
    let gateway = gateway_with_webhooks(None).await;
    let data = event("trace-ack-1");
    for _ in 0..2 {
        let response = deliver(&gateway, &data).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.bytes().await.unwrap(),
            "successfully received callback".as_bytes()
        );
    }
    // Processed once; Tencent's retry of the same trace_id recognised.
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(
            r#"gateway_webhook_events_total{kind="participant_joined",outcome="repeated"}"#
        ),
        "{metrics}"
    );
    assert_eq!(gateway.upstream_calls(), 0);
}

#[tokio::test]
async fn encrypted_deliveries_decrypt_with_the_encoding_aes_key() {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeEncrypt as _, KeyIvInit as _};
    let encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let gateway = gateway_with_webhooks(Some(encoding_aes_key)).await;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let key: [u8; 32] = lenient
        .decode(format!("{encoding_aes_key}="))
        .unwrap()
        .try_into()
        .unwrap();
    let iv: [u8; 16] = key[..16].try_into().unwrap();
    let plaintext = BASE64.decode(event("trace-aes-1")).unwrap();
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(&plaintext);
    let response = deliver(&gateway, &BASE64.encode(ciphertext)).await;
    assert_eq!(response.status(), 200);
    // The same event unencrypted does not decrypt: refused as unreadable, not misread.
    let (status, body) = problem(deliver(&gateway, &event("trace-aes-2")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "urn:wemeet-gateway:problem:webhook-undecodable"
    );
}

#[tokio::test]
async fn forged_stale_or_unreadable_deliveries_are_refused() {
    let gateway = gateway_with_webhooks(None).await;
    let data = event("trace-refused");
    let post = |timestamp: &str, signature: &str, body: serde_json::Value| {
        gateway
            .http
            .post(format!("{}/webhooks/wemeet", gateway.base_url))
            .header("timestamp", timestamp.to_owned())
            .header("nonce", "1")
            .header("signature", signature.to_owned())
            .json(&body)
    };
    let now = now_ms();
    let good = signature_of(TOKEN, &now, "1", &data);
    let stale = (unix_now().as_millis() - 6 * 60 * 1000).to_string();
    let refusals = [
        // Signed with another token.
        post(
            &now,
            &signature_of("not-the-token", &now, "1", &data),
            serde_json::json!({"data": data}),
        ),
        // A signature for other data.
        post(&now, &good, serde_json::json!({"data": event("other")})),
        // Six minutes old, though correctly signed.
        post(
            &stale,
            &signature_of(TOKEN, &stale, "1", &data),
            serde_json::json!({"data": data}),
        ),
        // No data to verify.
        post(&now, &good, serde_json::json!({"date": data})),
    ];
    for request in refusals {
        let (status, body) = problem(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["type"], "urn:wemeet-gateway:problem:webhook-signature");
        assert!(
            !body.to_string().contains(&good),
            "no expected signature is told"
        );
    }
    // Without the headers at all.
    let bare = gateway
        .http
        .post(format!("{}/webhooks/wemeet", gateway.base_url))
        .json(&serde_json::json!({"data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    // Correctly signed, but truncated: not an event.
    let truncated = &data[..data.len() - 8];
    let (status, body) = problem(deliver(&gateway, truncated).await).await;
    assert_eq!(status, 400, "{body}");
    // Over 1 MiB.
    let huge = "A".repeat(1024 * 1024 + 1);
    let (status, body) = problem(deliver(&gateway, &huge).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["type"], "urn:wemeet-gateway:problem:payload-too-large");
    // None of it reached the event processing.
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("gateway_webhook_refused_total"),
        "{metrics}"
    );
}

fn encoded(event: serde_json::Value) -> String {
    BASE64.encode(event.to_string())
}

fn participant_event(kind: &str, trace_id: &str, uuid: &str, at_ms: i64) -> String {
    encoded(serde_json::json!({
        "event": kind,
        "trace_id": trace_id,
        "payload": [{
            "operate_time": at_ms,
            "operator": {"userid": "u-evt", "uuid": uuid, "user_name": "赵六", "instance_id": "2",
                         "ms_open_id": "ms-evt", "open_id": ""},
            "meeting_info": {"meeting_id": LIVE, "meeting_type": 0}
        }]
    }))
}

const LIVE: &str = "100000000000000001";
const LIVE_LIST: &str = "/meetings/100000000000000001/participants";

/// The live list's records with this uuid, polled until `done` says so (at most 2 s).
async fn records_of(
    gateway: &TestGateway,
    uuid: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> (Vec<serde_json::Value>, String) {
    let started = std::time::Instant::now();
    loop {
        let response = gateway.get(LIVE_LIST).await;
        let status = response.headers()["cache-status"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        let found: Vec<serde_json::Value> = body["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["uuid"] == uuid)
            .cloned()
            .collect();
        if done(&found) || started.elapsed() > std::time::Duration::from_secs(2) {
            return (found, status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn joins_and_leaves_show_in_the_cached_list_within_two_seconds_without_upstream_calls() {
    let gateway = gateway_with_webhooks(None).await;
    let before = gateway.get(LIVE_LIST).await;
    let etag = before.headers()["etag"].clone();
    assert_eq!(gateway.upstream_calls(), 13);

    let joined_at = 1_700_000_000_000_i64;
    let join = participant_event(
        "meeting.participant-joined",
        "trace-join",
        "WM-evt",
        joined_at,
    );
    assert_eq!(deliver(&gateway, &join).await.status(), 200);
    let (found, status) = records_of(&gateway, "WM-evt", |r| !r.is_empty()).await;
    assert_eq!(found.len(), 1, "the join shows within 2 s");
    let record = &found[0];
    assert_eq!(record["provisional"], true);
    assert_eq!(record["user_name"], "赵六");
    assert_eq!(record["user_name_base64"], BASE64.encode("赵六"));
    assert_eq!(record["join_time"], joined_at / 1000);
    assert_eq!(record["instanceid"], 2);
    assert!(record["left_time"].is_null());
    assert!(status.contains("hit; detail=patched"), "{status}");
    let after = gateway.get(LIVE_LIST).await;
    assert_ne!(after.headers()["etag"], etag, "the ETag follows the bytes");

    // Tencent's retry of the same delivery changes nothing.
    assert_eq!(deliver(&gateway, &join).await.status(), 200);
    let leave = participant_event(
        "meeting.participant-left",
        "trace-leave",
        "WM-evt",
        joined_at + 60_000,
    );
    assert_eq!(deliver(&gateway, &leave).await.status(), 200);
    let (found, _) = records_of(&gateway, "WM-evt", |r| {
        r.iter().any(|p| !p["left_time"].is_null())
    })
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["left_time"], joined_at / 1000 + 60);

    // A forged join changes nothing.
    let forged = participant_event(
        "meeting.participant-joined",
        "trace-forged",
        "WM-forged",
        joined_at,
    );
    let response = gateway
        .http
        .post(format!("{}/webhooks/wemeet", gateway.base_url))
        .header("timestamp", now_ms())
        .header("nonce", "1")
        .header("signature", "0".repeat(40))
        .json(&serde_json::json!({ "data": forged }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (found, _) = records_of(&gateway, "WM-forged", |_| true).await;
    assert!(found.is_empty());
    assert_eq!(gateway.upstream_calls(), 13, "events cost no upstream call");
}

#[tokio::test]
async fn a_reconciliation_replaces_the_provisional_records_with_the_upstream_s() {
    let keys = WebhookKeys::new(SecretString::from(TOKEN), None).unwrap();
    let gateway = start_gateway_with(start_simulator(100_000).await, |settings| {
        settings.webhooks = Some(keys);
        settings.cache.ttl_live = std::time::Duration::from_secs(1);
        settings.events_reconcile = std::time::Duration::from_secs(4);
    })
    .await;
    assert_eq!(gateway.get(LIVE_LIST).await.status(), 200);
    let fetched = std::time::Instant::now();
    let join = participant_event(
        "meeting.participant-joined",
        "trace-reconcile",
        "WM-gone",
        1_700_000_000_000,
    );
    assert_eq!(deliver(&gateway, &join).await.status(), 200);
    let (found, _) = records_of(&gateway, "WM-gone", |r| !r.is_empty()).await;
    assert_eq!(found.len(), 1);
    // Patched, the list stays fresh until 4 s after its fetch, not 1 s: at 2 s it is still the
    // patched copy, with no upstream call.
    tokio::time::sleep(std::time::Duration::from_secs(2).saturating_sub(fetched.elapsed())).await;
    let (found, status) = records_of(&gateway, "WM-gone", |_| true).await;
    assert_eq!(found.len(), 1, "{status}");
    assert!(status.contains("hit; detail=patched"), "{status}");
    assert_eq!(gateway.upstream_calls(), 13);
    // Then it is fetched whole, and the upstream knows no such person.
    let started = std::time::Instant::now();
    loop {
        let response = gateway.get(LIVE_LIST).await;
        let body: serde_json::Value = response.json().await.unwrap();
        let still = body["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["uuid"] == "WM-gone");
        if !still {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not reconciled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(gateway.upstream_calls(), 26, "one fetch to reconcile");
    // Counted as a reconciliation (the process's registry is shared by the tests in it).
    let metrics = gateway.metrics().await;
    let replaced = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("gateway_webhook_reconciliations_total{outcome=\"replaced\"} ")
        })
        .and_then(|count| count.parse::<u64>().ok());
    assert!(replaced.is_some_and(|n| n >= 1), "{metrics}");
}

#[tokio::test]
async fn a_meeting_s_end_leads_to_one_final_fetch() {
    let gateway = gateway_with_webhooks(None).await;
    assert_eq!(gateway.get(LIVE_LIST).await.status(), 200);
    let end = encoded(serde_json::json!({
        "event": "meeting.end",
        "trace_id": "trace-end",
        "payload": [{"operate_time": 1_700_000_000_000_i64, "meeting_info": {"meeting_id": LIVE}}]
    }));
    assert_eq!(deliver(&gateway, &end).await.status(), 200);
    // Tencent's list may lag the event: the fetch comes about 10 s later, once.
    let started = std::time::Instant::now();
    while gateway.upstream_calls() == 13 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no final fetch"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(gateway.upstream_calls(), 26);
}

#[tokio::test]
async fn the_simulator_s_live_meeting_reaches_the_gateway_as_events() {
    use wemeet_gateway::simulator::events::EventFeed;
    let gateway = gateway_with_webhooks(None).await;
    let before: serde_json::Value = gateway.get(LIVE_LIST).await.json().await.unwrap();
    let open_before: Vec<serde_json::Value> = before["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["left_time"].is_null())
        .map(|p| p["uuid"].clone())
        .collect();
    gateway.upstream.simulator.start_events(EventFeed {
        url: format!("{}/webhooks/wemeet", gateway.base_url),
        keys: WebhookKeys::new(SecretString::from(TOKEN), None).unwrap(),
        every: std::time::Duration::from_millis(300),
    });
    // The first change is a join: it shows in the cached list, with no upstream call.
    let started = std::time::Instant::now();
    let mut closed = None;
    let mut joined = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        let body: serde_json::Value = gateway.get(LIVE_LIST).await.json().await.unwrap();
        let records = body["participants"].as_array().unwrap().clone();
        joined = records
            .iter()
            .filter(|p| p["provisional"] == true)
            .cloned()
            .collect();
        // Someone who was in before the events started, and has left since.
        closed = records
            .iter()
            .find(|p| !p["left_time"].is_null() && open_before.contains(&p["uuid"]))
            .cloned();
        if !joined.is_empty() && closed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!joined.is_empty(), "a join reached the cached list");
    let closed = closed.expect("a leave reached the cached list");
    assert_eq!(gateway.upstream_calls(), 13);
    // The simulator's own list has the same changes, for the next fetch to find.
    let stored: Vec<serde_json::Value> = crate::helpers::get_json(
        &gateway.http,
        &format!(
            "{}/_simulator/meetings/{LIVE}/records",
            gateway.upstream.base_url
        ),
    )
    .await;
    assert!(stored.iter().any(|r| r["uuid"] == joined[0]["uuid"]));
    let left = stored.iter().find(|r| r["uuid"] == closed["uuid"]).unwrap();
    assert_eq!(left["left_time"], closed["left_time"].to_string());
}
