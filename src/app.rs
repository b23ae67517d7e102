//! The one composition root: [`Gateway::build`] turns settings into a bound, ready gateway (the
//! upstream client, the cache with the API's renderer, the state, the router and its middleware
//! stack). `serve`, `demo`, the tests and the benchmarks all build it this way.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::{Level, info_span};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::api::{self, ApiKeys, AppState, Views};
use crate::cache::ParticipantCache;
use crate::cluster::limiter::SharedLimiter;
use crate::cluster::lists::SharedLists;
use crate::cluster::{InvalidRedisUrl, Redis};
use crate::config::Settings;
use crate::error::ApiError;
use crate::server::{BindError, Server};
use crate::upstream::UpstreamClient;
use crate::upstream::client::ClientBuildError;
use crate::webhooks::apply::apply_events;
use crate::webhooks::receiver::Receiver;

/// A gateway built and bound, not yet serving.
#[derive(Debug)]
pub struct Gateway {
    server: Server<Front>,
    shutdown_grace: Duration,
}

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the upstream client: {0}")]
    Client(#[from] ClientBuildError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("GATEWAY_REDIS_URL: {0}")]
    Redis(#[from] InvalidRedisUrl),
}

impl Gateway {
    /// Builds the gateway from its settings and binds its listener.
    pub async fn build(settings: Settings) -> Result<Self, BuildError> {
        // Views of the lists (attendance, CSV) are kept in an eighth of the lists' budget again.
        let views_max_bytes = settings.cache.max_bytes / 8;
        crate::metrics::limits(
            settings.upstream.calls_per_minute,
            settings.upstream.calls_per_day,
            settings.cache.max_bytes,
            views_max_bytes,
            settings.cache.work_max_bytes,
        );
        let (client, redis) = match &settings.redis {
            None => (UpstreamClient::new(settings.upstream)?, None),
            Some(shared) => {
                let redis = Redis::connect(shared).await?;
                let limiter = SharedLimiter::new(
                    redis.clone(),
                    settings.upstream.credentials.app_id(),
                    settings.upstream.calls_per_minute,
                    shared.calls_per_day,
                );
                let client = UpstreamClient::shared(
                    settings.upstream,
                    limiter,
                    shared.fallback_calls_per_minute,
                )?;
                (client, Some(redis))
            }
        };
        let shared = redis.clone().map(SharedLists::new);
        let views = Views::new(views_max_bytes);
        let cache =
            ParticipantCache::new(client.clone(), settings.cache, api::render, shared.clone());
        // Events are applied to the cached lists in the order they came.
        let webhooks = settings.webhooks.map(|keys| {
            let (receiver, events) = Receiver::new(keys, shared);
            tokio::spawn(apply_events(
                events,
                cache.clone(),
                api::apply_events,
                settings.events_reconcile,
            ));
            receiver
        });
        let state = AppState::new(
            cache,
            client,
            settings.default_operator,
            ApiKeys::new(
                settings.api_key_digests,
                &settings.api_key_rates,
                settings.rate_limit,
                settings.allow_anonymous,
            ),
            redis,
            webhooks,
            views,
        );
        // Without CORS the stack adds nothing to a hit but the request id and the count, which
        // the front adds too; with it, every answer goes through the stack.
        let fast_hits = settings.cors_origins.is_empty();
        let router = router(
            state.clone(),
            settings.cors_origins,
            settings.request_timeout,
            settings.max_in_flight,
        );
        let front = Front {
            fast_hits: fast_hits.then_some(state),
            router,
        };
        Ok(Self {
            server: Server::bind(&settings.listen, front)
                .await?
                .with_limits(settings.connections),
            shutdown_grace: settings.shutdown_grace,
        })
    }

    /// Where the gateway listens (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish within the
    /// shutdown grace.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.server
            .serve_with_grace(shutdown, self.shutdown_grace)
            .await
    }

    /// Serves in the background until the runtime ends (tests, benchmarks).
    pub fn spawn(self) -> SocketAddr {
        self.server.spawn()
    }
}

/// The metric label of a request's route: its matched template, never the raw path (ids would
/// explode the label set); `unmatched` when no route matched. The templates are the router's
/// own, so there is no second list of routes to keep in step.
fn route_label(request: &Request) -> &'static str {
    match request.extensions().get::<MatchedPath>() {
        Some(route) => interned(route.as_str()),
        None => "unmatched",
    }
}

/// One `'static` copy of each route template the process has seen, so that a label costs no
/// allocation per request. The set is bounded by the routes compiled in.
fn interned(template: &str) -> &'static str {
    static TEMPLATES: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());
    let known = |templates: &[&'static str]| templates.iter().copied().find(|t| *t == template);
    if let Some(label) = known(&TEMPLATES.read().unwrap_or_else(PoisonError::into_inner)) {
        return label;
    }
    let mut templates = TEMPLATES.write().unwrap_or_else(PoisonError::into_inner);
    known(&templates).unwrap_or_else(|| {
        let label: &'static str = Box::leak(template.into());
        templates.push(label);
        label
    })
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
            crate::metrics::http_requests(this.route, this.method, response.status().as_u16())
                .increment(1);
        }
        Poll::Ready(result)
    }
}

/// What the server calls with each request as hyper reads it. Fresh hits of whole lists are
/// answered here at once (`api::fast_hit`), before the router: the stack would add only the
/// request id and the count to them, which this adds itself. Everything else goes through the
/// router and its middleware stack; so does every request while tower-http's request logging
/// is on (it would log the hits), and every request when there are no fast hits (`None`: CORS
/// origins are configured).
#[derive(Debug, Clone)]
struct Front {
    fast_hits: Option<AppState>,
    router: Router,
}

impl Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let router = self.router.clone();
        let Some(state) = self.fast_hits.clone() else {
            return Box::pin(router.oneshot(request));
        };
        Box::pin(async move {
            let logged = tracing::enabled!(target: "tower_http::trace::on_request", Level::DEBUG)
                || tracing::enabled!(target: "tower_http::trace::on_response", Level::DEBUG);
            let (method, uri, headers) = (request.method(), request.uri(), request.headers());
            let answered = match logged {
                true => None,
                false => api::fast_hit::answer(&state, method, uri, headers).await,
            };
            let Some(mut response) = answered else {
                return router.oneshot(request).await;
            };
            let id = match headers.get(REQUEST_ID) {
                Some(id) => Some(id.clone()),
                None => MakeRequestUuid
                    .make_request_id(&request)
                    .map(RequestId::into_header_value),
            };
            if let Some(id) = id {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            let status = response.status().as_u16();
            crate::metrics::http_requests(api::fast_hit::ROUTE, "GET", status).increment(1);
            Ok(response)
        })
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The body limit's own 413 is plain text: answer a problem like every other error.
fn problem_for_too_large(response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge.into_response()
    } else {
        response
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
    ApiError::Internal("a handler panicked").into_response()
}

/// The gateway's router with its whole middleware stack.
fn router(
    state: AppState,
    cors_origins: Vec<HeaderValue>,
    timeout: Duration,
    max_in_flight: usize,
) -> Router {
    let (api, openapi) = api::routes(max_in_flight);
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
            // Each route group has its own body limit (api::routes); any 413 is a problem.
            .map_response(problem_for_too_large),
    );
    let app = if cors_origins.is_empty() {
        app
    } else {
        app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(cors_origins))
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
    fn route_templates_are_interned_once() {
        let first = interned("/meetings/{meeting_id}/participants");
        let again = interned(&String::from("/meetings/{meeting_id}/participants"));
        assert!(std::ptr::eq(first, again));
        assert_eq!(interned("/healthz"), "/healthz");
    }

    #[test]
    fn a_panic_becomes_a_generic_500_problem() {
        let response = log_panic(Box::new("index out of bounds"));
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
