//! The gateway application: state, router, middleware stack, serving with graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::info_span;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::api;
use crate::cache::{CacheConfig, ParticipantCache};
use crate::error::{ApiError, AuthFailure};
use crate::upstream::{Operator, UpstreamClient};

/// What the gateway needs to build its router.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub upstream: UpstreamClient,
    pub cache: CacheConfig,
    /// The operator used when a caller names none.
    pub default_operator: Option<Operator>,
    /// SHA-256 digests of the accepted API keys.
    pub api_key_digests: Vec<[u8; 32]>,
    /// Serve callers without a key.
    pub allow_anonymous: bool,
    pub cors_origins: Vec<HeaderValue>,
    pub request_timeout: Duration,
}

/// The state every handler shares: cheap handles only.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cache: ParticipantCache,
    default_operator: Option<Operator>,
    keys: ApiKeys,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn default_operator(&self) -> Option<&Operator> {
        self.inner.default_operator.as_ref()
    }

    pub fn cache(&self) -> &ParticipantCache {
        &self.inner.cache
    }

    /// Why the gateway is not ready, if it is not.
    pub fn lockout(&self) -> Option<&'static str> {
        self.inner.cache.client().lockout()
    }

    /// The Prometheus text, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        let (entries, bytes) = self.inner.cache.size();
        metrics::gauge!(crate::metrics::CACHE_ENTRIES).set(entries as f64);
        metrics::gauge!(crate::metrics::CACHE_BYTES).set(bytes as f64);
        metrics::gauge!(crate::metrics::QUOTA_AVAILABLE)
            .set(f64::from(self.inner.cache.client().quota_available()));
        self.inner.metrics.render()
    }
}

/// Inbound API keys, kept only as SHA-256 digests.
#[derive(Clone)]
struct ApiKeys {
    digests: Vec<[u8; 32]>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("digests", &self.digests.len())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

impl ApiKeys {
    fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthFailure> {
        let Some(value) = authorization else {
            return if self.allow_anonymous {
                Ok(())
            } else {
                Err(AuthFailure::Missing)
            };
        };
        // The scheme is case-insensitive (RFC 9110 11.1).
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .filter(|k| !k.is_empty() && !k.contains(' '))
            .ok_or(AuthFailure::Malformed)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Compare with every digest, in constant time, so timing reveals nothing.
        let matched = self
            .digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&digest).unwrap_u8());
        if matched == 1 {
            Ok(())
        } else {
            Err(AuthFailure::Rejected)
        }
    }
}

/// Proof that a request carried an accepted API key (or that anonymous access is on). Every
/// protected handler takes it as its first extractor, so the key is checked before anything
/// else about the request.
#[derive(Debug)]
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .inner
            .keys
            .check(parts.headers.get(header::AUTHORIZATION))
            .map(|()| Authorized)
            .map_err(ApiError::Unauthorized)
    }
}

/// The route template as a metric label: fixed strings, never the raw path (ids would explode
/// the label set).
fn route_label(request: &Request) -> &'static str {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match route {
        Some("/meetings/{meeting_id}/participants") => "/meetings/{meeting_id}/participants",
        Some("/meetings/{meeting_id}/participants/cache") => {
            "/meetings/{meeting_id}/participants/cache"
        }
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some("/openapi.json") => "/openapi.json",
        Some(path) if path.starts_with("/swagger-ui") => "/swagger-ui",
        Some(_) => "other",
        None => "unmatched",
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts every answer by route, method and status; outermost, so that timeouts, panics and
/// CORS preflights are counted too.
#[derive(Debug, Clone, Copy)]
struct CountRequestsLayer;

impl<S> Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests { inner }
    }
}

#[derive(Debug, Clone)]
struct CountRequests<S> {
    inner: S,
}

impl<S> Service<Request> for CountRequests<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Counted {
            route: route_label(&request),
            method: method_label(request.method()),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    struct Counted<F> {
        route: &'static str,
        method: &'static str,
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for Counted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let status = response.status().as_u16().to_string();
            metrics::counter!(
                crate::metrics::HTTP_REQUESTS,
                "route" => *this.route,
                "method" => *this.method,
                "status" => status
            )
            .increment(1);
        }
        Poll::Ready(result)
    }
}

/// Largest request body accepted (no route reads one).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body limit's own 413 is plain text: answer a problem like every other error.
fn problem_for_too_large(response: Response<tower_http::limit::ResponseBody<Body>>) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge.into_response()
    } else {
        response.map(Body::new)
    }
}

/// A handler panicked: the cause goes to the log, the caller gets a generic 500 problem.
fn log_panic(panic: Box<dyn std::any::Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "a handler panicked");
    ApiError::Internal.into_response()
}

/// Builds the gateway's router with its whole middleware stack.
pub fn router(config: AppConfig) -> Router {
    let state = AppState {
        inner: Arc::new(Inner {
            cache: ParticipantCache::new(config.upstream, config.cache, api::participants::render),
            default_operator: config.default_operator,
            keys: ApiKeys {
                digests: config.api_key_digests,
                allow_anonymous: config.allow_anonymous,
            },
            metrics: crate::metrics::handle(),
        }),
    };
    let (api, openapi) = api::routes();
    let app = api
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .merge(
            SwaggerUi::new("/swagger-ui")
                .url("/openapi.json", openapi)
                // Swagger UI's default sends the spec's address to validator.swagger.io
                // whenever the page is not on localhost: it must call nothing outside.
                .config(SwaggerConfig::from("/openapi.json").validator_url("none")),
        );
    let timeout = config.request_timeout;
    // Layers added later wrap those added earlier. From the outside in: metrics (so timeouts
    // and panics are counted), CORS (so browsers can read every answer), request id, trace,
    // panics, timeout, body limit.
    let app = app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    // The path, never the query: it may carry operator ids.
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok());
                    info_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path(),
                        request_id,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(CatchPanicLayer::custom(log_panic))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::RequestTimeout
            }))
            .timeout(timeout)
            .map_response(problem_for_too_large)
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
    );
    let app = if config.cors_origins.is_empty() {
        app
    } else {
        app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(config.cors_origins))
                .allow_methods([Method::GET, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::IF_NONE_MATCH,
                    header::CACHE_CONTROL,
                    HeaderName::from_static("x-request-id"),
                ])
                .expose_headers([
                    header::ETAG,
                    header::AGE,
                    header::RETRY_AFTER,
                    HeaderName::from_static("cache-status"),
                    HeaderName::from_static("x-request-id"),
                ])
                .max_age(Duration::from_secs(600)),
        )
    };
    app.layer(CountRequestsLayer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_generic_500_problem() {
        let response = log_panic(Box::new("index out of bounds"));
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn keys_are_checked_against_their_digests() {
        let keys = ApiKeys {
            digests: vec![Sha256::digest(b"right").into()],
            allow_anonymous: false,
        };
        let header = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(keys.check(Some(&header("Bearer right"))), Ok(()));
        assert_eq!(
            keys.check(Some(&header("Bearer wrong"))),
            Err(AuthFailure::Rejected)
        );
        assert_eq!(
            keys.check(Some(&header("Basic right"))),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(keys.check(None), Err(AuthFailure::Missing));
        assert!(!format!("{keys:?}").contains("right"));
    }
}
