//! A fresh hit of a whole participant list, answered before the router: the same checks and
//! the same answer as `listParticipants`, without routing, extractors or the middleware stack
//! (`app.rs` puts it in front and says when). Anything else, or anything it cannot answer
//! exactly as the full stack would, it leaves to the full stack.

use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;

use super::AppState;
use super::cached_response;
use super::views::{Of, ViewParams};
use crate::cache::{How, Served};
use crate::upstream::query::ParticipantsParams;

/// The route it answers, as the request counter labels it.
pub const ROUTE: &str = "/meetings/{meeting_id}/participants";

/// The answer to `GET /meetings/{id}/participants` when the list is a fresh hit and the
/// caller may have it; `None` otherwise, having changed nothing (no rate taken, nothing
/// counted). Percent-encoded ids, view parameters, refreshes, stale or missing lists, and every
/// failure (bad parameters, a bad or limited key) go to the full stack, which answers them.
pub async fn answer(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let meeting_id = uri
        .path()
        .strip_prefix("/meetings/")?
        .strip_suffix("/participants")
        .filter(|id| !id.is_empty() && !id.contains(['/', '%']))?;
    let raw = uri.query().unwrap_or("");
    let now = crate::clock::unix_now().as_secs() as i64;
    let query = ParticipantsParams::from_query_string(raw)
        .ok()?
        .into_query(meeting_id, state.default_operator(), now)
        .ok()?;
    let view = ViewParams::from_query_string(raw)
        .ok()?
        .into_view(Of::Participants, headers)
        .ok()?;
    if !view.is_stored_list() {
        return None;
    }
    let entry = state
        .cache()
        .fresh(&query, cached_response::wish(headers))
        .await?;
    // The key last, once the front can answer: what it steps aside from, the stack checks
    // again, so nothing it steps aside from hashes the key twice.
    let keys = state.keys();
    let caller = keys.check(headers.get(header::AUTHORIZATION)).ok()?;
    keys.take(caller).ok()?;
    state.cache().count_hit();
    Some(cached_response::respond(
        Served::Entry {
            entry,
            how: How::Hit,
        },
        headers,
    ))
}
