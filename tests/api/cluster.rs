//! Replicas sharing one Redis: one quota across every replica, and each replica on its own
//! (at its fallback rate) while Redis is down, back to shared by itself when it returns.

use std::time::Duration;

use wemeet_gateway::cluster::RedisSettings;
use wemeet_gateway::cluster::limiter::{Admission, SharedLimiter, Spent};
use wemeet_gateway::config::Settings;

use crate::helpers::{TestGateway, TestUpstream, start_gateway_with, start_simulator};
use crate::redis_server::RedisServer;

fn redis_settings(redis: &RedisServer) -> RedisSettings {
    RedisSettings {
        url: redis.url().into(),
        prefix: "test:".into(),
        fallback_calls_per_minute: 600,
        calls_per_day: 200_000,
    }
}

/// A replica: a gateway sharing `redis`, pacing the whole cluster to `calls_per_minute`.
async fn replica(
    upstream: TestUpstream,
    redis: &RedisServer,
    calls_per_minute: u32,
    adjust: impl FnOnce(&mut Settings),
) -> TestGateway {
    let shared = redis_settings(redis);
    start_gateway_with(upstream, |settings| {
        settings.upstream.calls_per_minute = calls_per_minute;
        settings.redis = Some(shared);
        adjust(settings);
    })
    .await
}

/// The same simulator, reached by another gateway (the simulator is a cheap handle).
fn same(upstream: &TestUpstream) -> TestUpstream {
    TestUpstream {
        simulator: upstream.simulator.clone(),
        base_url: upstream.base_url.clone(),
    }
}

/// Three replicas sharing `redis` and pacing themselves together to `calls_per_minute`, in front
/// of one simulator that allows `upstream_calls_per_minute`.
async fn three_replicas(
    redis: &RedisServer,
    upstream_calls_per_minute: u32,
    calls_per_minute: u32,
) -> Vec<TestGateway> {
    let upstream = start_simulator(upstream_calls_per_minute).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(same(&upstream), redis, calls_per_minute, |_| {}).await);
    }
    replicas
}

async fn readiness(gateway: &TestGateway) -> serde_json::Value {
    gateway
        .get_without_key("/readyz")
        .await
        .json()
        .await
        .expect("readiness JSON")
}

#[tokio::test]
async fn replicas_spend_one_quota_between_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // The upstream allows 30 calls a minute; three replicas share a rate of 29. Together they
    // take a burst of 2 and then a call every 60/28 s, so no 60 seconds hold more than 29 (30
    // with a millisecond of jitter at the window's edges). On their own, each would take that
    // pace: 31 calls within about 16 s.
    let replicas = three_replicas(&redis, 30, 29).await;
    let upstream = same(&replicas[0].upstream);
    for replica in &replicas {
        assert_eq!(readiness(replica).await["redis"], "shared");
    }
    // 31 distinct one-page lists (one-hour windows of the sample meeting), asked of the three
    // replicas in turn, all at once; each caller asks again after a 202 until it has its list.
    let lists: Vec<String> = (0..31)
        .map(|i| {
            let start = 1_700_000_000 + i * 86_400;
            format!(
                "/meetings/144115214488302892/participants?start_time={start}&end_time={}",
                start + 3600
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let replicas = std::sync::Arc::new(replicas);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, path) in lists.into_iter().enumerate() {
        let replicas = replicas.clone();
        tasks.spawn(async move {
            for _ in 0..60 {
                let response = replicas[i % 3].get(&path).await;
                match response.status().as_u16() {
                    202 => tokio::time::sleep(Duration::from_secs(2)).await,
                    status => return status,
                }
            }
            panic!("{path}: still fetching after 60 tries");
        });
    }
    let answers: Vec<u16> = tasks.join_all().await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let counters = upstream.simulator.counters();
    assert_eq!(counters.calls, 31, "{counters:?}");
    assert!(counters.busiest_60s <= 30, "{counters:?}");
    assert!(!counters.by_outcome.contains_key("190310"), "{counters:?}");
    // Shared pacing is not needlessly slow: 2 at once, then 29 at 60/28 s apart, about 62 s.
    assert!(
        started.elapsed() < Duration::from_secs(80),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn without_redis_a_replica_serves_on_its_own_and_returns_to_shared_mode() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = start_simulator(100_000).await;
    let gateway = replica(upstream, &redis, 100_000, |_| {}).await;
    assert_eq!(readiness(&gateway).await["redis"], "shared");
    let list = "/meetings/100000000000000001/participants";
    assert_eq!(gateway.get(list).await.status(), 200);

    redis.stop();
    // A cold list is fetched at the fallback rate; the cached one is still served.
    let cold = "/meetings/144115214488302892/participants";
    assert_eq!(gateway.get(cold).await.status(), 200);
    let hit = gateway.get(list).await;
    assert_eq!(hit.status(), 200);
    let status = readiness(&gateway).await;
    assert_eq!(status["status"], "ready");
    assert_eq!(status["redis"], "degraded");
    assert!(gateway.metrics().await.contains("gateway_redis_shared 0"));

    redis.restart();
    let mut mode = String::new();
    for _ in 0..100 {
        mode = readiness(&gateway).await["redis"]
            .as_str()
            .unwrap()
            .to_owned();
        if mode == "shared" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mode, "shared", "back to shared mode without a restart");
    assert!(gateway.metrics().await.contains("gateway_redis_shared 1"));
}

/// A fresh Redis and two replicas' limiters on it (`None`: no redis-server, the test skips).
async fn two_limiters(
    per_minute: u32,
    per_day: u32,
) -> Option<(RedisServer, SharedLimiter, SharedLimiter)> {
    let redis = RedisServer::start()?;
    let settings = redis_settings(&redis);
    let mut limiters = Vec::new();
    for _ in 0..2 {
        let connection = wemeet_gateway::cluster::Redis::connect(&settings)
            .await
            .expect("a valid URL");
        assert!(connection.is_shared());
        limiters.push(SharedLimiter::new(
            connection,
            "211000001",
            per_minute,
            per_day,
        ));
    }
    let other = limiters.pop()?;
    Some((redis, limiters.pop()?, other))
}

#[tokio::test]
async fn a_quota_refusal_seen_by_one_replica_pauses_them_all() {
    let Some((_redis, one, other)) = two_limiters(600, 200_000).await else {
        return;
    };
    assert_eq!(other.take().await, Some(Admission::Now));
    one.pause(Spent::Minute).await;
    match other.take().await {
        Some(Admission::After(wait)) => assert!(wait <= Duration::from_secs(60), "{wait:?}"),
        other => panic!("expected a wait until the minute turns, got {other:?}"),
    }
    one.pause(Spent::Day).await;
    match other.take().await {
        Some(Admission::After(wait)) => {
            assert!(wait <= Duration::from_secs(86_400), "{wait:?}");
        }
        other => panic!("expected a wait until the day turns, got {other:?}"),
    }
}

#[tokio::test]
async fn the_day_s_calls_are_counted_across_replicas() {
    let Some((_redis, one, other)) = two_limiters(600_000, 3).await else {
        return;
    };
    assert_eq!(one.take().await, Some(Admission::Now));
    assert_eq!(other.take().await, Some(Admission::Now));
    assert_eq!(one.take().await, Some(Admission::Now));
    match other.take().await {
        Some(Admission::DaySpent(renews)) => {
            assert!(renews <= Duration::from_secs(86_400), "{renews:?}");
        }
        other => panic!("expected the day spent, got {other:?}"),
    }
}

#[tokio::test]
async fn one_limiter_spaces_calls_for_every_replica() {
    // 600 a minute: a burst of 60, then one every 60/541 s. Two replicas asking as fast as they
    // can get the burst between them, not a burst each.
    let Some((_redis, one, other)) = two_limiters(600, 200_000).await else {
        return;
    };
    let mut granted = 0;
    let started = std::time::Instant::now();
    for _ in 0..100 {
        for limiter in [&one, &other] {
            if limiter.take().await == Some(Admission::Now) {
                granted += 1;
            }
        }
    }
    // The burst, and one more call for each 60/541 s the asking took (well under a second here;
    // on their own, the two would have had 120 at once).
    let spaced = (started.elapsed().as_secs_f64() * 541.0 / 60.0).ceil() as usize;
    assert!(
        (60..=61 + spaced).contains(&granted),
        "{granted} granted in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn three_replicas_fetch_a_cold_list_once_for_a_thousand_callers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // One key for all 1,000 callers: its default rate (3,000 a minute, bursts of 300 in each
    // replica) would be what this test measures, since the ~230 callers a replica gets after the
    // list lands arrive within a second. The key's rate has its own tests.
    let upstream = start_simulator(100_000).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let unlimited = |settings: &mut Settings| settings.rate_limit = 0;
        replicas.push(replica(same(&upstream), &redis, 100_000, unlimited).await);
    }
    let replicas = std::sync::Arc::new(replicas);
    // At most 300 connections open at once: each is two file descriptors in this process (the
    // client's and the server's), and a default limit is 1,024.
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(300));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (replicas, open) = (replicas.clone(), open.clone());
        tasks.spawn(async move {
            let _open = open.acquire().await.unwrap();
            let response = replicas[i % 3]
                .get("/meetings/100000000000000001/participants")
                .await;
            (response.status().as_u16(), response.bytes().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .map(|(status, body)| format!("{status} {}", String::from_utf8_lossy(body)))
        .collect();
    assert!(refused.is_empty(), "{} not 200: {refused:?}", refused.len());
    assert!(
        answers.iter().all(|(_, body)| *body == answers[0].1),
        "one body for all"
    );
    // 1,234 records at 100 a page: 13 calls, once for the three replicas.
    assert_eq!(upstream.simulator.counters().calls, 13);
    let metrics = replicas[0].metrics().await + &replicas[1].metrics().await;
    assert!(
        metrics.contains("gateway_shared_lock_events_total{event=\"wait\"}"),
        "{metrics}"
    );
}

async fn cache_status(gateway: &TestGateway, path: &str) -> String {
    let response = gateway.get(path).await;
    assert_eq!(response.status(), 200);
    response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_list_fetched_by_one_replica_is_a_hit_for_the_others_until_purged() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let replicas = three_replicas(&redis, 100_000, 100_000).await;
    let upstream = same(&replicas[0].upstream);
    let list = "/meetings/100000000000000001/participants";
    assert!(cache_status(&replicas[0], list).await.contains("fwd=miss"));
    let body = replicas[0].get(list).await.bytes().await.unwrap();
    assert_eq!(upstream.simulator.counters().calls, 13);
    // The others find it in Redis: no upstream call, the same bytes; then it is a local hit.
    for replica in &replicas[1..] {
        assert!(cache_status(replica, list).await.contains("fwd=miss"));
        assert_eq!(replica.get(list).await.bytes().await.unwrap(), body);
        assert!(cache_status(replica, list).await.contains("; hit"));
    }
    assert_eq!(upstream.simulator.counters().calls, 13);
    let metrics = replicas[1].metrics().await;
    assert!(
        metrics.contains("gateway_shared_lists_total{result=\"hit\"}"),
        "{metrics}"
    );

    // A purge on one replica: the next request on every replica is a miss, and the list is
    // fetched once more for all of them.
    let purged = replicas[1]
        .delete("/meetings/100000000000000001/participants/cache")
        .await;
    assert_eq!(purged.status(), 204);
    // The other replicas hear of it over pub/sub, within moments.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for replica in replicas.iter() {
        let status = cache_status(replica, list).await;
        assert!(status.contains("fwd=miss"), "{status}");
    }
    assert_eq!(upstream.simulator.counters().calls, 26);
}

#[tokio::test]
async fn an_event_delivered_to_one_replica_patches_every_replica_s_list() {
    use base64::Engine as _;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const TOKEN: &str = "cluster-webhook-token";
    let upstream = start_simulator(100_000).await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let keys =
            wemeet_gateway::webhooks::delivery::WebhookKeys::new(TOKEN.into(), None).unwrap();
        replicas.push(
            replica(same(&upstream), &redis, 100_000, |settings| {
                settings.webhooks = Some(keys);
            })
            .await,
        );
    }
    let list = "/meetings/100000000000000001/participants";
    for replica in &replicas {
        assert_eq!(replica.get(list).await.status(), 200);
    }
    assert_eq!(upstream.simulator.counters().calls, 13);
    let event = serde_json::json!({
        "event": "meeting.participant-joined",
        "trace_id": "cluster-trace-1",
        "payload": [{"operate_time": 1_700_000_000_000_i64,
                     "operator": {"uuid": "WM-cluster", "user_name": "钱七", "instance_id": "1"},
                     "meeting_info": {"meeting_id": "100000000000000001"}}]
    });
    let data = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    let deliver = |gateway: &TestGateway| {
        let timestamp = wemeet_gateway::clock::unix_now().as_millis().to_string();
        let signature =
            wemeet_gateway::webhooks::delivery::signature_of(TOKEN, &timestamp, "7", &data);
        gateway
            .http
            .post(format!("{}/webhooks/wemeet", gateway.base_url))
            .header("timestamp", timestamp)
            .header("nonce", "7")
            .header("signature", signature)
            .json(&serde_json::json!({ "data": data }))
            .send()
    };
    assert_eq!(deliver(&replicas[0]).await.unwrap().status(), 200);
    // Tencent's retry reaching the other replica is recognised there.
    assert_eq!(deliver(&replicas[1]).await.unwrap().status(), 200);
    for replica in &replicas {
        let mut found = 0;
        for _ in 0..40 {
            let body: serde_json::Value = replica.get(list).await.json().await.unwrap();
            found = body["participants"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["uuid"] == "WM-cluster")
                .count();
            if found > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(found, 1, "once on every replica within 2 s");
    }
    let metrics = replicas[1].metrics().await;
    assert!(
        metrics.contains(
            r#"gateway_webhook_events_total{kind="participant_joined",outcome="repeated"}"#
        ),
        "{metrics}"
    );
    assert_eq!(upstream.simulator.counters().calls, 13);
}
