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
