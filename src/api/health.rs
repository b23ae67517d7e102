//! `/healthz` (alive), `/readyz` (ready to serve) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Whether the gateway is alive or ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `alive`, `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why the gateway is not ready: the upstream rejects its credentials or clock, or the
    /// enterprise's daily quota is spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// With Redis configured: `shared` (the quota is shared with the other replicas) or
    /// `degraded` (Redis is unreachable; this replica paces itself at its fallback rate and
    /// returns to shared mode by itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "shared")]
    pub redis: Option<&'static str>,
    /// `failing` while the upstream keeps failing and calls to it are held back (stale lists are
    /// served meanwhile, so the gateway stays ready); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'static str>,
}

/// Alive
///
/// The process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "The process is alive.", body = Status)),
)]
pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "alive",
        reason: None,
        redis: None,
        upstream: None,
    })
}

/// Ready to serve
///
/// Ready unless the upstream has locked the gateway out: it rejects the gateway's credentials or
/// clock, or the enterprise's daily quota is spent. An upstream that keeps failing leaves the
/// gateway ready (it serves stale lists meanwhile); `upstream` says `failing` then. Redis being unreachable does not make the
/// gateway unready (it serves on its own meanwhile); `redis` says `degraded` then.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve.", body = Status),
        (status = 503, description = "Not ready; `reason` says why.", body = Status),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let redis = state.redis_mode();
    let upstream = state.upstream_failing().then_some("failing");
    match state.lockout() {
        None => Json(Status {
            status: "ready",
            reason: None,
            redis,
            upstream,
        })
        .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "not_ready",
                reason: Some(reason),
                redis,
                upstream,
            }),
        )
            .into_response(),
    }
}

/// Prometheus metrics
///
/// Requests by route and status, cache hits, misses, stale answers and size, upstream calls by
/// outcome, and the quota left.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Apply the cache's pending bookkeeping first, so that its sizes are exact.
    state.cache().settle().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.render_metrics(),
    )
        .into_response()
}
