//! `GET|POST /webhooks/wemeet`: Tencent's event deliveries. Tencent's signature is the
//! authentication (no API key); the route answers 404 unless `WEMEET_WEBHOOK_TOKEN` is set.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::clock::unix_now;
use crate::error::{ApiError, Problem};
use crate::webhooks::delivery::EVENT_ANSWER;
use crate::webhooks::receiver::{Delivery, Refusal, Signed};

/// Tencent's URL check
///
/// Tencent checks a subscription URL by sending `check_str` (base64, encrypted when an
/// EncodingAESKey is configured), signed like every delivery; the answer is its plaintext,
/// as the whole body.
#[utoipa::path(
    get,
    path = "/webhooks/wemeet",
    tag = "webhooks",
    operation_id = "webhook_check",
    params(
        ("check_str" = String, Query, description = "What to decode and answer, as Tencent sends it."),
        ("timestamp" = String, Header, description = "Unix milliseconds (13 digits); at most 5 minutes from the gateway's clock."),
        ("nonce" = String, Header, description = "Tencent's nonce."),
        ("signature" = String, Header, description = "Lower-case hex SHA-1 of the token, `timestamp`, `nonce` and `check_str`, sorted and joined."),
    ),
    responses(
        (status = 200, description = "The plaintext of `check_str`, as the whole body.", body = String, content_type = "text/plain"),
        (status = 400, description = "Signed, but `check_str` does not decode.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid signature, or a stale timestamp.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhooks are not enabled (`WEMEET_WEBHOOK_TOKEN` is not set).", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let receiver = state.webhooks().ok_or(ApiError::RouteNotFound)?;
    let plaintext = receiver
        .check(signed(&headers), query.as_deref(), now_ms())
        .map_err(refusal)?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        plaintext,
    )
        .into_response())
}

/// An event delivery
///
/// Tencent posts events (`meeting.participant-joined`, `meeting.participant-left`, ...) as
/// `{"data": "<base64>"}`, signed. A valid delivery is acknowledged with Tencent's exact text
/// and processed after the answer; a delivery Tencent repeats (same `trace_id`) is acknowledged
/// and ignored.
#[utoipa::path(
    post,
    path = "/webhooks/wemeet",
    tag = "webhooks",
    operation_id = "webhook_deliver",
    params(
        ("timestamp" = String, Header, description = "Unix milliseconds (13 digits); at most 5 minutes from the gateway's clock."),
        ("nonce" = String, Header, description = "Tencent's nonce."),
        ("signature" = String, Header, description = "Lower-case hex SHA-1 of the token, `timestamp`, `nonce` and `data`, sorted and joined."),
    ),
    request_body(content = Delivery, description = "At most 1 MiB.", content_type = "application/json"),
    responses(
        (status = 200, description = "Received: the body is exactly `successfully received callback`.", body = String, content_type = "text/plain"),
        (status = 400, description = "Signed, but the data does not decode or is not an event.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid signature, or a stale timestamp.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhooks are not enabled (`WEMEET_WEBHOOK_TOKEN` is not set).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A body over 1 MiB.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn deliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let receiver = state.webhooks().ok_or(ApiError::RouteNotFound)?;
    receiver
        .deliver(signed(&headers), &body, now_ms())
        .await
        .map_err(refusal)?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        EVENT_ANSWER,
    )
        .into_response())
}

fn signed(headers: &HeaderMap) -> Signed<'_> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Signed {
        timestamp: text("timestamp"),
        nonce: text("nonce"),
        signature: text("signature"),
    }
}

fn refusal(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Unsigned => ApiError::WebhookUnsigned,
        Refusal::Undecodable(what) => ApiError::WebhookUndecodable(what),
    }
}

fn now_ms() -> u64 {
    u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX)
}
