//! Prometheus metrics: names in one place, one recorder per process.
//!
//! The `metrics` facade allows one global recorder per process, so it is installed once and every
//! gateway in the process (tests start several) renders the same registry.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};

use metrics::Counter;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Declares each metric's name as a constant, its kind, and its documentation, which is also
/// the HELP line `/metrics` gives it.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])+ $kind:ident $name:ident = $value:literal;)+) => {
        $($(#[doc = $doc])+ pub const $name: &str = $value;)+

        /// Gives every metric its HELP line (once the recorder is installed).
        fn describe() {
            $(describe_one(stringify!($kind), $value, concat!($($doc),+).trim());)+
        }
    };
}

metrics! {
    /// HTTP requests answered, by route, method and status.
    counter HTTP_REQUESTS = "gateway_http_requests_total";
    /// Upstream calls (one per page try), by outcome: `ok` or the failure class.
    counter UPSTREAM_CALLS = "gateway_upstream_calls_total";
    /// Latency of each upstream call, in seconds.
    histogram UPSTREAM_LATENCY = "gateway_upstream_call_duration_seconds";
    /// Pages each complete list took.
    histogram PAGES_PER_FETCH = "gateway_upstream_pages_per_fetch";
    /// Upstream calls that could start now without waiting for the pacer.
    gauge QUOTA_AVAILABLE = "gateway_upstream_quota_available_calls";
    /// 1 while this replica shares the quota through Redis, 0 in local mode.
    gauge REDIS_SHARED = "gateway_redis_shared";
    /// Redis operations that failed (each switches the replica to local mode), by operation.
    counter REDIS_ERRORS = "gateway_redis_errors_total";
    /// Lists looked up in Redis after a local miss, by result: hit or miss.
    counter SHARED_LISTS = "gateway_shared_lists_total";
    /// Fetches this replica left to another replica holding the list's lock, and fetches it took
    /// over after waiting (the holder went quiet), by event: `wait` or `takeover`.
    counter SHARED_LOCKS = "gateway_shared_lock_events_total";
    /// Waits for the shared upstream limiter (a slot of the enterprise's quota taken by a replica).
    counter SHARED_LIMITER_WAITS = "gateway_shared_limiter_waits_total";
    /// Webhook events received, by kind and outcome (`applied`, `ignored`, `repeated`, `dropped`).
    counter WEBHOOK_EVENTS = "gateway_webhook_events_total";
    /// Cached lists changed by a batch of webhook events.
    counter PATCHES = "gateway_webhook_patches_total";
    /// Lists kept current by webhook events that were fetched whole again (their provisional
    /// records replaced by the upstream's), by outcome: `replaced` or `failed`.
    counter RECONCILIATIONS = "gateway_webhook_reconciliations_total";
    /// Webhook deliveries refused for a missing or wrong signature or a stale timestamp.
    counter WEBHOOK_REFUSED = "gateway_webhook_refused_total";
    /// 1 while calls to the upstream are held back because it keeps failing (the circuit breaker
    /// is open or probing), else 0.
    gauge CIRCUIT_OPEN = "gateway_upstream_circuit_open";
    /// Retries not made because the retry budget (a fifth of first attempts) was spent.
    counter RETRIES_REFUSED = "gateway_upstream_retries_refused_total";
    /// Bytes of the work budget reserved by lists being fetched and rendered.
    gauge WORK_BYTES = "gateway_work_bytes";
    /// The work budget (`GATEWAY_WORK_MAX_BYTES`).
    gauge WORK_MAX_BYTES = "gateway_work_max_bytes";
    /// Fetches that waited for their share of the work budget.
    counter WORK_WAITS = "gateway_work_waits_total";
    /// Connections refused because the gateway held `GATEWAY_MAX_CONNECTIONS` already.
    counter CONNECTIONS_REFUSED = "gateway_connections_refused_total";
    /// Views of cached lists made (attendance, CSV, people still in), by view and format; a
    /// repeated request is served from the one made.
    counter VIEW_RENDERS = "gateway_view_renders_total";
    /// 1 while the upstream refuses this gateway's credentials, signature or clock, or its day's
    /// quota is spent (`/readyz` says which), else 0.
    gauge LOCKOUT = "gateway_upstream_lockout";
    /// The configured upstream calls per minute (the whole cluster's when Redis is shared).
    gauge QUOTA_PER_MINUTE = "gateway_upstream_quota_calls_per_minute";
    /// The configured upstream calls per day (`WEMEET_CALLS_PER_DAY`).
    gauge QUOTA_PER_DAY = "gateway_upstream_quota_calls_per_day";
    /// The byte bound of the cached lists (`GATEWAY_CACHE_MAX_BYTES`).
    gauge CACHE_MAX_BYTES = "gateway_cache_max_bytes";
    /// The byte bound of the kept views (attendance, CSV): an eighth of the lists' bound.
    gauge VIEWS_MAX_BYTES = "gateway_views_max_bytes";
    /// Tasks alive on the gateway's runtime (connections, fetches, background work).
    gauge TASKS = "gateway_tokio_alive_tasks";
    /// Requests the cache answered, by result: hit, stale_while_revalidate, miss, collapsed,
    /// stale_if_error, pending.
    counter CACHE_REQUESTS = "gateway_cache_requests_total";
    /// Upstream list fetches the cache started (refreshes included).
    counter CACHE_FETCHES = "gateway_cache_fetches_total";
    /// Entries the cache holds.
    gauge CACHE_ENTRIES = "gateway_cache_entries";
    /// Bytes the cache holds (JSON and gzip bodies, plus a fixed overhead per entry).
    gauge CACHE_BYTES = "gateway_cache_bytes";
}

/// The limits a gateway runs with, as gauges, so that alerts can compare use with them.
pub fn limits(
    calls_per_minute: u32,
    calls_per_day: u32,
    cache_max_bytes: u64,
    views_max_bytes: u64,
    work_max_bytes: u64,
) {
    handle();
    metrics::gauge!(WORK_MAX_BYTES).set(work_max_bytes as f64);
    metrics::gauge!(QUOTA_PER_MINUTE).set(f64::from(calls_per_minute));
    metrics::gauge!(QUOTA_PER_DAY).set(f64::from(calls_per_day));
    metrics::gauge!(CACHE_MAX_BYTES).set(cache_max_bytes as f64);
    metrics::gauge!(VIEWS_MAX_BYTES).set(views_max_bytes as f64);
}

/// The process's own gauges, read now: resident memory, open and maximum file descriptors,
/// threads, CPU seconds (Prometheus's standard `process_*` names), and the runtime's tasks.
pub fn sample_process() {
    static COLLECTOR: LazyLock<metrics_process::Collector> = LazyLock::new(|| {
        handle();
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    });
    COLLECTOR.collect();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metrics::gauge!(TASKS).set(runtime.metrics().num_alive_tasks() as f64);
    }
}

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(UPSTREAM_LATENCY.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(PAGES_PER_FETCH.into()),
                        &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
                    )
                })
                .expect("bucket lists are not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    handle
                }
                // Another recorder was installed first (an embedding program's): render our own
                // registry, which then stays empty, rather than fail.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The counter of HTTP requests for one route, method and status.
pub fn http_requests(route: &'static str, method: &'static str, status: u16) -> Counter {
    registered(([HTTP_REQUESTS, route, method], status), || {
        let status = status.to_string();
        metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
    })
}

/// The counter of cache answers with one result.
pub fn cache_requests(result: &'static str) -> Counter {
    registered(
        ([CACHE_REQUESTS, result, ""], 0),
        || metrics::counter!(CACHE_REQUESTS, "result" => result),
    )
}

/// A metric's name, its label values and a status ("" and 0 where it has none).
type CounterKey = ([&'static str; 3], u16);

/// A counter's handle, registered once per metric name and label values and then kept: the
/// `counter!` macro builds its key (allocating its labels) and looks it up in the registry on
/// every call, which is most of what counting costs a cache hit. The keys are the code's own
/// names and statuses, never a caller's text, so they are hashed with foldhash: SipHash, the
/// default, cost a cache hit about 500 instructions more (`bench/hit_instructions.sh`).
fn registered(key: CounterKey, register: impl FnOnce() -> Counter) -> Counter {
    type Counters = HashMap<CounterKey, Counter, foldhash::fast::RandomState>;
    static COUNTERS: LazyLock<RwLock<Counters>> = LazyLock::new(|| {
        // Handles are bound to the recorder installed when they are made: install it first.
        handle();
        RwLock::default()
    });
    if let Some(counter) = COUNTERS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return counter.clone();
    }
    COUNTERS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_insert_with(register)
        .clone()
}

fn describe_one(kind: &str, name: &'static str, help: &'static str) {
    match kind {
        "counter" => metrics::describe_counter!(name, help),
        "histogram" => metrics::describe_histogram!(name, help),
        _ => metrics::describe_gauge!(name, help),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the shipped alerting rules and dashboard query is one this code exports: a
    /// renamed metric would otherwise silence an alert without a sound.
    #[test]
    fn the_alerting_rules_and_the_dashboard_query_only_exported_metrics() {
        let declared = [include_str!("metrics.rs"), include_str!("simulator/mod.rs")];
        sample_process();
        let process = handle().render();
        let mut checked = 0;
        for (file, text) in [
            (
                "alerts.yml",
                include_str!("../deploy/prometheus/alerts.yml"),
            ),
            (
                "wemeet-gateway.json",
                include_str!("../deploy/grafana/dashboards/wemeet-gateway.json"),
            ),
        ] {
            let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            for word in words.filter(|w| {
                ["gateway_", "process_", "simulator_"]
                    .iter()
                    .any(|p| w.starts_with(p))
            }) {
                let name = word.strip_suffix("_bucket").unwrap_or(word);
                let exported = declared.iter().any(|d| d.contains(&format!("\"{name}\"")))
                    || declared[1].contains(&format!("# TYPE {name} "))
                    || process.lines().any(|l| l.starts_with(name));
                assert!(exported, "{file} names {name}, which nothing exports");
                checked += 1;
            }
        }
        assert!(checked > 30, "only {checked} names found");
    }
}
