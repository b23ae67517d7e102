//! `/healthz` (alive), `/readyz` (ready to serve) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::AppState;

#[derive(Debug, Serialize)]
pub struct Status {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "alive",
        reason: None,
    })
}

/// Ready unless the upstream has locked the gateway out (credentials, clock, daily quota).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.lockout() {
        None => Json(Status {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "not_ready",
                reason: Some(reason),
            }),
        )
            .into_response(),
    }
}

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
