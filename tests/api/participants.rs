//! `GET /meetings/{id}/participants` through the real gateway, against the simulator.

use base64::Engine as _;
use serde_json::Value;
use wemeet_gateway::simulator::Fault;
use wemeet_gateway::simulator::demo::{
    HUGE_MEETING, LIVE_MEETING, NOT_STARTED_MEETING, OUTSIDER, RECURRING_MEETING, SEED_MEETING,
    SUB_MEETINGS,
};

use crate::helpers::*;

/// What the gateway must answer for one stored record: same fields, times as integers,
/// `left_time` null while still in, the name decoded beside its base64.
fn expected(record: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let name_b64 = record["user_name"].as_str();
    let name = name_b64.map(|b| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let time = |v: &Value| match v.as_str() {
        Some("") | None => Value::Null,
        Some(t) => Value::from(t.parse::<i64>().unwrap()),
    };
    for field in [
        "userid",
        "ms_open_id",
        "uuid",
        "open_id",
        "is_enterprise_user",
        "phone",
        "instanceid",
        "user_role",
        "webinar_member_role",
        "IP",
        "location",
        "link_type",
        "join_type",
        "net",
        "app_version",
        "audio_state",
        "video_state",
        "screen_shared_state",
        "customer_data",
    ] {
        out.insert(
            field.into(),
            record.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    out.insert("user_name".into(), name.map_or(Value::Null, Value::from));
    out.insert(
        "user_name_base64".into(),
        name_b64.map_or(Value::Null, Value::from),
    );
    out.insert("join_time".into(), time(&record["join_time"]));
    out.insert("left_time".into(), time(&record["left_time"]));
    Value::Object(out)
}

fn stored(gateway: &TestGateway, meeting: &str, sub: Option<&str>) -> Vec<Value> {
    gateway.upstream.simulator.dataset().meetings[meeting]
        .records(sub)
        .unwrap()
        .iter()
        .map(|r| expected(&serde_json::from_str(r.json.get()).unwrap()))
        .collect()
}

async fn list(gateway: &TestGateway, path: &str) -> Value {
    let response = gateway.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    assert!(response.headers().contains_key("x-request-id"));
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_demo_meeting_returns_exactly_the_stored_records_decoded_and_typed() {
    let gateway = start_gateway().await;
    for meeting in [SEED_MEETING, LIVE_MEETING] {
        let body = list(&gateway, &format!("/meetings/{meeting}/participants")).await;
        assert_eq!(
            body["participants"].as_array().unwrap(),
            &stored(&gateway, meeting, None)
        );
        assert_eq!(body["complete"], true);
        assert_eq!(body["incomplete_reason"], Value::Null);
        assert_eq!(body["meeting_id"], meeting);
        assert!(body["schedule_start_time"].is_i64());
    }
    for sub in SUB_MEETINGS {
        let path = format!("/meetings/{RECURRING_MEETING}/participants?sub_meeting_id={sub}");
        let body = list(&gateway, &path).await;
        let records = stored(&gateway, RECURRING_MEETING, Some(sub));
        assert_eq!(body["participants"].as_array().unwrap(), &records);
    }
    let live = list(&gateway, &format!("/meetings/{LIVE_MEETING}/participants")).await;
    let still_in = live["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["left_time"].is_null());
    assert!(still_in.count() > 0, "the live meeting has people still in");
    let names: Vec<&str> = live["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["user_name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.contains('\u{fffd}')),
        "invalid UTF-8 is replaced"
    );
    assert!(
        names.iter().any(|n| n.contains("张")),
        "Chinese names decode"
    );
}

#[tokio::test]
async fn the_capped_meeting_is_50000_records_marked_incomplete() {
    // 500 upstream pages: on a loaded machine that may outlast the default 20 s wait (a 202).
    let gateway = start_gateway_with(start_simulator(100_000).await, |c| {
        c.cache.fetch_wait = std::time::Duration::from_secs(300);
        c.request_timeout = std::time::Duration::from_secs(310);
    })
    .await;
    let body = list(&gateway, &format!("/meetings/{HUGE_MEETING}/participants")).await;
    assert_eq!(body["participants"].as_array().unwrap().len(), 50_000);
    assert_eq!(body["complete"], false);
    assert!(
        body["incomplete_reason"]
            .as_str()
            .unwrap()
            .contains("50000")
    );
    assert_eq!(body["total_count"], 60_000);
}

#[tokio::test]
async fn a_meeting_not_started_is_an_empty_complete_list() {
    let gateway = start_gateway().await;
    let body = list(
        &gateway,
        &format!("/meetings/{NOT_STARTED_MEETING}/participants"),
    )
    .await;
    assert_eq!(body["participants"], serde_json::json!([]));
    assert_eq!(body["complete"], true);
}

#[tokio::test]
async fn a_recurring_meeting_without_sub_meeting_is_a_400_naming_it() {
    let gateway = start_gateway().await;
    let response = gateway
        .get(&format!("/meetings/{RECURRING_MEETING}/participants"))
        .await;
    let (status, body) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["parameter"], "sub_meeting_id");
    assert_eq!(body["upstream_code"], 190004);
}

#[tokio::test]
async fn malformed_input_is_a_400_naming_the_parameter_and_never_reaches_the_upstream() {
    let gateway = start_gateway().await;
    let live = format!("/meetings/{LIVE_MEETING}/participants");
    let cases = [
        ("/meetings/abc/participants".to_owned(), "meeting_id"),
        ("/meetings/1%2F2/participants".into(), "meeting_id"),
        ("/meetings/..%2F..%2Fv1/participants".into(), "meeting_id"),
        (
            format!("/meetings/{}/participants", "9".repeat(33)),
            "meeting_id",
        ),
        (format!("{live}?userid=..%2Fadmin"), "userid"),
        (format!("{live}?userid=a%26pos%3D9"), "userid"),
        (format!("{live}?userid=a%3Fsize%3D1"), "userid"),
        (format!("{live}?userid=a%23b"), "userid"),
        (format!("{live}?userid={}", "u".repeat(65)), "userid"),
        (format!("{live}?userid="), "userid"),
        (format!("{live}?sub_meeting_id=1%2F2"), "sub_meeting_id"),
        (format!("{live}?sub_meeting_id=..%2F"), "sub_meeting_id"),
        (format!("{live}?start_time=abc"), "start_time"),
        (format!("{live}?end_time=1%26x"), "end_time"),
        (format!("{live}?start_time=20&end_time=10"), "start_time"),
        (
            format!("{live}?start_time=0&end_time={}", 372 * 86400 + 1),
            "end_time",
        ),
        (format!("{live}?start_time=0"), "start_time"),
        (format!("{live}?end_time=1"), "end_time"),
        (format!("{live}?userid=%E5%BC%A0%E4%B8%89"), "userid"),
        (format!("{live}?operator_id=r1"), "operator_id_type"),
        (
            format!("{live}?operator_id=r1%26x&operator_id_type=3"),
            "operator_id",
        ),
        (
            format!("{live}?operator_id=r1&operator_id_type=9"),
            "operator_id_type",
        ),
        (
            format!("{live}?userid=a&operator_id=b&operator_id_type=3"),
            "operator_id",
        ),
        (format!("{live}?userid=a&userid=b"), "userid"),
        (format!("{live}?format=pdf"), "format"),
        (format!("{live}?still_in=1"), "still_in"),
        (format!("{live}?tz=Asia%2FNowhere"), "tz"),
        (format!("{live}?format=csv&format=json"), "format"),
    ];
    for (path, parameter) in &cases {
        let (status, body) = problem(gateway.get(path).await).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some(*parameter)),
            "{path}: {body}"
        );
    }
    assert_eq!(gateway.upstream_calls(), 0, "no input reached the upstream");
}

#[tokio::test]
async fn unknown_routes_methods_and_bodies_answer_problem_json() {
    let gateway = start_gateway().await;
    let (status, _) = problem(gateway.get("/nowhere").await).await;
    assert_eq!(status, 404);
    let response = gateway
        .http
        .post(format!("{}/meetings/1/participants", gateway.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.0, 405);
    // No route takes a body; a large one is refused before any handler, as a problem too.
    let response = gateway
        .http
        .get(format!("{}/meetings/1/participants", gateway.base_url))
        .bearer_auth(API_KEY)
        .body(vec![b'x'; 17 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 413);
    assert_eq!(body["type"], "urn:wemeet-gateway:problem:payload-too-large");
    // A chunked body has no length to refuse up front: it is read, up to the limit.
    for method in ["GET", "DELETE"] {
        let path = match method {
            "GET" => "/meetings/1/participants",
            _ => "/meetings/1/participants/cache",
        };
        let head = chunked_request(&gateway, method, path, 10 * 1024 * 1024).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{method}: {head}");
        let small = chunked_request(&gateway, method, path, 100).await;
        assert!(!small.starts_with("HTTP/1.1 413"), "{method}: {small}");
    }
    assert_eq!(
        gateway.upstream_calls(),
        1,
        "only the GET with a small body went on"
    );
}

/// Sends `method path` with a chunked body of `bytes` bytes over a raw connection; the answer's
/// head. Writing stops when the gateway answers early and closes.
async fn chunked_request(gateway: &TestGateway, method: &str, path: &str, bytes: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = gateway.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += n;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Injects a fault and returns the gateway's answer for the seed meeting.
async fn answer_with_fault(fault: Fault) -> (u16, Value, Option<String>) {
    // Long enough for the client to wait out per-minute limits before answering.
    let gateway = start_gateway_with(start_simulator(100_000).await, |c| {
        c.request_timeout = std::time::Duration::from_secs(600);
        c.cache.fetch_wait = std::time::Duration::from_secs(590);
    })
    .await;
    gateway.upstream.simulator.inject(fault);
    let response = gateway
        .get(&format!("/meetings/{SEED_MEETING}/participants"))
        .await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = problem(response).await;
    (status, body, retry_after)
}

fn error(code: i64) -> Fault {
    Fault {
        error_code: Some(code),
        ..Fault::default()
    }
}

#[tokio::test(start_paused = true)]
async fn every_upstream_failure_class_has_its_status_and_type() {
    let cases = [
        (error(9003), 404, "meeting-not-found", false),
        (error(9042), 403, "operator-forbidden", false),
        (error(190004), 400, "upstream-rejected-parameter", false),
        (error(200003), 502, "gateway-misconfigured", false),
        (error(190303), 502, "gateway-misconfigured", false),
        (error(190300), 502, "gateway-misconfigured", false),
        (error(190310), 503, "upstream-rate-limited", true),
        (error(190311), 503, "upstream-rate-limited", true),
        (error(41), 502, "upstream-unavailable", false),
        (
            Fault {
                http_status: Some(503),
                ..Fault::default()
            },
            502,
            "upstream-unavailable",
            false,
        ),
        (
            Fault {
                malformed: true,
                ..Fault::default()
            },
            502,
            "upstream-invalid-response",
            false,
        ),
        (error(123456), 502, "upstream-error", false),
    ];
    for (fault, status, kind, retry_after) in cases {
        let code = fault.error_code;
        let (got, body, retry) = answer_with_fault(fault).await;
        assert_eq!(got, status, "{code:?}: {body}");
        assert!(
            body["type"].as_str().unwrap().ends_with(kind),
            "{code:?}: {body}"
        );
        assert_eq!(retry.is_some(), retry_after, "{code:?}");
        if let Some(code) = code {
            assert_eq!(body["upstream_code"], code);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_upstream_slower_than_the_deadline_is_a_504() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(Fault {
        latency_ms: Some(60_000),
        ..Fault::default()
    });
    let mut client_config = client_config(&upstream);
    client_config.list_deadline = std::time::Duration::from_secs(20);
    let gateway = start_gateway_with(upstream, |c| {
        c.upstream = client_config;
        c.cache.fetch_wait = std::time::Duration::from_secs(30);
    })
    .await;
    let path = format!("/meetings/{SEED_MEETING}/participants");
    let (status, body) = problem(gateway.get(&path).await).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["type"], "urn:wemeet-gateway:problem:upstream-timeout");
}

#[tokio::test]
async fn real_refusals_from_the_upstream_are_classified() {
    let gateway = start_gateway().await;
    let (status, _) = problem(gateway.get("/meetings/999999/participants").await).await;
    assert_eq!(status, 404);
    let path = format!("/meetings/{LIVE_MEETING}/participants?userid={OUTSIDER}");
    assert_eq!(problem(gateway.get(&path).await).await.0, 403);
}

#[tokio::test]
async fn callers_need_a_valid_key_but_health_and_metrics_are_open() {
    let gateway = start_gateway().await;
    let url = format!("{}/meetings/{SEED_MEETING}/participants", gateway.base_url);
    let without = gateway.http.get(&url).send().await.unwrap();
    assert_eq!(
        without.headers()["www-authenticate"],
        r#"Bearer realm="wemeet-gateway""#
    );
    assert_eq!(problem(without).await.0, 401);
    for header in [
        "Bearer wrong-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer a b",
        "bearer",
    ] {
        let response = gateway
            .http
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(problem(response).await.0, 401, "{header}");
    }
    assert_eq!(gateway.upstream_calls(), 0);
    // The scheme's case does not matter (RFC 9110 11.1).
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = gateway
            .http
            .get(&url)
            .header("authorization", format!("{scheme} {API_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    for open in ["/healthz", "/readyz", "/metrics"] {
        let response = gateway.get_without_key(open).await;
        assert_eq!(response.status(), 200, "{open}");
    }
}

#[tokio::test]
async fn anonymous_access_works_only_when_switched_on() {
    let gateway = start_gateway_with(start_simulator(100_000).await, |c| {
        c.api_key_digests.clear();
        c.allow_anonymous = true;
    })
    .await;
    let url = format!("{}/meetings/{SEED_MEETING}/participants", gateway.base_url);
    assert_eq!(gateway.http.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let gateway = start_gateway().await;
    let url = format!("{}/healthz", gateway.base_url);
    let response = gateway
        .http
        .get(&url)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = gateway.http.get(&url).send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn readiness_fails_while_the_upstream_rejects_our_credentials() {
    let gateway = start_gateway().await;
    let readyz = format!("{}/readyz", gateway.base_url);
    assert_eq!(
        gateway.http.get(&readyz).send().await.unwrap().status(),
        200
    );
    gateway.upstream.simulator.inject(error(200003));
    gateway
        .get(&format!("/meetings/{SEED_MEETING}/participants"))
        .await;
    let response = gateway.http.get(&readyz).send().await.unwrap();
    assert_eq!(response.status(), 503);
    gateway.upstream.simulator.clear_faults();
    gateway
        .get(&format!("/meetings/{SEED_MEETING}/participants"))
        .await;
    assert_eq!(
        gateway.http.get(&readyz).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn metrics_count_requests_and_upstream_calls() {
    let gateway = start_gateway().await;
    gateway
        .get(&format!("/meetings/{LIVE_MEETING}/participants"))
        .await;
    let text = gateway.metrics().await;
    for name in [
        "gateway_http_requests_total{",
        "route=\"/meetings/{meeting_id}/participants\"",
        "gateway_upstream_calls_total{outcome=\"ok\"}",
        "gateway_upstream_call_duration_seconds_bucket",
        "gateway_upstream_pages_per_fetch_bucket",
        "gateway_upstream_quota_available_calls",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(!text.contains(API_KEY) && !text.contains("test-secret-key"));
}

#[tokio::test(start_paused = true)]
async fn the_gateways_own_request_timeout_is_a_504_problem() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(Fault {
        latency_ms: Some(5_000),
        ..Fault::default()
    });
    let gateway = start_gateway_with(upstream, |c| {
        c.request_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let (status, body) = problem(
        gateway
            .get(&format!("/meetings/{SEED_MEETING}/participants"))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str().unwrap()),
        (504, "urn:wemeet-gateway:problem:timeout")
    );
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let gateway = start_gateway_with(start_simulator(100_000).await, |c| {
        c.cors_origins = vec![reqwest::header::HeaderValue::from_static(
            "https://app.example.com",
        )];
    })
    .await;
    let url = format!("{}/meetings/{SEED_MEETING}/participants", gateway.base_url);
    let preflight = |origin: &'static str| {
        gateway
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization,if-none-match,cache-control,x-request-id",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in [
        "authorization",
        "if-none-match",
        "cache-control",
        "x-request-id",
    ] {
        assert!(
            allowed_headers.contains(header),
            "{header}: {allowed_headers}"
        );
    }
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// A fresh hit is answered before the router; the same hit asked through the router (the id
/// percent-encoded, which only the router decodes) answers the same: status, body and every
/// header, in both codings, and a 304 to its validator.
#[tokio::test]
async fn a_hit_answers_the_same_before_the_router_as_through_it() {
    let gateway = start_gateway().await;
    let front = format!("{}/meetings/{SEED_MEETING}/participants", gateway.base_url);
    let encoded: String = SEED_MEETING.bytes().map(|b| format!("%{b:02X}")).collect();
    let routed = format!("{}/meetings/{encoded}/participants", gateway.base_url);
    let key = format!("Bearer {}", gateway.api_key);
    let miss = gateway.http.get(&front).header("authorization", &key);
    assert_eq!(miss.send().await.unwrap().status(), 200);
    // What may differ between two answers a moment apart: the time, and the freshness left.
    let comparable = |response: &reqwest::Response| -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "date" | "age"))
            .map(|(name, value)| {
                let value = value.to_str().unwrap();
                let value = value.split("; ttl=").next().unwrap();
                (name.to_string(), value.to_owned())
            })
            .collect();
        headers.sort();
        headers
    };
    for gzip in [false, true] {
        let get = |url: &str, etag: Option<&str>| {
            let mut request = gateway
                .http
                .get(url)
                .header("authorization", &key)
                .header("x-request-id", "same-id");
            if gzip {
                request = request.header("accept-encoding", "gzip");
            }
            if let Some(etag) = etag {
                request = request.header("if-none-match", etag);
            }
            request.send()
        };
        let fast = get(&front, None).await.unwrap();
        let full = get(&routed, None).await.unwrap();
        assert_eq!((fast.status().as_u16(), full.status().as_u16()), (200, 200));
        let headers = comparable(&fast);
        assert_eq!(headers, comparable(&full), "gzip: {gzip}");
        assert!(headers.contains(&("x-request-id".into(), "same-id".into())));
        assert!(headers.contains(&("cache-status".into(), "wemeet-gateway; hit".into())));
        let etag = fast.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(fast.bytes().await.unwrap(), full.bytes().await.unwrap());
        let fast = get(&front, Some(&etag)).await.unwrap();
        let full = get(&routed, Some(&etag)).await.unwrap();
        assert_eq!((fast.status().as_u16(), full.status().as_u16()), (304, 304));
        assert_eq!(comparable(&fast), comparable(&full));
    }
    // Without an id of its own, each answer gets a new one.
    let fast = gateway.http.get(&front).header("authorization", &key);
    let fast = fast.send().await.unwrap();
    assert_eq!(fast.status(), 200);
    assert_eq!(fast.headers()["x-request-id"].len(), 36);
}
