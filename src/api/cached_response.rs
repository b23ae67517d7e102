//! The HTTP face of a cached list: the answer built from what the cache served (`ETag` and
//! `304`, gzip when accepted, `Cache-Control`, `Age`, `Cache-Status` (RFC 9211), or a `202`
//! while the list is still being fetched), and the request headers that steer it.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::stored_list::StoredList;
use super::views::Rendered;
use crate::cache::{Entry, How, Served, Wish};
use crate::error::ApiError;
use crate::upstream::UpstreamError;

/// RFC 9211's header, named once (a name given as text is parsed at every insert).
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// What the request wishes of the cache: a refresh on `Cache-Control: no-cache` or `max-age=0`.
pub fn wish(request: &HeaderMap) -> Wish {
    let refresh = list_items(request, header::CACHE_CONTROL)
        .any(|d| d.eq_ignore_ascii_case("no-cache") || d == "max-age=0");
    if refresh { Wish::Refresh } else { Wish::Cached }
}

/// A form of a cached list that can be sent: the stored list itself, or a view made of it.
pub trait Representation {
    /// The strong validator of the body in one coding.
    fn etag(&self, gzip: bool) -> &HeaderValue;
    /// The body in one coding.
    fn body(&self, gzip: bool) -> axum::body::Body;
    fn content_type(&self) -> HeaderValue;
    /// `Content-Disposition`, for a file to save.
    fn disposition(&self) -> Option<&HeaderValue> {
        None
    }
}

impl Representation for StoredList {
    fn etag(&self, gzip: bool) -> &HeaderValue {
        StoredList::etag(self, gzip)
    }

    fn body(&self, gzip: bool) -> axum::body::Body {
        axum::body::Body::new(StoredList::body(self, gzip))
    }

    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static("application/json")
    }
}

impl Representation for Rendered {
    fn etag(&self, gzip: bool) -> &HeaderValue {
        Rendered::etag(self, gzip)
    }

    fn body(&self, gzip: bool) -> axum::body::Body {
        axum::body::Body::new(Rendered::body(self, gzip))
    }

    fn content_type(&self) -> HeaderValue {
        Rendered::content_type(self).clone()
    }

    fn disposition(&self) -> Option<&HeaderValue> {
        Rendered::disposition(self)
    }
}

/// The HTTP answer for what the cache served, the stored list as it is, honouring the
/// request's `If-None-Match` and `Accept-Encoding`.
pub fn respond(served: Served<StoredList>, request: &HeaderMap) -> Response {
    match served {
        Served::Pending {
            records_fetched,
            total_count,
        } => pending(records_fetched, total_count),
        Served::Entry { entry, how } => {
            let body = entry.body().map(|list| list as &dyn Representation);
            answer(&entry, how, body, request)
        }
    }
}

/// The answer for a cached entry in one representation (or the upstream's "no such meeting"
/// it holds), with the entry's caching headers.
pub fn answer(
    entry: &Entry<StoredList>,
    how: How,
    body: Result<&dyn Representation, &UpstreamError>,
    request: &HeaderMap,
) -> Response {
    let mut response = match body {
        Err(not_found) => ApiError::Upstream(not_found.clone()).into_response(),
        Ok(list) => {
            let gzip = accepts_gzip(request);
            let etag = list.etag(gzip);
            if if_none_match(request, etag) {
                let mut r = StatusCode::NOT_MODIFIED.into_response();
                r.headers_mut().insert(header::ETAG, etag.clone());
                r
            } else {
                let mut r = Response::new(list.body(gzip));
                // Room for every header of the answer, the request id's included, at once.
                *r.headers_mut() = HeaderMap::with_capacity(10);
                let headers = r.headers_mut();
                headers.insert(header::CONTENT_TYPE, list.content_type());
                if gzip {
                    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                headers.insert(header::ETAG, etag.clone());
                if let Some(disposition) = list.disposition() {
                    headers.insert(header::CONTENT_DISPOSITION, disposition.clone());
                }
                r
            }
        }
    };
    let [cache_control, age, cache_status] = caching_values(
        entry.freshness_lifetime().as_secs(),
        entry.age(Instant::now()).as_secs(),
        how,
        entry.is_patched(),
    );
    let headers = response.headers_mut();
    // `Accept` chooses between JSON and CSV.
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Encoding, Accept"),
    );
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(header::AGE, age);
    headers.insert(CACHE_STATUS, cache_status);
    response
}

/// `Cache-Control`, `Age` and RFC 9211's `Cache-Status` of an answer, written into one buffer
/// (the three values share it: one allocation, not one each).
///
/// RFC 9111: a copy is fresh while `max-age` exceeds its `Age`, so `max-age` is the whole
/// freshness lifetime and the time left is their difference (`ttl`). `fwd-status` is the status
/// the upstream itself answered; a copy changed by Tencent's events since its fetch is a hit
/// with `detail=patched`.
fn caching_values(lifetime: u64, age: u64, how: How, patched: bool) -> [HeaderValue; 3] {
    let detail: std::borrow::Cow<'static, str> = match how {
        How::Hit if patched => "hit; detail=patched".into(),
        How::Hit => "hit".into(),
        How::StaleWhileRevalidate => "hit; detail=stale-while-revalidate".into(),
        How::Miss { collapsed: false } => "fwd=miss; stored".into(),
        How::Miss { collapsed: true } => "fwd=miss; stored; collapsed".into(),
        How::Revalidated { collapsed: false } => "fwd=stale; stored".into(),
        How::Revalidated { collapsed: true } => "fwd=stale; stored; collapsed".into(),
        How::Refreshed { collapsed: false } => "fwd=request; stored".into(),
        How::Refreshed { collapsed: true } => "fwd=request; stored; collapsed".into(),
        How::StaleIfError {
            fwd_status: Some(status),
        } => format!("fwd=stale; fwd-status={status}; detail=stale-if-error").into(),
        How::StaleIfError { fwd_status: None } => "fwd=stale; detail=stale-if-error".into(),
        How::StaleStillFetching => "fwd=stale; detail=still-fetching".into(),
    };
    let ttl = lifetime as i64 - age as i64;
    let mut digits = itoa::Buffer::new();
    let mut text = String::with_capacity(96);
    text.push_str("private, max-age=");
    text.push_str(digits.format(lifetime));
    let cache_control_end = text.len();
    text.push_str(digits.format(age));
    let age_end = text.len();
    for part in ["wemeet-gateway; ", &detail, "; ttl=", digits.format(ttl)] {
        text.push_str(part);
    }
    let text = bytes::Bytes::from(text);
    let value = |from: usize, to: usize| {
        HeaderValue::from_maybe_shared(text.slice(from..to))
            .expect("digits and the cache's own words are a valid header value")
    };
    [
        value(0, cache_control_end),
        value(cache_control_end, age_end),
        value(age_end, text.len()),
    ]
}

/// The body of a `202 Accepted`: the list is still being fetched.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchInProgress {
    /// Always `fetching`.
    #[schema(example = "fetching")]
    pub status: &'static str,
    /// Records received from the upstream so far.
    #[schema(example = 12_300)]
    pub records_fetched: usize,
    /// Records the upstream counts for the whole list, once its first page has arrived.
    #[schema(example = 50_000)]
    pub total_count: Option<i64>,
}

pub fn pending(records_fetched: usize, total_count: Option<i64>) -> Response {
    let body = FetchInProgress {
        status: "fetching",
        records_fetched,
        total_count,
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(2));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CACHE_STATUS,
        HeaderValue::from_static("wemeet-gateway; fwd=miss; detail=fetching"),
    );
    response
}

/// The items of a comma-separated request header, over all its lines, trimmed.
fn list_items(request: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    request
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Whether `If-None-Match` names this entity (weak comparison, as RFC 9110 asks for it).
fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    list_items(request, header::IF_NONE_MATCH)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// The items of a negotiation header (`Accept`, `Accept-Encoding`) with their q-values: 1 when
/// absent, 0 when unreadable.
pub fn weighted_items(
    request: &HeaderMap,
    name: header::HeaderName,
) -> impl Iterator<Item = (&str, f32)> {
    list_items(request, name).map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let value = parts.next().unwrap_or_default();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        (value, q)
    })
}

/// Whether `Accept-Encoding` allows gzip: an explicit `gzip` (or `x-gzip`) item decides by its
/// q-value; otherwise `*` does; otherwise no.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for (coding, q) in weighted_items(request, header::ACCEPT_ENCODING) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if coding == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn request_headers_are_read_as_http_means_them() {
        let etag = HeaderValue::from_static("\"abc\"");
        assert!(if_none_match(
            &headers(&[("if-none-match", "\"x\", \"abc\"")]),
            &etag
        ));
        assert!(if_none_match(
            &headers(&[("if-none-match", "W/\"abc\"")]),
            &etag
        ));
        assert!(if_none_match(&headers(&[("if-none-match", "*")]), &etag));
        assert!(!if_none_match(
            &headers(&[("if-none-match", "\"abcd\"")]),
            &etag
        ));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip;q=0, br"
        )])));
        assert!(!accepts_gzip(&headers(&[])));
        assert_eq!(
            wish(&headers(&[("cache-control", "no-cache")])),
            Wish::Refresh
        );
        assert_eq!(
            wish(&headers(&[("cache-control", "max-age=60")])),
            Wish::Cached
        );
    }

    #[test]
    fn caching_headers_follow_rfc_9111_and_9211() {
        let values = |lifetime, age, how, patched| {
            caching_values(lifetime, age, how, patched).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            values(30, 0, How::Hit, false),
            ["private, max-age=30", "0", "wemeet-gateway; hit; ttl=30"]
        );
        assert_eq!(
            values(300, 20, How::Hit, true),
            [
                "private, max-age=300",
                "20",
                "wemeet-gateway; hit; detail=patched; ttl=280"
            ]
        );
        assert_eq!(
            values(30, 0, How::Miss { collapsed: true }, false)[2],
            "wemeet-gateway; fwd=miss; stored; collapsed; ttl=30"
        );
        let stale = How::StaleIfError {
            fwd_status: Some(500),
        };
        assert_eq!(
            values(30, 35, stale, false),
            [
                "private, max-age=30",
                "35",
                "wemeet-gateway; fwd=stale; fwd-status=500; detail=stale-if-error; ttl=-5"
            ]
        );
        assert_eq!(
            values(30, 35, How::StaleIfError { fwd_status: None }, false)[2],
            "wemeet-gateway; fwd=stale; detail=stale-if-error; ttl=-5"
        );
        assert_eq!(
            values(30, 35, How::StaleStillFetching, false)[2],
            "wemeet-gateway; fwd=stale; detail=still-fetching; ttl=-5"
        );
    }
}
