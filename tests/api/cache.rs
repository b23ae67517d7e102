//! The cache: one upstream pass per list, fresh when it matters, stale when the upstream fails.

use std::io::Read as _;
use std::time::Duration;

use wemeet_gateway::simulator::Fault;
use wemeet_gateway::simulator::demo::{LIVE_MEETING, SEED_MEETING};

use wemeet_gateway::api::StoredList;
use wemeet_gateway::cache::Renderer;

use crate::helpers::*;

fn cache_status(response: &reqwest::Response) -> String {
    response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// 1,000 client sockets and the 1,000 the gateway accepts, in one process, pass the soft limit
/// of 1,024 open files that many machines start with: raise it towards the hard limit.
fn raise_open_file_limit(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard).expect("setrlimit");
    }
}

/// The upstream fails from now on (Tencent's 41, "network error", answered with HTTP 500:
/// transient, a 502 from the gateway).
fn fail_upstream(gateway: &TestGateway) {
    gateway.upstream.simulator.inject(Fault {
        error_code: Some(41),
        ..Fault::default()
    });
}

/// A stale list served in place of the failing upstream, saying so with the status the upstream
/// itself answered (RFC 9211's `fwd-status`): Tencent's HTTP 500, not the gateway's 502.
fn assert_stale_if_error(response: &reqwest::Response) {
    assert_eq!(response.status(), 200);
    let status = cache_status(response);
    assert!(
        status.contains("fwd=stale; fwd-status=500; detail=stale-if-error"),
        "{status}"
    );
}

/// `max-age` and `Age` as numbers, and the `ttl` of `Cache-Status`.
fn freshness_headers(response: &reqwest::Response) -> (i64, i64, i64) {
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let max_age = header("cache-control")
        .strip_prefix("private, max-age=")
        .and_then(|v| v.parse().ok())
        .expect("private, max-age=N");
    let age = header("age").parse().expect("Age is a number");
    let ttl = cache_status(response)
        .rsplit_once("ttl=")
        .and_then(|(_, v)| v.parse().ok())
        .expect("ttl=N");
    (max_age, age, ttl)
}

/// Asks until the answer is a fresh hit (at most 100 tries, 50 ms apart). Asking while a fetch
/// runs joins it, so the asking itself costs no upstream call.
async fn until_hit(gateway: &TestGateway, path: &str) -> reqwest::Response {
    for _ in 0..100 {
        let response = gateway.get(path).await;
        if cache_status(&response).starts_with("wemeet-gateway; hit; ttl=") {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no hit for {path}");
}

fn seed() -> String {
    format!("/meetings/{SEED_MEETING}/participants")
}

fn live() -> String {
    format!("/meetings/{LIVE_MEETING}/participants")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_requests_cause_one_upstream_pass() {
    raise_open_file_limit(4_096);
    // A thousand callers at once, on one key: above the default caps, which other tests show.
    let gateway = start_gateway_with(start_simulator(100_000).await, |settings| {
        settings.max_in_flight = 2_000;
        settings.rate_limit = 0;
    })
    .await;
    let url = format!("{}{}", gateway.base_url, live());
    let requests: Vec<_> = (0..1_000)
        .map(|_| {
            let request = gateway.http.get(&url).bearer_auth(API_KEY).send();
            tokio::spawn(async move {
                let response = request.await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for request in requests {
        bodies.push(request.await.unwrap());
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every caller got the same bytes"
    );
    let counters = gateway.upstream.simulator.counters();
    assert_eq!(
        counters.by_meeting[LIVE_MEETING], 13,
        "one pass of 13 pages"
    );
}

#[tokio::test]
async fn a_second_request_is_a_hit_with_no_upstream_call_and_etags_revalidate() {
    let gateway = start_gateway().await;
    let first = gateway.get(&live()).await;
    assert!(
        cache_status(&first).contains("fwd=miss; stored"),
        "{}",
        cache_status(&first)
    );
    let etag = first.headers()["etag"].clone();
    let first_body = first.bytes().await.unwrap();
    let calls = gateway.upstream_calls();

    let second = gateway.get(&live()).await;
    assert!(cache_status(&second).starts_with("wemeet-gateway; hit; ttl="));
    assert_eq!(second.headers()["etag"], etag);
    // RFC 9111: fresh while max-age exceeds Age; what is left is the ttl Cache-Status gives.
    let (max_age, age, ttl) = freshness_headers(&second);
    assert_eq!(max_age, 30, "the live meeting's whole freshness lifetime");
    assert_eq!(max_age - age, ttl);
    assert_eq!(second.bytes().await.unwrap(), first_body);

    let revalidated = gateway
        .http
        .get(format!("{}{}", gateway.base_url, live()))
        .bearer_auth(API_KEY)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag);
    for header in ["vary", "cache-control", "age", "cache-status"] {
        assert!(
            revalidated.headers().contains_key(header),
            "304 without {header}"
        );
    }
    assert!(revalidated.bytes().await.unwrap().is_empty());
    assert_eq!(
        gateway.upstream_calls(),
        calls,
        "hits make no upstream call"
    );
}

#[tokio::test]
async fn gzip_is_served_when_accepted_and_holds_the_same_json() {
    let gateway = start_gateway().await;
    let plain = gateway.get(&live()).await.bytes().await.unwrap();
    let zipped = gateway.get_with(&live(), "accept-encoding", "gzip").await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding, Accept");
    let plain_etag = gateway.get(&live()).await.headers()["etag"].clone();
    assert_ne!(
        zipped.headers()["etag"],
        plain_etag,
        "each coding has its own strong ETag"
    );
    let compressed = zipped.bytes().await.unwrap();
    assert!(compressed.len() < plain.len() / 3);
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut json)
        .unwrap();
    assert_eq!(json, plain);
}

async fn gateway_with(adjust: impl FnOnce(&mut wemeet_gateway::cache::CacheConfig)) -> TestGateway {
    start_gateway_with(start_simulator(100_000).await, |c| adjust(&mut c.cache)).await
}

#[tokio::test(start_paused = true)]
async fn a_stale_list_is_served_at_once_and_refreshed_once_in_the_background() {
    let gateway = gateway_with(|c| c.ttl_ended = Duration::from_secs(60)).await;
    gateway.get(&seed()).await;
    assert_eq!(gateway.upstream_calls(), 1);
    tokio::time::advance(Duration::from_secs(61)).await;

    let path = seed();
    let (a, b) = tokio::join!(gateway.get(&path), gateway.get(&path));
    for stale in [&a, &b] {
        assert_eq!(stale.status(), 200);
        let status = cache_status(stale);
        assert!(
            status.contains("hit; detail=stale-while-revalidate; ttl=-"),
            "{status}"
        );
        let (max_age, age, ttl) = freshness_headers(stale);
        assert_eq!((max_age, ttl), (60, 60 - age));
        assert!(age > max_age, "stale to any RFC 9111 cache: {age}");
    }
    let fresh = until_hit(&gateway, &seed()).await;
    assert!(cache_status(&fresh).starts_with("wemeet-gateway; hit; ttl="));
    assert_eq!(
        gateway.upstream_calls(),
        2,
        "one refresh for both stale answers"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_upstream_is_covered_by_the_stale_list_until_the_stale_if_error_age() {
    let gateway = gateway_with(|c| {
        c.ttl_ended = Duration::from_secs(60);
        c.stale_if_error = Duration::from_secs(300);
    })
    .await;
    let original = gateway.get(&seed()).await.bytes().await.unwrap();
    fail_upstream(&gateway);
    tokio::time::advance(Duration::from_secs(120)).await;

    // A forced refresh fails; the stale list stands in, and says so.
    let refreshed = gateway.get_with(&seed(), "cache-control", "no-cache").await;
    assert_stale_if_error(&refreshed);
    assert_eq!(refreshed.bytes().await.unwrap(), original);

    tokio::time::advance(Duration::from_secs(300)).await;
    let (code, body) = problem(gateway.get(&seed()).await).await;
    assert_eq!(
        code, 502,
        "past the stale-if-error age the failure shows: {body}"
    );
}

#[tokio::test(start_paused = true)]
async fn once_a_refresh_has_failed_plain_callers_are_told_the_upstream_is_failing() {
    let gateway = gateway_with(|c| c.ttl_ended = Duration::from_secs(60)).await;
    let original = gateway.get(&seed()).await.bytes().await.unwrap();
    fail_upstream(&gateway);
    tokio::time::advance(Duration::from_secs(61)).await;

    // The first stale answer starts a refresh, which fails after its retries.
    let first = gateway.get(&seed()).await;
    assert!(cache_status(&first).contains("detail=stale-while-revalidate"));
    let calls_before = gateway.upstream_calls();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if gateway.upstream_calls() >= calls_before + 4 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let next = gateway.get(&seed()).await;
    assert_stale_if_error(&next);
    assert_eq!(next.bytes().await.unwrap(), original);
}

#[tokio::test(start_paused = true)]
async fn a_list_stale_for_longer_than_it_was_fresh_is_fetched_before_answering() {
    let gateway = gateway_with(|c| c.ttl_ended = Duration::from_secs(60)).await;
    gateway.get(&seed()).await;
    // Stale for more than its 60 s of freshness: not served at once any more.
    tokio::time::advance(Duration::from_secs(121)).await;
    let answer = gateway.get(&seed()).await;
    assert_eq!(answer.status(), 200);
    let status = cache_status(&answer);
    assert!(status.contains("fwd=stale; stored; ttl=60"), "{status}");
    assert_eq!(answer.headers()["age"], "0");
    assert_eq!(gateway.upstream_calls(), 2);

    // With the upstream failing, the stale list still stands in, and says why.
    fail_upstream(&gateway);
    tokio::time::advance(Duration::from_secs(121)).await;
    let covered = gateway.get(&seed()).await;
    assert_stale_if_error(&covered);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_stop_the_fetch() {
    let gateway = start_gateway().await;
    gateway.upstream.simulator.inject(Fault {
        latency_ms: Some(300),
        times: Some(3),
        ..Fault::default()
    });
    let impatient = gateway
        .http
        .get(format!("{}{}", gateway.base_url, live()))
        .bearer_auth(API_KEY)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(impatient.is_err(), "the caller gave up");
    until_hit(&gateway, &live()).await;
    assert_eq!(
        gateway.upstream.simulator.counters().by_meeting[LIVE_MEETING],
        13
    );
}

#[tokio::test]
async fn a_slow_fetch_answers_202_with_progress_then_the_list() {
    let gateway = gateway_with(|c| c.fetch_wait = Duration::from_millis(300)).await;
    gateway.upstream.simulator.inject(Fault {
        latency_ms: Some(100),
        meeting_id: Some(LIVE_MEETING.into()),
        ..Fault::default()
    });
    let pending = gateway.get(&live()).await;
    assert_eq!(pending.status(), 202);
    assert_eq!(pending.headers()["retry-after"], "2");
    let body: serde_json::Value = pending.json().await.unwrap();
    assert_eq!(body["status"], "fetching");
    assert!(body["records_fetched"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(body["total_count"], 1_234);
    let mut done = None;
    for _ in 0..40 {
        let response = gateway.get(&live()).await;
        if response.status() == 200 {
            done = Some(response);
            break;
        }
        assert_eq!(response.status(), 202);
    }
    let body: serde_json::Value = done.expect("the list arrived").json().await.unwrap();
    assert_eq!(body["participants"].as_array().unwrap().len(), 1_234);
    assert_eq!(
        gateway.upstream.simulator.counters().by_meeting[LIVE_MEETING],
        13
    );
}

#[tokio::test]
async fn no_cache_forces_one_refresh_shared_by_concurrent_callers() {
    let gateway = start_gateway().await;
    gateway.get(&live()).await;
    let forced = || {
        gateway
            .http
            .get(format!("{}{}", gateway.base_url, live()))
            .bearer_auth(API_KEY)
            .header("cache-control", "no-cache")
            .send()
    };
    let (a, b) = tokio::join!(forced(), forced());
    let statuses = [
        cache_status(a.as_ref().unwrap()),
        cache_status(b.as_ref().unwrap()),
    ];
    assert!(
        statuses.iter().all(|s| s.contains("fwd=request; stored")),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.contains("collapsed")),
        "{statuses:?}"
    );
    assert_eq!(
        gateway.upstream.simulator.counters().by_meeting[LIVE_MEETING],
        26
    );
}

#[tokio::test]
async fn delete_drops_a_meetings_lists_and_needs_a_key() {
    let gateway = start_gateway().await;
    gateway.get(&live()).await;
    let path = format!("{}/cache", live());
    let url = format!("{}{path}", gateway.base_url);
    let anonymous = gateway.http.delete(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let deleted = gateway.delete(&path).await;
    assert_eq!(deleted.status(), 204);
    let again = gateway.get(&live()).await;
    assert!(
        cache_status(&again).contains("fwd=miss"),
        "{}",
        cache_status(&again)
    );
    assert_eq!(
        gateway.upstream.simulator.counters().by_meeting[LIVE_MEETING],
        26
    );
}

#[tokio::test]
async fn an_unknown_meeting_is_remembered_briefly_and_errors_are_not_cached() {
    let gateway = start_gateway().await;
    for _ in 0..3 {
        assert_eq!(
            problem(gateway.get("/meetings/424242/participants").await)
                .await
                .0,
            404
        );
    }
    assert_eq!(gateway.upstream_calls(), 1);

    gateway.upstream.simulator.inject(Fault {
        error_code: Some(9042),
        times: Some(1),
        ..Fault::default()
    });
    assert_eq!(problem(gateway.get(&seed()).await).await.0, 403);
    assert_eq!(
        gateway.get(&seed()).await.status(),
        200,
        "the refusal was not cached"
    );
}

#[tokio::test]
async fn the_byte_bound_holds_and_filling_past_it_evicts() {
    let bound = 2 * 1024 * 1024;
    let gateway = gateway_with(|c| c.max_bytes = bound).await;
    // Each time window is its own list of the live meeting: about 0.9 MB with its gzip form.
    let now = wemeet_gateway::clock::unix_now().as_secs();
    let mut smallest_list = usize::MAX;
    for offset in 0..6u64 {
        let path = format!(
            "{}?start_time={}&end_time={now}",
            live(),
            now - 7200 - offset
        );
        let json = gateway.get(&path).await;
        assert_eq!(json.status(), 200);
        let json = json.bytes().await.unwrap().len();
        let gzip = gateway.get_with(&path, "accept-encoding", "gzip").await;
        assert!(cache_status(&gzip).starts_with("wemeet-gateway; hit"));
        smallest_list = smallest_list.min(json + gzip.bytes().await.unwrap().len());
    }
    let metrics = gateway.metrics().await;
    let held = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let bytes = held("gateway_cache_bytes ");
    let entries = held("gateway_cache_entries ");
    assert!(
        bytes <= bound as f64,
        "{bytes} bytes held over a bound of {bound}"
    );
    // What the cache weighs is at least the bodies it holds, so the bound bounds memory.
    assert!(
        bytes >= entries * smallest_list as f64,
        "{bytes} bytes for {entries} lists of at least {smallest_list} bytes of bodies"
    );
    assert!(
        (1.0..6.0).contains(&entries),
        "{entries} entries: some were evicted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_is_not_covered_by_the_stale_list() {
    let gateway = gateway_with(|c| c.ttl_ended = Duration::from_secs(60)).await;
    assert_eq!(gateway.get(&seed()).await.status(), 200);
    tokio::time::advance(Duration::from_secs(61)).await;
    gateway.upstream.simulator.inject(Fault {
        error_code: Some(9042),
        ..Fault::default()
    });
    let refreshed = gateway.get_with(&seed(), "cache-control", "no-cache").await;
    assert_eq!(problem(refreshed).await.0, 403, "the operator lost access");
    assert_eq!(
        problem(gateway.get(&seed()).await).await.0,
        403,
        "and the stale copy is gone"
    );
}

#[tokio::test]
async fn a_delete_during_a_fetch_keeps_that_fetch_from_storing() {
    let gateway = start_gateway().await;
    gateway.upstream.simulator.inject(Fault {
        latency_ms: Some(200),
        times: Some(2),
        ..Fault::default()
    });
    let first = tokio::spawn({
        let request = gateway
            .http
            .get(format!("{}{}", gateway.base_url, live()))
            .bearer_auth(API_KEY);
        async move { request.send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deleted = gateway.delete(&format!("{}/cache", live())).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        first.await.unwrap(),
        200,
        "the running fetch still answers its caller"
    );
    let next = gateway.get(&live()).await;
    assert!(
        cache_status(&next).contains("fwd=miss"),
        "{}",
        cache_status(&next)
    );
    assert_eq!(
        gateway.upstream.simulator.counters().by_meeting[LIVE_MEETING],
        26
    );
}

#[tokio::test]
async fn delete_names_a_malformed_meeting_id() {
    let gateway = start_gateway().await;
    let response = gateway.delete("/meetings/12ab/participants/cache").await;
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("meeting_id"))
    );
}

/// A renderer with a bug: it panics on the first page.
struct PanickingRenderer;

impl Renderer<StoredList> for PanickingRenderer {
    fn page(&mut self, _: Vec<wemeet_gateway::upstream::Participant>) {
        panic!("a renderer bug")
    }

    fn finish(self: Box<Self>, _: &wemeet_gateway::upstream::ListHead) -> StoredList {
        unreachable!("the first page panicked")
    }
}

fn a_renderer_that_panics() -> Box<dyn Renderer<StoredList>> {
    Box::new(PanickingRenderer)
}

/// The cache's own failure is the gateway's 500, not an upstream failure; and the key is not
/// left waiting on the dead flight.
#[tokio::test]
async fn a_panic_while_rendering_a_list_answers_500_internal() {
    use axum::response::IntoResponse as _;
    use wemeet_gateway::cache::{CacheConfig, CacheError, ParticipantCache, Wish};
    use wemeet_gateway::error::ApiError;

    let upstream = start_simulator(100_000).await;
    let cache = ParticipantCache::new(
        client(&upstream),
        CacheConfig::default(),
        a_renderer_that_panics,
        None,
    );
    for attempt in 1..=2 {
        let error = cache
            .get(&query(SEED_MEETING), Wish::Cached)
            .await
            .unwrap_err();
        assert!(matches!(error, CacheError::Internal(_)), "{error:?}");
        assert_eq!(upstream.simulator.counters().calls, attempt);

        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "urn:wemeet-gateway:problem:internal");
        assert!(!problem["detail"].as_str().unwrap().contains("renderer"));
    }
}
