//! The simulator checks requests the way Tencent does and pages like the real API.

use http::HeaderMap;
use serde_json::Value;
use wemeet_gateway::clock::unix_now;
use wemeet_gateway::simulator::demo::{LIVE_MEETING, NOT_STARTED_MEETING};
use wemeet_gateway::upstream::signing::signed_headers;

use crate::helpers::*;

const TARGET: &str = "/v1/meetings/100000000000000001/participants?userid=owner1&pos=0&size=100";

fn now() -> u64 {
    unix_now().as_secs()
}

async fn get(base_url: &str, target: &str, headers: HeaderMap) -> (u16, Value) {
    let response = http_client()
        .get(format!("{base_url}{target}"))
        .headers(headers)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn error_code(body: &Value) -> i64 {
    body["error_info"]["error_code"].as_i64().unwrap()
}

#[tokio::test]
async fn a_correctly_signed_request_gets_a_page_with_an_opaque_cursor() {
    let upstream = start_simulator(100).await;
    let headers = signed_headers(&credentials(), "GET", TARGET, b"", now(), 7);
    let (status, body) = get(&upstream.base_url, TARGET, headers).await;
    assert_eq!(status, 200);
    assert_eq!(body["participants"].as_array().unwrap().len(), 100);
    assert_eq!(body["has_remaining"], true);
    let next = body["next_pos"].as_i64().unwrap();
    assert_ne!(next, 100, "the cursor is not an offset");
}

#[tokio::test]
async fn tampered_replayed_skewed_and_unknown_requests_get_tencents_errors() {
    let upstream = start_simulator(100).await;
    let base = &upstream.base_url;

    let mut tampered = signed_headers(&credentials(), "GET", TARGET, b"", now(), 11);
    let other = signed_headers(&credentials(), "GET", TARGET, b"", now(), 12);
    tampered.insert("x-tc-signature", other["x-tc-signature"].clone());
    let (status, body) = get(base, TARGET, tampered).await;
    assert_eq!((status, error_code(&body)), (400, 200003));

    let changed_target = TARGET.replace("size=100", "size=99");
    let signed_for_other = signed_headers(&credentials(), "GET", TARGET, b"", now(), 13);
    let (_, body) = get(base, &changed_target, signed_for_other).await;
    assert_eq!(error_code(&body), 200003, "the signature covers the target");

    let once = signed_headers(&credentials(), "GET", TARGET, b"", now(), 14);
    assert_eq!(get(base, TARGET, once.clone()).await.0, 200);
    let (_, body) = get(base, TARGET, once).await;
    assert_eq!(error_code(&body), 190301);

    let skewed = signed_headers(&credentials(), "GET", TARGET, b"", now() - 301, 15);
    let (_, body) = get(base, TARGET, skewed).await;
    assert_eq!(error_code(&body), 190300);

    let stranger = credentials_of(APP_ID, Some(SDK_ID), "AKIDsomeoneelse", SECRET_KEY);
    let (_, body) = get(
        base,
        TARGET,
        signed_headers(&stranger, "GET", TARGET, b"", now(), 16),
    )
    .await;
    assert_eq!(error_code(&body), 190303);

    let wrong_sdk = credentials_of(APP_ID, Some("1"), SECRET_ID, SECRET_KEY);
    let (_, body) = get(
        base,
        TARGET,
        signed_headers(&wrong_sdk, "GET", TARGET, b"", now(), 17),
    )
    .await;
    assert_eq!(error_code(&body), 190303);

    let mut missing = signed_headers(&credentials(), "GET", TARGET, b"", now(), 18);
    missing.remove("x-tc-nonce");
    let (_, body) = get(base, TARGET, missing).await;
    assert_eq!(error_code(&body), 200001);

    let zero_nonce = signed_headers(&credentials(), "GET", TARGET, b"", now(), 0);
    let (_, body) = get(base, TARGET, zero_nonce).await;
    assert_eq!(error_code(&body), 200001, "a nonce is a positive integer");

    let outcomes = upstream.simulator.counters().by_outcome;
    for code in ["200003", "190301", "190300", "190303", "200001"] {
        assert!(outcomes.contains_key(code), "{code}: {outcomes:?}");
    }
}

#[tokio::test]
async fn a_meeting_not_started_answers_without_a_participants_key() {
    let upstream = start_simulator(100).await;
    let target = format!("/v1/meetings/{NOT_STARTED_MEETING}/participants?userid=admin");
    let headers = signed_headers(&credentials(), "GET", &target, b"", now(), 21);
    let (status, body) = get(&upstream.base_url, &target, headers).await;
    assert_eq!(status, 200);
    assert!(body.get("participants").is_none(), "{body}");
    assert_eq!(body["has_remaining"], false);
}

#[tokio::test]
async fn the_per_minute_quota_is_enforced() {
    let upstream = start_simulator(3).await;
    let mut codes = Vec::new();
    // Seven calls against three a minute: even if a calendar minute turns during the loop,
    // one minute sees at least four of them.
    for nonce in 1..=7 {
        let headers = signed_headers(&credentials(), "GET", TARGET, b"", now(), nonce);
        let (status, body) = get(&upstream.base_url, TARGET, headers).await;
        codes.push(if status == 200 { 0 } else { error_code(&body) });
    }
    let refused = codes.iter().filter(|c| **c == 190310).count();
    assert!(refused >= 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 0 || *c == 190310), "{codes:?}");
    assert!(upstream.simulator.counters().busiest_minute <= 3);
}

#[tokio::test]
async fn time_windows_follow_tencents_rules() {
    let upstream = start_simulator(100).await;
    let base = format!("/v1/meetings/{LIVE_MEETING}/participants?userid=owner1");
    let now = now() as i64;
    let too_wide = format!("{base}&start_time={}&end_time={now}", now - 32 * 86_400);
    let headers = signed_headers(&credentials(), "GET", &too_wide, b"", now as u64, 31);
    let (_, body) = get(&upstream.base_url, &too_wide, headers).await;
    assert_eq!(error_code(&body), 190004);

    // A missing start is 31 days before now, whatever the end: an end older than that is refused.
    let old_end = format!("{base}&end_time={}", now - 40 * 86_400);
    let headers = signed_headers(&credentials(), "GET", &old_end, b"", now as u64, 33);
    let (_, body) = get(&upstream.base_url, &old_end, headers).await;
    assert_eq!(error_code(&body), 190004);

    // Nobody of the live meeting joined in the hour before it started.
    let before = format!(
        "{base}&start_time={}&end_time={}",
        now - 4 * 3600,
        now - 3 * 3600
    );
    let headers = signed_headers(&credentials(), "GET", &before, b"", now as u64, 32);
    let (status, body) = get(&upstream.base_url, &before, headers).await;
    assert_eq!(status, 200);
    assert_eq!(body["total_count"], 0);
}

#[tokio::test]
async fn extreme_numbers_are_refused_not_overflowed() {
    let upstream = start_simulator(100).await;
    let mut headers = signed_headers(&credentials(), "GET", TARGET, b"", now(), 41);
    headers.insert(
        "x-tc-timestamp",
        http::HeaderValue::from_static("-9223372036854775808"),
    );
    let (_, body) = get(&upstream.base_url, TARGET, headers).await;
    assert_eq!(error_code(&body), 190300);

    let base = format!("/v1/meetings/{LIVE_MEETING}/participants?userid=owner1");
    for (nonce, window) in (42..).zip([
        "&start_time=-9223372036854775808&end_time=9223372036854775807",
        "&end_time=-9223372036854775808",
        "&start_time=9223372036854775807",
    ]) {
        let target = format!("{base}{window}");
        let headers = signed_headers(&credentials(), "GET", &target, b"", now(), nonce);
        let (status, body) = get(&upstream.base_url, &target, headers).await;
        assert_eq!((status, error_code(&body)), (400, 190004), "{window}");
    }
}

/// The simulator keeps its own copy of Tencent's limits, so that a wrong limit in the client
/// would show against it; the two copies must say the same.
#[test]
fn the_simulator_and_the_client_agree_on_tencents_limits() {
    use wemeet_gateway::simulator::limits;
    use wemeet_gateway::upstream;
    assert_eq!(limits::RECORD_CAP, upstream::RECORD_CAP);
    assert_eq!(limits::MAX_WINDOW_SECS, upstream::query::MAX_WINDOW_SECS);
    assert_eq!(limits::MAX_PAGE_SIZE, upstream::PAGE_SIZE);
}
