//! The one public error type and its `application/problem+json` (RFC 9457) form.
//!
//! Upstream failures are mapped here once, exhaustively, from their class. 5xx bodies stay
//! generic; the cause goes to the log inside the request's span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::cache::CacheError;
use crate::upstream::{ErrorClass, InvalidParameter, UpstreamError};

/// Every way a request can fail, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidParameter(#[from] InvalidParameter),
    #[error("missing or malformed credentials: {0}")]
    Unauthorized(AuthFailure),
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    /// A webhook delivery without a valid signature or a current timestamp.
    #[error("a webhook delivery's signature or timestamp is missing or not valid")]
    WebhookUnsigned,
    /// A signed webhook delivery whose content cannot be read; says what.
    #[error("an undecodable webhook delivery: {0}")]
    WebhookUndecodable(&'static str),
    #[error("the request took longer than the gateway allows")]
    RequestTimeout,
    /// The API key's requests per minute are spent; try again after `retry_after` seconds.
    #[error("the API key's rate limit is spent")]
    KeyRateLimited { per_minute: u32, retry_after: u64 },
    /// The gateway holds as many requests as it takes at once.
    #[error("too many requests in flight")]
    Overloaded,
    /// The gateway itself failed; says what, for the log.
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Why a request was not authenticated; says nothing about which keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Rejected,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "an Authorization: Bearer <api key> header is required",
            Self::Malformed => "the Authorization header must be `Bearer <api key>`",
            Self::Rejected => "the API key is not accepted",
        })
    }
}

/// An error, as RFC 9457 `application/problem+json`. `type` is stable per kind of failure.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:wemeet-gateway:problem:invalid-parameter",
    "title": "Invalid parameter",
    "status": 400,
    "detail": "invalid `start_time`: must not be after end_time",
    "parameter": "start_time"
}))]
pub struct Problem {
    /// Stable per kind of failure: `urn:wemeet-gateway:problem:` followed by
    /// `invalid-parameter`, `unauthorized`, `not-found`, `method-not-allowed`, `payload-too-large`,
    /// `meeting-not-found`, `operator-forbidden`, `upstream-rejected-parameter`,
    /// `gateway-misconfigured`, `upstream-rate-limited`, `upstream-unavailable`,
    /// `upstream-invalid-response`, `upstream-error`, `timeout`, `upstream-timeout` or
    /// `internal`.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:wemeet-gateway:problem:[a-z-]+$")]
    pub kind: &'static str,
    /// A short summary of the kind of failure.
    pub title: &'static str,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong in this case, for people.
    pub detail: String,
    /// The parameter that was wrong, for 400s about one parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<&'static str>,
    /// The Tencent error code, when the upstream caused the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_code: Option<i64>,
}

/// Stable problem types.
mod problem_type {
    pub const INVALID_PARAMETER: &str = "urn:wemeet-gateway:problem:invalid-parameter";
    pub const UNAUTHORIZED: &str = "urn:wemeet-gateway:problem:unauthorized";
    pub const NOT_FOUND: &str = "urn:wemeet-gateway:problem:not-found";
    pub const METHOD_NOT_ALLOWED: &str = "urn:wemeet-gateway:problem:method-not-allowed";
    pub const PAYLOAD_TOO_LARGE: &str = "urn:wemeet-gateway:problem:payload-too-large";
    pub const WEBHOOK_UNSIGNED: &str = "urn:wemeet-gateway:problem:webhook-signature";
    pub const WEBHOOK_UNDECODABLE: &str = "urn:wemeet-gateway:problem:webhook-undecodable";
    pub const MEETING_NOT_FOUND: &str = "urn:wemeet-gateway:problem:meeting-not-found";
    pub const FORBIDDEN: &str = "urn:wemeet-gateway:problem:operator-forbidden";
    pub const UPSTREAM_REJECTED_PARAMETER: &str =
        "urn:wemeet-gateway:problem:upstream-rejected-parameter";
    pub const MISCONFIGURED: &str = "urn:wemeet-gateway:problem:gateway-misconfigured";
    pub const RATE_LIMITED: &str = "urn:wemeet-gateway:problem:upstream-rate-limited";
    pub const UNAVAILABLE: &str = "urn:wemeet-gateway:problem:upstream-unavailable";
    pub const INVALID_RESPONSE: &str = "urn:wemeet-gateway:problem:upstream-invalid-response";
    pub const UPSTREAM_ERROR: &str = "urn:wemeet-gateway:problem:upstream-error";
    pub const TIMEOUT: &str = "urn:wemeet-gateway:problem:timeout";
    pub const UPSTREAM_TIMEOUT: &str = "urn:wemeet-gateway:problem:upstream-timeout";
    pub const INTERNAL: &str = "urn:wemeet-gateway:problem:internal";
    pub const KEY_RATE_LIMITED: &str = "urn:wemeet-gateway:problem:key-rate-limited";
    pub const OVERLOADED: &str = "urn:wemeet-gateway:problem:overloaded";
}

impl ApiError {
    /// The status, problem and `Retry-After` (seconds) for this error.
    pub fn problem(&self) -> (StatusCode, Problem, Option<u64>) {
        use problem_type as t;
        let plain = |status: StatusCode, kind, title, detail: String| {
            let problem = Problem {
                kind,
                title,
                status: status.as_u16(),
                detail,
                parameter: None,
                upstream_code: None,
            };
            (status, problem, None)
        };
        match self {
            Self::InvalidParameter(e) => {
                let (status, mut problem, retry_after) = plain(
                    StatusCode::BAD_REQUEST,
                    t::INVALID_PARAMETER,
                    "Invalid parameter",
                    e.to_string(),
                );
                problem.parameter = Some(e.parameter);
                (status, problem, retry_after)
            }
            Self::Unauthorized(why) => plain(
                StatusCode::UNAUTHORIZED,
                t::UNAUTHORIZED,
                "Unauthorized",
                why.to_string(),
            ),
            Self::RouteNotFound => plain(
                StatusCode::NOT_FOUND,
                t::NOT_FOUND,
                "Not found",
                "no such route".into(),
            ),
            Self::MethodNotAllowed => plain(
                StatusCode::METHOD_NOT_ALLOWED,
                t::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this route does not accept that method".into(),
            ),
            Self::PayloadTooLarge => plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                t::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "the request body is larger than the route takes (16 KiB; 1 MiB for webhook deliveries)".into(),
            ),
            Self::WebhookUnsigned => plain(
                StatusCode::UNAUTHORIZED,
                t::WEBHOOK_UNSIGNED,
                "Delivery not verified",
                "the delivery's signature or timestamp is missing or not valid".into(),
            ),
            Self::WebhookUndecodable(what) => plain(
                StatusCode::BAD_REQUEST,
                t::WEBHOOK_UNDECODABLE,
                "Delivery not readable",
                (*what).into(),
            ),
            Self::RequestTimeout => plain(
                StatusCode::GATEWAY_TIMEOUT,
                t::TIMEOUT,
                "Gateway timeout",
                "the request took longer than the gateway allows".into(),
            ),
            Self::KeyRateLimited {
                per_minute,
                retry_after,
            } => {
                let (status, problem, _) = plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    t::KEY_RATE_LIMITED,
                    "Rate limit of the API key spent",
                    format!("this API key may make {per_minute} requests a minute; retry after the time given"),
                );
                (status, problem, Some(*retry_after))
            }
            Self::Overloaded => {
                let (status, problem, _) = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    t::OVERLOADED,
                    "Overloaded",
                    "the gateway holds as many requests as it takes at once; retry shortly".into(),
                );
                (status, problem, Some(1))
            }
            Self::Internal(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                t::INTERNAL,
                "Internal error",
                "the gateway failed; the cause is in its log".into(),
            ),
            Self::Upstream(e) => upstream_problem(e),
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::Upstream(error) => Self::Upstream(error),
            CacheError::Internal(what) => Self::Internal(what),
        }
    }
}

/// The mapping from upstream failure classes: exhaustive, no wildcard.
fn upstream_problem(error: &UpstreamError) -> (StatusCode, Problem, Option<u64>) {
    use problem_type as t;
    let (status, kind, title, detail, retry_after): (_, _, _, String, _) = match error.class() {
        ErrorClass::NotFound => (
            StatusCode::NOT_FOUND,
            t::MEETING_NOT_FOUND,
            "Meeting not found",
            "the upstream knows no such meeting (or sub-meeting)".into(),
            None,
        ),
        ErrorClass::Forbidden => (
            StatusCode::FORBIDDEN,
            t::FORBIDDEN,
            "Operator may not read this meeting",
            "the operator is not the meeting's creator nor an enterprise admin, or is not a registered user".into(),
            None,
        ),
        ErrorClass::BadRequest => (
            StatusCode::BAD_REQUEST,
            t::UPSTREAM_REJECTED_PARAMETER,
            "The upstream rejected a parameter",
            upstream_message(error),
            None,
        ),
        ErrorClass::Credentials | ErrorClass::ClockSkew => (
            StatusCode::BAD_GATEWAY,
            t::MISCONFIGURED,
            "Gateway misconfigured",
            "the upstream rejected the gateway's credentials, signature or clock; operators: see the gateway's log".into(),
            None,
        ),
        ErrorClass::MinuteLimit => (
            StatusCode::SERVICE_UNAVAILABLE,
            t::RATE_LIMITED,
            "Upstream quota exhausted",
            "the enterprise's per-minute API quota is spent; retry after the time given".into(),
            Some(seconds_to_next_minute()),
        ),
        ErrorClass::DailyLimit => (
            StatusCode::SERVICE_UNAVAILABLE,
            t::RATE_LIMITED,
            "Upstream quota exhausted",
            "the enterprise's daily API quota is spent; retry after the time given".into(),
            Some(seconds_to_next_china_day()),
        ),
        ErrorClass::Transient | ErrorClass::Replay => (
            StatusCode::BAD_GATEWAY,
            t::UNAVAILABLE,
            "Upstream unavailable",
            "the upstream kept failing after retries".into(),
            None,
        ),
        ErrorClass::Protocol => (
            StatusCode::BAD_GATEWAY,
            t::INVALID_RESPONSE,
            "Invalid upstream response",
            "the upstream answered something the gateway cannot use".into(),
            None,
        ),
        ErrorClass::Deadline => (
            StatusCode::GATEWAY_TIMEOUT,
            t::UPSTREAM_TIMEOUT,
            "Upstream timeout",
            "the list could not be fetched within the gateway's deadline".into(),
            None,
        ),
        ErrorClass::Unknown => (
            StatusCode::BAD_GATEWAY,
            t::UPSTREAM_ERROR,
            "Upstream error",
            "the upstream answered an error the gateway does not know".into(),
            None,
        ),
    };
    // A refused parameter is named when the upstream's message names one we send.
    let parameter = (error.class() == ErrorClass::BadRequest)
        .then(|| {
            crate::upstream::query::PARAMETERS
                .into_iter()
                .find(|p| detail.contains(p))
        })
        .flatten();
    let problem = Problem {
        kind,
        title,
        status: status.as_u16(),
        detail,
        parameter,
        upstream_code: error.code(),
    };
    (status, problem, retry_after)
}

/// The upstream's own message for a parameter it refused: it names the parameter, and holds
/// nothing secret.
fn upstream_message(error: &UpstreamError) -> String {
    match error {
        UpstreamError::Api { message, .. } if !message.is_empty() => message.clone(),
        _ => "the upstream refused a parameter".into(),
    }
}

fn seconds_to_next_minute() -> u64 {
    let now = crate::clock::unix_now().as_secs();
    60 - now % 60
}

/// Tencent's daily quota follows the day in China (UTC+8).
fn seconds_to_next_china_day() -> u64 {
    let now = crate::clock::unix_now().as_secs() + crate::clock::CHINA_UTC_OFFSET_SECS;
    86_400 - now % 86_400
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, problem, retry_after) = self.problem();
        if status.is_server_error() {
            tracing::error!(error = %self, class = ?self.upstream_class(), "request failed");
        }
        if let Self::Upstream(e) = &self
            && matches!(e.class(), ErrorClass::Credentials | ErrorClass::ClockSkew)
        {
            tracing::error!(
                code = e.code(),
                "the upstream rejected the gateway: {}",
                misconfiguration_hint(e)
            );
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::KeyRateLimited {
            per_minute,
            retry_after,
        } = self
        {
            // draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
            let policy = format!("\"per-key\";q={per_minute};w=60");
            let left = format!("\"per-key\";r=0;t={retry_after}");
            for (name, value) in [("ratelimit-policy", policy), ("ratelimit", left)] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
        }
        if let Self::Unauthorized(why) = self {
            let challenge = match why {
                AuthFailure::Missing => r#"Bearer realm="wemeet-gateway""#,
                AuthFailure::Malformed => {
                    r#"Bearer realm="wemeet-gateway", error="invalid_request""#
                }
                AuthFailure::Rejected => r#"Bearer realm="wemeet-gateway", error="invalid_token""#,
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl ApiError {
    fn upstream_class(&self) -> Option<ErrorClass> {
        match self {
            Self::Upstream(e) => Some(e.class()),
            _ => None,
        }
    }
}

/// What an operator should check, by the code the upstream gave.
fn misconfiguration_hint(error: &UpstreamError) -> &'static str {
    match error.code() {
        Some(200003) => "signature rejected: WEMEET_SECRET_KEY does not belong to WEMEET_SECRET_ID",
        Some(190303) => {
            "unknown credentials: check WEMEET_APP_ID and WEMEET_SECRET_ID (and WEMEET_SDK_ID: set it only if one was assigned)"
        }
        Some(200001) => "a required header was missing: check the gateway's version",
        Some(190300) => "clock skew: this machine's clock is more than 5 minutes off; check NTP",
        _ => "check the credentials and the clock",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn api(code: i64) -> ApiError {
        ApiError::Upstream(UpstreamError::Api {
            class: ErrorClass::of_code(code),
            status: 400,
            code,
            new_code: None,
            message: "sub_meeting_id is required".into(),
        })
    }

    /// Every upstream class, pinned to its status and problem type.
    #[test]
    fn upstream_classes_map_to_statuses_and_types() {
        use problem_type as t;
        let cases = [
            (api(9003), 404, t::MEETING_NOT_FOUND, false),
            (api(9042), 403, t::FORBIDDEN, false),
            (api(190004), 400, t::UPSTREAM_REJECTED_PARAMETER, false),
            (api(200003), 502, t::MISCONFIGURED, false),
            (api(190303), 502, t::MISCONFIGURED, false),
            (api(190300), 502, t::MISCONFIGURED, false),
            (api(190310), 503, t::RATE_LIMITED, true),
            (api(190311), 503, t::RATE_LIMITED, true),
            (api(41), 502, t::UNAVAILABLE, false),
            (api(190301), 502, t::UNAVAILABLE, false),
            (api(424242), 502, t::UPSTREAM_ERROR, false),
            (
                ApiError::Upstream(UpstreamError::Protocol("x".into())),
                502,
                t::INVALID_RESPONSE,
                false,
            ),
            (
                ApiError::Upstream(UpstreamError::Deadline(Duration::from_secs(1))),
                504,
                t::UPSTREAM_TIMEOUT,
                false,
            ),
            (
                ApiError::Upstream(UpstreamError::Transport("reset".into())),
                502,
                t::UNAVAILABLE,
                false,
            ),
        ];
        for (error, status, kind, retry_after) in cases {
            let (s, problem, retry) = error.problem();
            assert_eq!((s.as_u16(), problem.kind), (status, kind), "{error}");
            assert_eq!(retry.is_some(), retry_after, "{error}");
            assert_eq!(problem.status, status);
        }
    }

    #[test]
    fn the_caches_own_failure_is_an_internal_error_not_the_upstreams() {
        let (status, problem, _) =
            ApiError::from(CacheError::Internal("rendering the list failed")).problem();
        assert_eq!(
            (status.as_u16(), problem.kind),
            (500, problem_type::INTERNAL)
        );
        assert!(
            !problem.detail.contains("rendering"),
            "5xx bodies stay generic"
        );
        let (status, problem, _) =
            ApiError::from(CacheError::Upstream(UpstreamError::Status(503))).problem();
        assert_eq!(
            (status.as_u16(), problem.kind),
            (502, problem_type::UNAVAILABLE)
        );
    }

    #[test]
    fn a_parameter_the_upstream_refused_is_named_in_the_detail() {
        let (_, problem, _) = api(190004).problem();
        assert!(problem.detail.contains("sub_meeting_id"));
        assert_eq!(problem.parameter, Some("sub_meeting_id"));
        assert_eq!(problem.upstream_code, Some(190004));
    }

    #[test]
    fn retry_after_points_into_the_next_period() {
        let next_minute = seconds_to_next_minute();
        assert!((1..=60).contains(&next_minute));
        assert!((1..=86_400).contains(&seconds_to_next_china_day()));
    }
}
