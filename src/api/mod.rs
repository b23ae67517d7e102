//! HTTP: handlers and the public response types (one file per resource), the state they share,
//! API-key authentication, the HTTP face of a cached list, and the OpenAPI document they declare.
//!
//! Every route is registered here through [`OpenApiRouter`], so each path is written once: in
//! its handler's `#[utoipa::path]`, which is both the route and its documentation.

mod attendance;
mod auth;
mod cached_response;
mod examples;
pub mod fast_hit;
mod health;
mod participant_rows;
mod participants;
mod records;
mod spreadsheet;
mod state;
mod stored_list;
mod views;
mod webhooks;

pub use auth::ApiKeys;
pub use participants::{apply_events, patch, render};
pub use state::AppState;
pub use stored_list::{PatchError, StoredList};
pub use views::{Of, ViewParams, Views, render as render_view};

use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, RefOr, Type};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's fixed parts; paths and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wemeet-gateway",
        description = "Who attended a Tencent Meeting (腾讯会议) meeting or webinar, in one call.

The gateway holds the enterprise's Tencent Meeting credentials, signs and paces the upstream calls, \
merges every page of the upstream's participant list into one document, and caches it. Field names \
are Tencent's; times are unix seconds as integers; display names are decoded from base64.

Authenticate with `Authorization: Bearer <api key>` (in Swagger UI: **Authorize**). `wemeet-gateway demo` \
prints a key for its simulated upstream, whose meetings include `144115214488302892` (two records), \
`100000000000000001` (1,234 records, live), `100000000000000002` (past the upstream's 50,000-record cap), \
`100000000000000003` (recurring: give `sub_meeting_id=1717000001` or `1717000002`) and \
`100000000000000004` (not started).

Errors are `application/problem+json` (RFC 9457) with a stable `type` per kind of failure."
    ),
    modifiers(&BearerKey),
    tags(
        (name = "participants", description = "Participant lists of meetings and webinars."),
        (name = "operations", description = "Health, readiness and metrics, for operators; no key needed."),
        (name = "webhooks", description = "Tencent's event deliveries (join, leave, start, end), signed by Tencent; no key needed. Enabled by `WEMEET_WEBHOOK_TOKEN`."),
    ),
)]
struct ApiDoc;

/// Declares the `api_key` bearer scheme that protected operations name.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key the gateway accepts (its operators configure SHA-256 digests of the keys).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents the `x-request-id` header on every response: the request's own id when it sent
/// one, else one made for it (the id in the gateway's log lines).
struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "The request's `x-request-id`, or one made for it: the id in the gateway's log lines.",
            ))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response
                            .headers
                            .insert("x-request-id".to_owned(), RefOr::T(header.clone()));
                    }
                }
            }
        }
    }
}

/// Gives the attendance operation every answer of the participants operation but its `200`:
/// both answer from the same cached list, through the same code, so they fail alike; stated
/// once, in `listParticipants`.
struct SameAnswersAsParticipants;

impl Modify for SameAnswersAsParticipants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        let Some(shared) = paths
            .get("/meetings/{meeting_id}/participants")
            .and_then(|item| item.get.as_ref())
            .map(|get| get.responses.responses.clone())
        else {
            return;
        };
        if let Some(attendance) = paths
            .get_mut("/meetings/{meeting_id}/attendance")
            .and_then(|item| item.get.as_mut())
        {
            for (status, response) in shared.into_iter().filter(|(s, _)| s != "200") {
                attendance
                    .responses
                    .responses
                    .entry(status)
                    .or_insert(response);
            }
        }
    }
}

/// Largest request body the API's routes accept (none of them reads one).
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest webhook delivery accepted.
const MAX_DELIVERY_BYTES: usize = 1024 * 1024;

/// The body limit of the routes that take no body: a body declared larger is refused at once;
/// any other is read (a chunked body has no length to refuse up front, and one left unread would
/// be accepted whatever its size) and refused past the limit. Requests whose body is known to be
/// empty pass untouched.
async fn read_any_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use http_body::Body as _;
    let hint = request.body().size_hint();
    if hint.exact() == Some(0) {
        return next.run(request).await;
    }
    let too_large = || crate::error::ApiError::PayloadTooLarge.into_response();
    if hint.lower() > MAX_BODY_BYTES as u64 {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, bytes.into())).await,
        Err(_) => too_large(),
    }
}

/// Every route, each with its body limit, the list routes holding at most `max_in_flight`
/// requests at once between them, and the OpenAPI document built from them.
pub fn routes(max_in_flight: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let webhooks = OpenApiRouter::new()
        .routes(routes!(webhooks::check, webhooks::deliver))
        .layer(RequestBodyLimitLayer::new(MAX_DELIVERY_BYTES));
    // Past the cap a request is refused at once (503, Retry-After), not queued: a queue would
    // only make every caller wait. Health and metrics stay outside it, so that probes and
    // scrapes still answer under load. Each group's layers are applied in one `layer` call:
    // every call wraps each route once more (a boxed service and a future per request).
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let lists = OpenApiRouter::new()
        .routes(routes!(participants::list_participants))
        .routes(routes!(attendance::list_attendance))
        .routes(routes!(participants::drop_cached))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(read_any_body))
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    crate::error::ApiError::Overloaded
                }))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight)),
        );
    let operations = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .layer(axum::middleware::from_fn(read_any_body));
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lists)
        .merge(operations)
        .merge(webhooks)
        .split_for_parts();
    // Applied here, once every path is in the document.
    SameAnswersAsParticipants.modify(&mut openapi);
    RequestIdHeader.modify(&mut openapi);
    (router, openapi)
}

/// The OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(1).1
}

/// The OpenAPI document as pretty JSON with a final newline: the form committed in
/// `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
