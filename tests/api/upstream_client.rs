//! The upstream client against the simulator: complete paging, honest errors, retries, pacing.

use std::sync::Arc;
use std::time::Duration;

use wemeet_gateway::simulator::Fault;
use wemeet_gateway::simulator::dataset::{Dataset, DatasetFile};
use wemeet_gateway::simulator::demo::{
    HUGE_MEETING, LIVE_MEETING, NOT_STARTED_MEETING, OUTSIDER, RECURRING_MEETING, SEED_MEETING,
    SUB_MEETINGS,
};
use wemeet_gateway::upstream::{
    ClientConfig, Completeness, ErrorClass, Operator, ParticipantsQuery, RECORD_CAP,
    UpstreamClient, UpstreamError,
};

use crate::helpers::*;

#[tokio::test]
async fn every_demo_meeting_is_merged_exactly_as_stored() {
    let upstream = start_simulator(100_000).await;
    let client = client(&upstream);
    for meeting in [SEED_MEETING, LIVE_MEETING] {
        let list = client.fetch_participants(&query(meeting)).await.unwrap();
        assert_eq!(
            list.participants,
            stored_records(&upstream.simulator, meeting, None)
        );
        assert_eq!(list.head.completeness, Completeness::Complete);
        assert_eq!(list.head.meeting_id.as_deref(), Some(meeting));
        assert_eq!(list.head.total_count, Some(list.participants.len() as i64));
    }
    for sub in SUB_MEETINGS {
        let q = query(RECURRING_MEETING).with_sub_meeting(sub).unwrap();
        let list = client.fetch_participants(&q).await.unwrap();
        let stored = stored_records(&upstream.simulator, RECURRING_MEETING, Some(sub));
        assert!(!stored.is_empty());
        assert_eq!(list.participants, stored);
    }
    let calls = upstream.simulator.counters().by_meeting[LIVE_MEETING];
    assert_eq!(calls, 13, "1,234 records are 13 pages of 100");
}

#[tokio::test]
async fn a_meeting_not_started_is_an_empty_complete_list() {
    let upstream = start_simulator(100_000).await;
    let list = client(&upstream)
        .fetch_participants(&query(NOT_STARTED_MEETING))
        .await
        .unwrap();
    assert!(list.participants.is_empty());
    assert_eq!(list.head.completeness, Completeness::Complete);
    assert_eq!(list.head.subject.as_deref(), Some("Planning (tomorrow)"));
}

#[tokio::test]
async fn the_record_cap_yields_50000_records_marked_incomplete() {
    let upstream = start_simulator(100_000).await;
    let list = client(&upstream)
        .fetch_participants(&query(HUGE_MEETING))
        .await
        .unwrap();
    assert_eq!(list.participants.len(), RECORD_CAP);
    assert_eq!(list.head.completeness, Completeness::TruncatedAtRecordCap);
    assert_eq!(list.head.total_count, Some(60_000));
    let stored = stored_records(&upstream.simulator, HUGE_MEETING, None);
    assert_eq!(list.participants[..], stored[..RECORD_CAP]);
    assert_eq!(upstream.simulator.counters().calls, 500);
}

#[tokio::test]
async fn a_recurring_meeting_without_sub_meeting_is_a_bad_request() {
    let upstream = start_simulator(100_000).await;
    let err = client(&upstream)
        .fetch_participants(&query(RECURRING_MEETING))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert!(err.to_string().contains("sub_meeting_id"), "{err}");
}

#[tokio::test]
async fn a_repeated_cursor_is_an_error_after_two_calls() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(Fault {
        repeat_cursor: true,
        ..Fault::default()
    });
    let err = client(&upstream)
        .fetch_participants(&query(LIVE_MEETING))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Protocol);
    assert_eq!(upstream.simulator.counters().calls, 2);
}

#[tokio::test]
async fn endless_paging_stops_at_the_page_bound() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(Fault {
        endless: true,
        ..Fault::default()
    });
    let err = client(&upstream)
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Protocol);
    assert_eq!(upstream.simulator.counters().calls, 1_000);
}

/// Fetches the seed meeting with `config`, expecting a failure; returns it and the time taken.
async fn failure_and_time(config: ClientConfig) -> (UpstreamError, Duration) {
    let started = tokio::time::Instant::now();
    let err = UpstreamClient::new(config)
        .unwrap()
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap_err();
    (err, started.elapsed())
}

/// Injects `fault` and fetches the live meeting; returns the outcome class and the calls made.
async fn fetch_with_fault(fault: Fault) -> (Result<usize, ErrorClass>, u64) {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(fault);
    let result = client(&upstream)
        .fetch_participants(&query(SEED_MEETING))
        .await
        .map(|list| list.participants.len())
        .map_err(|e| e.class());
    (result, upstream.simulator.counters().calls)
}

fn error(code: i64, times: Option<u32>) -> Fault {
    Fault {
        error_code: Some(code),
        times,
        ..Fault::default()
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_three_times_then_reported() {
    for code in [41, 960000, 10000] {
        assert_eq!(
            fetch_with_fault(error(code, None)).await,
            (Err(ErrorClass::Transient), 4),
            "{code}"
        );
    }
    assert_eq!(
        fetch_with_fault(Fault {
            http_status: Some(502),
            ..Fault::default()
        })
        .await,
        (Err(ErrorClass::Transient), 4)
    );
    assert_eq!(fetch_with_fault(error(41, Some(2))).await, (Ok(2), 3));
}

#[tokio::test(start_paused = true)]
async fn retries_stay_within_a_fifth_of_first_attempts_when_the_breaker_stays_closed() {
    use wemeet_gateway::upstream::RetryBudget;
    use wemeet_gateway::upstream::breaker::BreakerPolicy;
    // Every call fails, and the breaker is set never to open: only the budget bounds retries.
    // Without it, ten one-page lists would cost 40 calls.
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(error(41, None));
    let mut config = client_config(&upstream);
    config.retry.breaker = BreakerPolicy {
        threshold: u32::MAX,
        ..BreakerPolicy::default()
    };
    config.retry.budget = RetryBudget {
        floor_per_second: 0,
        ..RetryBudget::default()
    };
    let client = UpstreamClient::new(config).unwrap();
    for _ in 0..10 {
        let err = client
            .fetch_participants(&query(SEED_MEETING))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient);
    }
    // Ten first attempts earn two retries: the fifth and the tenth list get one each.
    assert_eq!(upstream.simulator.counters().calls, 12);

    // The floor: one retry a second even with no first attempts to earn it.
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(error(41, Some(1)));
    let mut config = client_config(&upstream);
    config.retry.budget = RetryBudget {
        ratio: 0.0,
        ..RetryBudget::default()
    };
    let list = UpstreamClient::new(config)
        .unwrap()
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap();
    assert_eq!(list.participants.len(), 2);
    assert_eq!(upstream.simulator.counters().calls, 2);
}

#[tokio::test(start_paused = true)]
async fn a_replay_rejection_is_retried_with_a_fresh_nonce() {
    assert_eq!(fetch_with_fault(error(190301, Some(1))).await, (Ok(2), 2));
}

#[tokio::test(start_paused = true)]
async fn a_minute_limit_waits_for_the_next_minute_twice_then_gives_up() {
    for code in [190310, 190313, 9061] {
        assert_eq!(
            fetch_with_fault(error(code, None)).await,
            (Err(ErrorClass::MinuteLimit), 3),
            "{code}"
        );
    }
    let started = tokio::time::Instant::now();
    assert_eq!(fetch_with_fault(error(190310, Some(1))).await, (Ok(2), 2));
    let waited = started.elapsed();
    assert!(
        waited > Duration::ZERO && waited <= Duration::from_secs(61),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_pass_the_deadline_reports_the_failure_at_once() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(error(41, None));
    let mut config = client_config(&upstream);
    // The first backoff is at least half the base delay: 5 s, which would end at the deadline.
    config.retry.base_delay = Duration::from_secs(10);
    config.retry.max_delay = Duration::from_secs(10);
    config.list_deadline = Duration::from_secs(5);
    let (err, took) = failure_and_time(config).await;
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(took < Duration::from_secs(1));
    assert_eq!(upstream.simulator.counters().calls, 1);
}

/// The simulator checks signed timestamps against the system clock, as the client signs with
/// it: tokio's clock (which stops while a laptop sleeps) moving on must not make it refuse them.
#[tokio::test(start_paused = true)]
async fn signatures_stay_valid_when_tokio_time_runs_ahead_of_the_system_clock() {
    let upstream = start_simulator(100_000).await;
    let client = client(&upstream);
    client
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(330)).await;
    let list = client.fetch_participants(&query(SEED_MEETING)).await;
    assert!(list.is_ok(), "{:?}", list.err());
}

#[tokio::test(start_paused = true)]
async fn failures_that_cannot_pass_are_not_retried() {
    let cases = [
        (190311, ErrorClass::DailyLimit),
        (9003, ErrorClass::NotFound),
        (9042, ErrorClass::Forbidden),
        (500014, ErrorClass::Forbidden),
        (190004, ErrorClass::BadRequest),
        (200003, ErrorClass::Credentials),
        (190300, ErrorClass::ClockSkew),
        (777777, ErrorClass::Unknown),
    ];
    for (code, class) in cases {
        assert_eq!(
            fetch_with_fault(error(code, None)).await,
            (Err(class), 1),
            "{code}"
        );
    }
    // A page that does not decode is asked for again, a bounded number of times.
    let malformed = Fault {
        malformed: true,
        ..Fault::default()
    };
    assert_eq!(
        fetch_with_fault(malformed).await,
        (Err(ErrorClass::Protocol), 4)
    );
}

#[tokio::test(start_paused = true)]
async fn one_garbage_page_in_a_500_page_list_costs_one_retry_not_the_list() {
    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(Fault {
        malformed: true,
        after_calls: Some(399),
        times: Some(1),
        ..Fault::default()
    });
    let list = client(&upstream)
        .fetch_participants(&query(HUGE_MEETING))
        .await
        .expect("the list, whole as the upstream serves it");
    assert_eq!(list.participants.len(), 50_000);
    assert_eq!(
        upstream.simulator.counters().calls,
        501,
        "500 pages and one retry"
    );
}

#[tokio::test(start_paused = true)]
async fn a_page_slower_than_its_timeout_is_transient_and_the_list_has_a_deadline() {
    let slow = Fault {
        latency_ms: Some(30_000),
        ..Fault::default()
    };
    assert_eq!(
        fetch_with_fault(slow.clone()).await,
        (Err(ErrorClass::Transient), 4)
    );

    let upstream = start_simulator(100_000).await;
    upstream.simulator.inject(slow);
    let mut config = client_config(&upstream);
    config.list_deadline = Duration::from_secs(15);
    let (err, took) = failure_and_time(config).await;
    assert_eq!(err.class(), ErrorClass::Deadline);
    assert_eq!(took, Duration::from_secs(15));
}

#[tokio::test]
async fn real_upstream_refusals_are_classified() {
    let upstream = start_simulator(100_000).await;
    let client = client(&upstream);
    let fetch = |q: ParticipantsQuery| {
        let client = client.clone();
        async move { client.fetch_participants(&q).await.unwrap_err().class() }
    };
    assert_eq!(
        fetch(query("999999999999")).await,
        ErrorClass::NotFound,
        "unknown meeting"
    );
    let outsider = ParticipantsQuery::new(LIVE_MEETING, Operator::user_id(OUTSIDER).unwrap());
    assert_eq!(fetch(outsider.unwrap()).await, ErrorClass::Forbidden);
    let stranger = ParticipantsQuery::new(LIVE_MEETING, Operator::user_id("nobody").unwrap());
    assert_eq!(fetch(stranger.unwrap()).await, ErrorClass::Forbidden);

    let mut config = client_config(&upstream);
    config.credentials = credentials_of(APP_ID, Some(SDK_ID), SECRET_ID, "wrong-key");
    let wrong_key = UpstreamClient::new(config).unwrap();
    let err = wrong_key
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap_err();
    assert_eq!(
        (err.class(), err.code()),
        (ErrorClass::Credentials, Some(200003))
    );

    let mut config = client_config(&upstream);
    config.credentials = credentials_of("999", Some(SDK_ID), SECRET_ID, SECRET_KEY);
    let wrong_app = UpstreamClient::new(config).unwrap();
    let err = wrong_app
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap_err();
    assert_eq!(
        (err.class(), err.code()),
        (ErrorClass::Credentials, Some(190303))
    );
}

/// A redirect is reported, not followed: following it would send the signed headers wherever
/// the `Location` points.
#[tokio::test]
async fn a_redirect_is_reported_and_not_followed() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{StatusCode, header};
    use wemeet_gateway::server::Server;

    let elsewhere_hits = Arc::new(AtomicUsize::new(0));
    let hits = elsewhere_hits.clone();
    let elsewhere = axum::Router::new().fallback(move || async move {
        hits.fetch_add(1, Ordering::SeqCst);
        "{}"
    });
    let elsewhere = Server::bind("127.0.0.1:0", elsewhere)
        .await
        .unwrap()
        .spawn();
    let redirecting = axum::Router::new().fallback(move |uri: axum::http::Uri| async move {
        let location = format!("http://{elsewhere}{uri}");
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
    });
    let redirecting = Server::bind("127.0.0.1:0", redirecting)
        .await
        .unwrap()
        .spawn();

    let mut config = client_config(&start_simulator(100_000).await);
    config.base_url = format!("http://{redirecting}");
    let err = UpstreamClient::new(config)
        .unwrap()
        .fetch_participants(&query(SEED_MEETING))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Protocol, "{err}");
    assert!(err.to_string().contains("307"), "{err}");
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0);
}

/// Values with `@`, `+` and `.` are percent-encoded once and signed over exactly the bytes
/// sent: the simulator verifies the signature over the raw target it receives.
#[tokio::test]
async fn encoded_values_are_signed_exactly_as_sent() {
    let mut file: DatasetFile = serde_json::from_value(serde_json::json!({
        "meetings": [{
            "meeting_id": "555", "meeting_code": "1", "subject": "t",
            "schedule_start_time": "1700000000", "schedule_end_time": "1700003600",
            "readers": ["zhang.san@corp+1"],
            "participants": [{"userid": "x", "join_time": "1700000000", "left_time": ""}]
        }]
    }))
    .unwrap();
    file.users.push("other".into());
    let upstream = start_simulator_with(Arc::new(Dataset::from_file(file).unwrap()), 100).await;
    let q = ParticipantsQuery::new("555", Operator::user_id("zhang.san@corp+1").unwrap()).unwrap();
    let list = client(&upstream).fetch_participants(&q).await.unwrap();
    assert_eq!(list.participants.len(), 1);
    assert_eq!(list.participants[0].left_time, None, "still in the meeting");
}

/// Several fetches at once against an upstream that allows exactly the configured budget: the
/// shared pacer keeps every calendar minute within it, so no call is refused.
#[tokio::test(start_paused = true)]
async fn a_burst_of_fetches_never_exceeds_the_calls_per_minute() {
    let budget = 20;
    let upstream = start_simulator(budget).await;
    let mut config = client_config(&upstream);
    config.calls_per_minute = budget;
    let client = UpstreamClient::new(config).unwrap();
    let fetches: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.fetch_participants(&query(LIVE_MEETING)).await })
        })
        .collect();
    for fetch in fetches {
        assert_eq!(fetch.await.unwrap().unwrap().participants.len(), 1_234);
    }
    let counters = upstream.simulator.counters();
    assert_eq!(counters.calls, 52);
    assert_eq!(counters.by_outcome.get("ok"), Some(&52), "{counters:?}");
    assert!(counters.busiest_minute <= u64::from(budget), "{counters:?}");
}

#[test]
fn the_client_debug_output_hides_the_credentials() {
    let upstream = TestUpstream {
        simulator: wemeet_gateway::simulator::Simulator::new(
            wemeet_gateway::simulator::SimulatorConfig {
                credentials: credentials(),
                calls_per_minute: 1,
                calls_per_day: 1,
                dataset: Arc::new(
                    Dataset::from_file(DatasetFile {
                        users: vec![],
                        meetings: vec![],
                    })
                    .unwrap(),
                ),
            },
        ),
        base_url: "http://127.0.0.1:1".into(),
    };
    let printed = format!("{:?}", client(&upstream));
    assert!(!printed.contains("test-secret-key-0123456789"), "{printed}");
    assert!(!printed.contains("AKIDtestSecretId"), "{printed}");
}
