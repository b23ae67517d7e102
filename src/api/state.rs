//! The state every handler shares: one `Clone` struct of cheap handles.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use super::auth::ApiKeys;
use super::stored_list::StoredList;
use super::views::Views;
use crate::cache::ParticipantCache;
use crate::cluster::Redis;
use crate::upstream::{Operator, UpstreamClient};
use crate::webhooks::receiver::Receiver;

/// The cache of participant lists, storing them ready to send.
type ListCache = ParticipantCache<StoredList>;

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cache: ListCache,
    /// The client the cache fetches through, for readiness and the quota gauge.
    client: UpstreamClient,
    default_operator: Option<Operator>,
    keys: ApiKeys,
    metrics: PrometheusHandle,
    redis: Option<Redis>,
    webhooks: Option<Receiver>,
    views: Views,
}

impl AppState {
    /// The state for a gateway reading through `cache`, which fetches with `client`.
    pub fn new(
        cache: ListCache,
        client: UpstreamClient,
        default_operator: Option<Operator>,
        keys: ApiKeys,
        redis: Option<Redis>,
        webhooks: Option<Receiver>,
        views: Views,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache,
                client,
                default_operator,
                keys,
                metrics: crate::metrics::handle(),
                redis,
                webhooks,
                views,
            }),
        }
    }

    pub(super) fn default_operator(&self) -> Option<&Operator> {
        self.inner.default_operator.as_ref()
    }

    pub(super) fn cache(&self) -> &ListCache {
        &self.inner.cache
    }

    /// The views made of cached lists (attendance, CSV, people still in).
    pub(super) fn views(&self) -> &Views {
        &self.inner.views
    }

    pub(super) fn keys(&self) -> &ApiKeys {
        &self.inner.keys
    }

    /// Whether calls to the upstream are held back because it keeps failing.
    pub(super) fn upstream_failing(&self) -> bool {
        self.inner.client.upstream_failing()
    }

    /// Why the gateway is not ready, if it is not.
    pub(super) fn lockout(&self) -> Option<&'static str> {
        self.inner.client.lockout()
    }

    /// The receiver of Tencent's event deliveries, when webhooks are enabled.
    pub(super) fn webhooks(&self) -> Option<&Receiver> {
        self.inner.webhooks.as_ref()
    }

    /// `shared` or `degraded` (Redis unreachable: this replica on its own) when Redis is
    /// configured.
    pub(super) fn redis_mode(&self) -> Option<&'static str> {
        let redis = self.inner.redis.as_ref()?;
        Some(if redis.is_shared() {
            "shared"
        } else {
            "degraded"
        })
    }

    /// The Prometheus text, with the gauges read now.
    pub(super) fn render_metrics(&self) -> String {
        let (entries, bytes) = self.inner.cache.size();
        metrics::gauge!(crate::metrics::CACHE_ENTRIES).set(entries as f64);
        metrics::gauge!(crate::metrics::CACHE_BYTES).set(bytes as f64);
        metrics::gauge!(crate::metrics::WORK_BYTES).set(self.inner.cache.work_in_flight() as f64);
        metrics::gauge!(crate::metrics::QUOTA_AVAILABLE)
            .set(f64::from(self.inner.client.quota_available()));
        metrics::gauge!(crate::metrics::LOCKOUT).set(if self.lockout().is_some() {
            1.0
        } else {
            0.0
        });
        crate::metrics::sample_process();
        self.inner.metrics.render()
    }
}
