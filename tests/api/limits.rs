//! Limits that hold under abuse: requests in flight, each API key's rate, bodies.

use std::time::Duration;

use sha2::Digest as _;
use wemeet_gateway::server::ConnectionLimits;
use wemeet_gateway::simulator::Fault;
use wemeet_gateway::simulator::demo::{NOT_STARTED_MEETING, SEED_MEETING};

use crate::helpers::{API_KEY, problem, start_gateway_with, start_simulator};

#[tokio::test]
async fn past_the_in_flight_cap_callers_get_503_at_once_and_probes_still_answer() {
    let upstream = start_simulator(100_000).await;
    // Every upstream call takes 3 s: the first requests hold their places meanwhile.
    upstream.simulator.inject(Fault {
        latency_ms: Some(3_000),
        ..Fault::default()
    });
    let gateway = start_gateway_with(upstream, |settings| settings.max_in_flight = 2).await;
    let gateway = std::sync::Arc::new(gateway);
    let holders: Vec<_> = (0..2)
        .map(|i| {
            let gateway = gateway.clone();
            let meeting = [SEED_MEETING, NOT_STARTED_MEETING][i];
            tokio::spawn(async move {
                gateway
                    .get(&format!("/meetings/{meeting}/participants"))
                    .await
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let refused = gateway
        .get(&format!("/meetings/{SEED_MEETING}/attendance"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    assert_eq!(refused.headers()["retry-after"], "1");
    let (status, body) = problem(refused).await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:wemeet-gateway:problem:overloaded");
    assert_eq!(gateway.get_without_key("/healthz").await.status(), 200);
    for holder in holders {
        assert_eq!(holder.await.unwrap(), 200);
    }
    // The places are free again.
    let again = gateway
        .get(&format!("/meetings/{SEED_MEETING}/participants"))
        .await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_the_ratelimit_headers_and_others_go_on() {
    const OTHER: &str = "another-frontend-key";
    let gateway = start_gateway_with(start_simulator(100_000).await, |settings| {
        settings
            .api_key_digests
            .push(sha2::Sha256::digest(OTHER).into());
        // The test key: the default, 60 a minute (bursts of 6); the other: its own 0, none.
        settings.rate_limit = 60;
        settings.api_key_rates = vec![None, Some(0)];
    })
    .await;
    let path = format!("/meetings/{SEED_MEETING}/participants");
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = gateway.get(&path).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(statuses[..6], [200; 6], "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = limited.unwrap();
    let headers = limited.headers().clone();
    assert_eq!(headers["ratelimit-policy"], "\"per-key\";q=60;w=60");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        headers["ratelimit"].to_str().unwrap(),
        format!("\"per-key\";r=0;t={retry_after}")
    );
    let (_, body) = problem(limited).await;
    assert_eq!(body["type"], "urn:wemeet-gateway:problem:key-rate-limited");
    // Another key is not held back by this one.
    for _ in 0..20 {
        let response = gateway
            .http
            .get(format!("{}{path}", gateway.base_url))
            .bearer_auth(OTHER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // A wrong key is refused as such, not counted against anyone.
    let response = gateway
        .http
        .get(format!("{}{path}", gateway.base_url))
        .bearer_auth(format!("{API_KEY}-not"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// A connection that sends half a request head and then nothing.
async fn half_a_request(addr: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// What the server sends on `stream` before it closes it, waiting at most `within`; `None`
/// when it was still open then.
async fn until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

/// A gateway with these connection limits, and its address for raw sockets.
async fn with_connection_limits(
    header_timeout: Duration,
    max_connections: usize,
) -> (crate::helpers::TestGateway, String) {
    let gateway = start_gateway_with(start_simulator(100_000).await, |settings| {
        settings.connections = ConnectionLimits {
            header_timeout,
            max_connections,
        };
    })
    .await;
    let addr = gateway.base_url.trim_start_matches("http://").to_owned();
    (gateway, addr)
}

#[tokio::test]
async fn slow_clients_are_cut_off_after_the_header_timeout_and_others_are_served_meanwhile() {
    let (gateway, addr) = with_connection_limits(Duration::from_secs(1), 100).await;
    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(half_a_request(&addr).await);
    }
    // Served meanwhile, promptly.
    for _ in 0..5 {
        let asked = std::time::Instant::now();
        assert_eq!(gateway.get_without_key("/healthz").await.status(), 200);
        assert!(asked.elapsed() < Duration::from_millis(500));
    }
    for stream in &mut slow {
        assert!(
            until_closed(stream, Duration::from_secs(5)).await.is_some(),
            "a slow client is cut off"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_503_and_service_returns() {
    let (gateway, addr) = with_connection_limits(Duration::from_secs(2), 8).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(half_a_request(&addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The ninth is answered 503 at once and closed, without its request being read.
    let mut ninth = half_a_request(&addr).await;
    let answer = until_closed(&mut ninth, Duration::from_secs(1))
        .await
        .expect("answered and closed at once");
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        answer.contains("urn:wemeet-gateway:problem:overloaded"),
        "{answer}"
    );
    // Once the held connections time out, service returns.
    for stream in &mut held {
        until_closed(stream, Duration::from_secs(5)).await;
    }
    let response = gateway.get_without_key("/healthz").await;
    assert_eq!(response.status(), 200);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("gateway_connections_refused_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_minute_s_outage_costs_at_most_ten_calls_stale_answers_stay_fast_and_the_list_returns_soon()
 {
    outage_at_scale(1).await;
}

#[tokio::test]
async fn the_same_outage_ten_times_faster() {
    outage_at_scale(10).await;
}

/// A 60-second outage under 50 pollers of a stale list, with the production schedule (2 s
/// cool-downs doubling to 15 s, backoffs of 200 ms doubling), all of it `scale` times faster.
async fn outage_at_scale(scale: u32) {
    use wemeet_gateway::upstream::RetryPolicy;
    use wemeet_gateway::upstream::breaker::BreakerPolicy;
    let production = RetryPolicy::default();
    let policy = RetryPolicy {
        base_delay: production.base_delay / scale,
        max_delay: production.max_delay / scale,
        breaker: BreakerPolicy {
            cooldown: production.breaker.cooldown / scale,
            max_cooldown: production.breaker.max_cooldown / scale,
            ..production.breaker
        },
        ..production
    };
    let max_cooldown = policy.breaker.max_cooldown;
    let refresh = policy.base_delay * 7 + Duration::from_millis(300);
    let ttl = Duration::from_secs(5) / scale;
    let gateway = start_gateway_with(start_simulator(100_000).await, |settings| {
        settings.cache.ttl_ended = ttl;
        settings.rate_limit = 0; // 50 pollers on one key
        settings.upstream.retry = policy;
    })
    .await;
    let gateway = std::sync::Arc::new(gateway);
    let path = format!("/meetings/{SEED_MEETING}/participants");
    assert_eq!(gateway.get(&path).await.status(), 200);
    gateway.upstream.simulator.inject(Fault {
        http_status: Some(503),
        ..Fault::default()
    });
    // Past its freshness and its stale-while-revalidate time: a caller waits for a refresh.
    tokio::time::sleep(ttl * 2 + Duration::from_millis(100)).await;
    let before = gateway.upstream_calls();
    let outage = Duration::from_secs(60) / scale;
    let started = std::time::Instant::now();
    let pollers: Vec<_> = (0..50)
        .map(|_| {
            let gateway = gateway.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let mut waits = Vec::new();
                while started.elapsed() < outage {
                    let asked = std::time::Instant::now();
                    let response = gateway.get(&path).await;
                    assert_eq!(response.status(), 200, "a stale copy stands in");
                    waits.push(asked.elapsed());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                waits
            })
        })
        .collect();
    tokio::time::sleep(outage / 2).await;
    let ready: serde_json::Value = gateway
        .get_without_key("/readyz")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["upstream"].as_str()),
        (Some("ready"), Some("failing"))
    );
    let stale = gateway.get(&path).await;
    let status = stale.headers()["cache-status"].to_str().unwrap().to_owned();
    assert!(status.contains("detail=stale-if-error"), "{status}");
    // Each poller's first answer waits for the one failing refresh (a call and three retries,
    // backing off), which they all share; every later answer comes at hit speed.
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for poller in pollers {
        let waits = poller.await.unwrap();
        first.push(waits[0]);
        later.extend_from_slice(&waits[1..]);
    }
    let calls = gateway.upstream_calls() - before;
    assert!(calls <= 10, "{calls} upstream calls during the outage");
    let slowest_first = first.iter().max().unwrap();
    assert!(
        *slowest_first < refresh,
        "first answers: slowest {slowest_first:?}"
    );
    later.sort();
    let typical = later[later.len() * 99 / 100];
    assert!(
        typical < Duration::from_millis(100),
        "later answers: 99th percentile {typical:?} of {}",
        later.len()
    );

    // The upstream returns: within the longest cool-down and a little, the list is fresh again.
    gateway.upstream.simulator.clear_faults();
    let back = std::time::Instant::now();
    loop {
        let response = gateway.get(&path).await;
        let status = response.headers()["cache-status"]
            .to_str()
            .unwrap()
            .to_owned();
        if !status.contains("stale") {
            break;
        }
        assert!(
            back.elapsed() < max_cooldown + Duration::from_secs(2),
            "not refreshed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready: serde_json::Value = gateway
        .get_without_key("/readyz")
        .await
        .json()
        .await
        .unwrap();
    assert!(ready["upstream"].is_null(), "{ready}");
}

#[tokio::test]
async fn lists_in_flight_share_the_work_budget_and_one_waits_for_its_turn() {
    use wemeet_gateway::cache::budget::WORK_BYTES_PER_RECORD;
    use wemeet_gateway::simulator::demo::LIVE_MEETING;
    let upstream = start_simulator(100_000).await;
    // 150 ms a page: each 1,234-record list (13 pages) takes about 2 s.
    upstream.simulator.inject(Fault {
        latency_ms: Some(150),
        ..Fault::default()
    });
    // Room for 1,500 records: one of the two lists at a time.
    let budget = 1_500 * WORK_BYTES_PER_RECORD;
    let gateway = start_gateway_with(upstream, |settings| {
        settings.cache.work_max_bytes = budget;
    })
    .await;
    let gateway = std::sync::Arc::new(gateway);
    let waits = |metrics: &str| metric(metrics, "gateway_work_waits_total");
    let waits_before = waits(&gateway.metrics().await);
    let now = wemeet_gateway::clock::unix_now().as_secs();
    let lists: Vec<_> = [7200, 7201]
        .map(|back| {
            let gateway = gateway.clone();
            let path = format!(
                "/meetings/{LIVE_MEETING}/participants?start_time={}&end_time={now}",
                now - back
            );
            tokio::spawn(async move {
                let response = gateway.get(&path).await;
                assert_eq!(response.status(), 200);
                let body: serde_json::Value = response.json().await.unwrap();
                body["participants"].as_array().unwrap().len()
            })
        })
        .into();
    // Watch the reserved bytes while both are asked for.
    let mut peak = 0.0_f64;
    while !lists.iter().all(|l| l.is_finished()) {
        peak = peak.max(metric(&gateway.metrics().await, "gateway_work_bytes"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for list in lists {
        assert_eq!(list.await.unwrap(), 1_234);
    }
    let metrics = gateway.metrics().await;
    assert!(peak > 0.0 && peak <= budget as f64, "peak {peak}");
    assert_eq!(
        waits(&metrics) - waits_before,
        1.0,
        "the second list waited once"
    );
    assert_eq!(
        metric(&metrics, "gateway_work_bytes"),
        0.0,
        "all given back"
    );
}

/// A metric's value in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}
