//! The participant-list cache: one upstream pass per list however many callers ask, fresh when
//! it matters, stale when the upstream fails.
//!
//! Each entry is the response ready to send: the JSON once, its gzip form once, a strong ETag.
//! A hit copies no participant data and serializes nothing. Concurrent misses for one key share
//! one fetch, which runs detached from the requests: a caller that gives up does not cancel it.
//! Freshness is kept on tokio's clock (tests pause it); moka's own expiry only reclaims memory
//! once an entry is past any use.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{Instrument, info_span, warn};
use utoipa::ToSchema;

use crate::clock::unix_now;
use crate::error::{ApiError, upstream_status};
use crate::upstream::{
    ErrorClass, FetchProgress, ParticipantList, ParticipantsQuery, UpstreamClient, UpstreamError,
};

/// How the cache sizes and ages its entries.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Bytes of responses held at most (JSON and gzip together).
    pub max_bytes: u64,
    /// Freshness of a meeting that has ended: scheduled end passed, nobody still in.
    pub ttl_ended: Duration,
    /// Freshness of a meeting in progress.
    pub ttl_live: Duration,
    /// Freshness of a meeting that has not started.
    pub ttl_not_started: Duration,
    /// How long past its freshness an entry may still stand in for a failing upstream.
    pub stale_if_error: Duration,
    /// How long a caller waits for a fetch before getting the stale entry or a 202.
    pub fetch_wait: Duration,
    /// How long "no such meeting" is remembered.
    pub not_found_ttl: Duration,
}

impl Default for CacheConfig {
    /// The production defaults, as the configuration documents them.
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            ttl_ended: Duration::from_secs(3600),
            ttl_live: Duration::from_secs(30),
            ttl_not_started: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(24 * 3600),
            fetch_wait: Duration::from_secs(20),
            not_found_ttl: Duration::from_secs(30),
        }
    }
}

/// Turns a fetched list into the response body: the public representation, owned by `api`.
pub type Render = fn(ParticipantList) -> Vec<u8>;

/// One cached answer.
#[derive(Debug)]
pub struct Entry {
    content: Content,
    fetched_at: Instant,
    fresh_until: Instant,
    usable_until: Instant,
    /// The upstream status of the last refresh that failed since this entry was stored (0: none),
    /// so that stale answers say the upstream is failing.
    failed_refresh: AtomicU16,
}

#[derive(Debug)]
enum Content {
    List {
        json: Bytes,
        gzip: Bytes,
        /// Strong validators differ per content coding (RFC 9110 8.8.3).
        etag: HeaderValue,
        gzip_etag: HeaderValue,
    },
    /// The upstream said the meeting does not exist.
    NotFound(UpstreamError),
}

impl Entry {
    fn weight(&self) -> u32 {
        let bytes = match &self.content {
            Content::List { json, gzip, .. } => json.len() + gzip.len(),
            Content::NotFound(_) => 0,
        };
        u32::try_from(bytes + 512).unwrap_or(u32::MAX)
    }

    fn lifetime(&self) -> Duration {
        self.usable_until.saturating_duration_since(self.fetched_at)
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }

    fn is_usable(&self, now: Instant) -> bool {
        now < self.usable_until
    }

    /// Whether a stale entry may still be served at once while it is refreshed: for as long
    /// again as it was fresh. Older than that, callers wait for the refresh (up to the fetch
    /// wait) and get the stale entry only if the refresh fails or outlasts the wait.
    fn serves_while_revalidating(&self, now: Instant) -> bool {
        now < self.fresh_until + (self.fresh_until - self.fetched_at)
    }

    fn note_failed_refresh(&self, status: u16) {
        self.failed_refresh.store(status, Ordering::Relaxed);
    }

    fn failed_refresh(&self) -> Option<u16> {
        Some(self.failed_refresh.load(Ordering::Relaxed)).filter(|s| *s != 0)
    }
}

/// A fetch in progress, shared by every caller waiting for it.
#[derive(Debug)]
struct Flight {
    /// When the caller that started it looked into the cache: an entry stored after that is
    /// as new as this fetch would be.
    requested_at: Instant,
    /// Started by a caller who asked for a refresh: a fresh entry does not answer it.
    forced: bool,
    progress: FetchProgress,
    done: watch::Sender<Option<Result<Arc<Entry>, UpstreamError>>>,
}

/// What the cache answered, and how (for `Cache-Status`).
#[derive(Debug)]
pub enum Served {
    Entry {
        entry: Arc<Entry>,
        how: How,
    },
    /// The list is still being fetched: 202 with progress.
    Pending {
        records_fetched: usize,
        total_count: Option<i64>,
    },
}

/// How an entry came to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Fresh from the cache.
    Hit,
    /// Stale from the cache while one refresh runs in the background.
    StaleWhileRevalidate,
    /// Fetched for this request; `collapsed` when it joined a fetch already running.
    Miss { collapsed: bool },
    /// The entry held was too stale to serve at once; fetched again for this request.
    Revalidated { collapsed: bool },
    /// Fetched because the caller asked for a refresh (`Cache-Control: no-cache`).
    Refreshed { collapsed: bool },
    /// Stale, because the refresh failed or is still running; carries the failure's status.
    StaleIfError { upstream_status: Option<u16> },
}

#[derive(Debug, Clone)]
pub struct ParticipantCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: UpstreamClient,
    render: Render,
    config: CacheConfig,
    entries: moka::future::Cache<ParticipantsQuery, Arc<Entry>>,
    flights: Mutex<Flights>,
}

type Flights = HashMap<ParticipantsQuery, Arc<Flight>>;

impl Inner {
    /// The registry of running fetches. A panic while it was held leaves nothing half-done
    /// (each use is one map operation), so a poisoned lock is used as it is.
    fn flights(&self) -> std::sync::MutexGuard<'_, Flights> {
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct UntilUnusable;

impl moka::Expiry<ParticipantsQuery, Arc<Entry>> for UntilUnusable {
    fn expire_after_create(
        &self,
        _: &ParticipantsQuery,
        entry: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }

    /// A refresh replaces the entry: its lifetime starts again (moka would keep the old one).
    fn expire_after_update(
        &self,
        _: &ParticipantsQuery,
        entry: &Arc<Entry>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }
}

impl ParticipantCache {
    pub fn new(client: UpstreamClient, config: CacheConfig, render: Render) -> Self {
        // LRU rather than moka's default TinyLFU admission: a list just fetched at the cost of
        // upstream quota must always be kept, or the next caller would fetch it again.
        let entries = moka::future::Cache::builder()
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .max_capacity(config.max_bytes)
            .weigher(|_, entry: &Arc<Entry>| entry.weight())
            .expire_after(UntilUnusable)
            .support_invalidation_closures()
            .build();
        Self {
            inner: Arc::new(Inner {
                client,
                render,
                config,
                entries,
                flights: Mutex::default(),
            }),
        }
    }

    pub fn client(&self) -> &UpstreamClient {
        &self.inner.client
    }

    /// The answer for `key`: from the cache, or from a fetch shared with every other caller.
    pub async fn get(
        &self,
        key: &ParticipantsQuery,
        force_refresh: bool,
    ) -> Result<Served, UpstreamError> {
        let now = Instant::now();
        let cached = self
            .inner
            .entries
            .get(key)
            .await
            .filter(|e| e.is_usable(now));
        if let Some(entry) = &cached
            && entry.is_fresh(now)
            && !force_refresh
        {
            count("hit");
            return Ok(Served::Entry {
                entry: entry.clone(),
                how: How::Hit,
            });
        }
        let (flight, collapsed) = self.start_or_join(key, now, force_refresh);
        if let Some(entry) = &cached
            && !force_refresh
            && entry.serves_while_revalidating(now)
        {
            let how = match entry.failed_refresh() {
                Some(status) => How::StaleIfError {
                    upstream_status: Some(status),
                },
                None => How::StaleWhileRevalidate,
            };
            count(match how {
                How::StaleWhileRevalidate => "stale_while_revalidate",
                _ => "stale_if_error",
            });
            return Ok(Served::Entry {
                entry: entry.clone(),
                how,
            });
        }
        count(if collapsed { "collapsed" } else { "miss" });
        let mut done = flight.done.subscribe();
        let waited =
            tokio::time::timeout(self.inner.config.fetch_wait, done.wait_for(Option::is_some))
                .await;
        let outcome = match waited {
            Ok(Ok(outcome)) => outcome.clone().expect("waited for Some"),
            // The sender lives in the flight we hold, so it cannot be gone; answered all the same.
            Ok(Err(_)) => Err(UpstreamError::Protocol("the fetch failed".into())),
            Err(_) => {
                if let Some(entry) = cached {
                    count("stale_if_error");
                    return Ok(Served::Entry {
                        entry,
                        how: How::StaleIfError {
                            upstream_status: None,
                        },
                    });
                }
                count("pending");
                return Ok(Served::Pending {
                    records_fetched: flight.progress.records(),
                    total_count: flight.progress.total_count(),
                });
            }
        };
        let had_stale = cached.is_some();
        match (outcome, cached) {
            (Ok(entry), _) => Ok(Served::Entry {
                entry,
                how: if force_refresh {
                    How::Refreshed { collapsed }
                } else if had_stale {
                    How::Revalidated { collapsed }
                } else {
                    How::Miss { collapsed }
                },
            }),
            // Only a failing upstream is covered; a refusal (the meeting is gone, the operator
            // lost access, a parameter is refused) is answered as it is.
            (Err(error), Some(entry)) if stands_in_for(&error) => {
                count("stale_if_error");
                Ok(Served::Entry {
                    entry,
                    how: How::StaleIfError {
                        upstream_status: Some(upstream_status(&error).as_u16()),
                    },
                })
            }
            (Err(error), _) => Err(error),
        }
    }

    /// Drops every cached list of one meeting. Fetches already running for it still answer
    /// their callers, but store nothing.
    pub fn invalidate_meeting(&self, meeting_id: &str) {
        self.inner
            .flights()
            .retain(|key, _| key.meeting_id() != meeting_id);
        let meeting_id = meeting_id.to_owned();
        // Fails only when closures are not supported, and they are.
        let _ = self
            .inner
            .entries
            .invalidate_entries_if(move |key, _| key.meeting_id() == meeting_id);
    }

    /// Entries and bytes held, for the metrics.
    pub fn size(&self) -> (u64, u64) {
        (
            self.inner.entries.entry_count(),
            self.inner.entries.weighted_size(),
        )
    }

    /// Lets moka apply pending evictions now (tests and metrics read exact sizes after it).
    pub async fn settle(&self) {
        self.inner.entries.run_pending_tasks().await;
    }

    fn start_or_join(
        &self,
        key: &ParticipantsQuery,
        requested_at: Instant,
        forced: bool,
    ) -> (Arc<Flight>, bool) {
        let mut flights = self.inner.flights();
        if let Some(flight) = flights.get(key) {
            return (flight.clone(), true);
        }
        let flight = Arc::new(Flight {
            requested_at,
            forced,
            progress: FetchProgress::default(),
            done: watch::Sender::new(None),
        });
        flights.insert(key.clone(), flight.clone());
        drop(flights);
        metrics::counter!(crate::metrics::CACHE_FETCHES).increment(1);
        let span = info_span!("cache_fetch", meeting_id = key.meeting_id());
        tokio::spawn(
            self.clone()
                .fetch(key.clone(), flight.clone())
                .instrument(span),
        );
        (flight, false)
    }

    /// The detached fetch: stores the result, then tells every waiter.
    async fn fetch(self, key: ParticipantsQuery, flight: Arc<Flight>) {
        let mut landing = Landing {
            cache: &self,
            key: &key,
            flight: &flight,
            done: false,
        };
        // A fetch that finished between the caller's look and this flight's start already
        // stored what this one would fetch (or, unless a refresh was asked for, something fresh).
        if let Some(entry) = self.inner.entries.get(&key).await
            && (entry.fetched_at >= flight.requested_at
                || (!flight.forced && entry.is_fresh(Instant::now())))
        {
            landing.finish(Ok(entry), false).await;
            return;
        }
        let result = self
            .inner
            .client
            .fetch_participants_reporting(&key, &flight.progress)
            .await;
        let config = &self.inner.config;
        let outcome = match result {
            Ok(list) => {
                let (render, config) = (self.inner.render, config.clone());
                let built =
                    tokio::task::spawn_blocking(move || Entry::for_list(list, render, &config))
                        .await;
                built.map_err(|_| UpstreamError::Protocol("rendering the list failed".into()))
            }
            Err(error) if error.class() == ErrorClass::NotFound => {
                let now = Instant::now();
                Ok(Entry {
                    content: Content::NotFound(error),
                    fetched_at: now,
                    fresh_until: now + config.not_found_ttl,
                    usable_until: now + config.not_found_ttl,
                    failed_refresh: AtomicU16::new(0),
                })
            }
            Err(error) => {
                warn!(%error, "fetch failed; nothing cached");
                if !stands_in_for(&error) {
                    // The upstream refuses this list now: a stale copy must not outlive that.
                    self.inner.entries.invalidate(&key).await;
                } else if let Some(stale) = self.inner.entries.get(&key).await {
                    stale.note_failed_refresh(upstream_status(&error).as_u16());
                }
                Err(error)
            }
        };
        landing.finish(outcome.map(Arc::new), true).await;
    }
}

/// Whether a stale list may be served instead of this failure: only when the upstream failed
/// (a 5xx), never when it refused (a 4xx).
fn stands_in_for(error: &UpstreamError) -> bool {
    upstream_status(error).is_server_error()
}

/// Ends a flight exactly once: stores the result (unless the meeting's cache was dropped while
/// it ran), unregisters the flight, and wakes every waiter. If the fetch task panics, the drop
/// does the same with an error, so that no key stays stuck on a dead flight.
struct Landing<'a> {
    cache: &'a ParticipantCache,
    key: &'a ParticipantsQuery,
    flight: &'a Arc<Flight>,
    done: bool,
}

impl Landing<'_> {
    async fn finish(&mut self, outcome: Result<Arc<Entry>, UpstreamError>, store: bool) {
        // Store first, unregister after: a caller arriving in between joins this flight, or
        // finds the new entry; never neither.
        if let (Ok(entry), true, true) = (&outcome, store, self.is_current()) {
            let entries = &self.cache.inner.entries;
            entries.insert(self.key.clone(), entry.clone()).await;
            // A `DELETE .../cache` that came while storing unregistered this flight, but its
            // invalidation may predate the insert: drop what was just stored.
            if !self.is_current() {
                entries.invalidate(self.key).await;
            }
        }
        self.unregister();
        self.flight.done.send_replace(Some(outcome));
        self.done = true;
    }

    /// Whether the registry still holds this flight for its key (a `DELETE .../cache` removes it).
    fn is_registered(&self, flights: &Flights) -> bool {
        flights
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
    }

    fn is_current(&self) -> bool {
        self.is_registered(&self.cache.inner.flights())
    }

    /// Removes the flight from the registry if it is still this one.
    fn unregister(&self) {
        let mut flights = self.cache.inner.flights();
        if self.is_registered(&flights) {
            flights.remove(self.key);
        }
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.unregister();
            let error = UpstreamError::Protocol("the fetch stopped without an answer".into());
            self.flight.done.send_replace(Some(Err(error)));
        }
    }
}

fn count(result: &'static str) {
    metrics::counter!(crate::metrics::CACHE_REQUESTS, "result" => result).increment(1);
}

impl Entry {
    fn for_list(list: ParticipantList, render: Render, config: &CacheConfig) -> Self {
        let ttl = freshness(&list, config);
        // Vectors grow by doubling; what the cache keeps must be what it weighs.
        let mut json = render(list);
        json.shrink_to_fit();
        let hash = hex::encode(&Sha256::digest(&json)[..16]);
        let etag = HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header");
        let gzip_etag =
            HeaderValue::from_str(&format!("\"{hash}-gz\"")).expect("hex is a valid header");
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 8),
            flate2::Compression::default(),
        );
        let mut gzip = encoder
            .write_all(&json)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        gzip.shrink_to_fit();
        let now = Instant::now();
        Self {
            content: Content::List {
                json: Bytes::from(json),
                gzip: Bytes::from(gzip),
                etag,
                gzip_etag,
            },
            fetched_at: now,
            fresh_until: now + ttl,
            usable_until: now + ttl + config.stale_if_error,
            failed_refresh: AtomicU16::new(0),
        }
    }
}

/// How long a list stays fresh: long once the meeting is over, briefly while it may change.
pub fn freshness(list: &ParticipantList, config: &CacheConfig) -> Duration {
    let now = unix_now().as_secs() as i64;
    let someone_in = list.participants.iter().any(|p| p.left_time.is_none());
    let ended = !someone_in && list.schedule_end_time.is_some_and(|end| end <= now);
    let not_started =
        list.participants.is_empty() && list.schedule_start_time.is_some_and(|start| start > now);
    if ended {
        config.ttl_ended
    } else if not_started {
        config.ttl_not_started
    } else {
        config.ttl_live
    }
}

impl Served {
    /// The HTTP answer, honouring the request's `If-None-Match` and `Accept-Encoding`.
    pub fn into_response(self, request: &HeaderMap) -> Response {
        let (entry, how) = match self {
            Served::Pending {
                records_fetched,
                total_count,
            } => return pending(records_fetched, total_count),
            Served::Entry { entry, how } => (entry, how),
        };
        // RFC 9111: a copy is fresh while `max-age` exceeds its `Age`, so `max-age` is the whole
        // freshness lifetime and the time left is their difference (`ttl` in `Cache-Status`).
        let age = Instant::now().duration_since(entry.fetched_at).as_secs();
        let lifetime = entry.fresh_until.duration_since(entry.fetched_at).as_secs();
        let ttl = lifetime as i64 - age as i64;
        let mut response = match &entry.content {
            Content::NotFound(error) => ApiError::Upstream(error.clone()).into_response(),
            Content::List {
                json,
                gzip,
                etag,
                gzip_etag,
            } => {
                let gzip_ok = accepts_gzip(request);
                let etag = if gzip_ok { gzip_etag } else { etag };
                if if_none_match(request, etag) {
                    let mut r = StatusCode::NOT_MODIFIED.into_response();
                    r.headers_mut().insert(header::ETAG, etag.clone());
                    r
                } else {
                    let body = if gzip_ok { gzip.clone() } else { json.clone() };
                    let mut r = body.into_response();
                    let headers = r.headers_mut();
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    if gzip_ok {
                        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                    headers.insert(header::ETAG, etag.clone());
                    r
                }
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("private, max-age={lifetime}"))
                .expect("digits are a valid header value"),
        );
        headers.insert(header::AGE, HeaderValue::from(age));
        let status = cache_status(how, ttl);
        headers.insert(
            "cache-status",
            HeaderValue::from_str(&status).expect("a valid header value"),
        );
        response
    }
}

/// RFC 9211 `Cache-Status`.
fn cache_status(how: How, ttl: i64) -> String {
    let detail = match how {
        How::Hit => "hit".to_owned(),
        How::StaleWhileRevalidate => "hit; detail=stale-while-revalidate".to_owned(),
        How::Miss { collapsed: false } => "fwd=miss; stored".to_owned(),
        How::Miss { collapsed: true } => "fwd=miss; stored; collapsed".to_owned(),
        How::Revalidated { collapsed: false } => "fwd=stale; stored".to_owned(),
        How::Revalidated { collapsed: true } => "fwd=stale; stored; collapsed".to_owned(),
        How::Refreshed { collapsed: false } => "fwd=request; stored".to_owned(),
        How::Refreshed { collapsed: true } => "fwd=request; stored; collapsed".to_owned(),
        How::StaleIfError {
            upstream_status: Some(status),
        } => format!("fwd=stale; fwd-status={status}; detail=stale-if-error"),
        How::StaleIfError {
            upstream_status: None,
        } => "fwd=stale; detail=still-fetching".to_owned(),
    };
    format!("wemeet-gateway; {detail}; ttl={ttl}")
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

fn pending(records_fetched: usize, total_count: Option<i64>) -> Response {
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
        "cache-status",
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

/// Whether `Accept-Encoding` allows gzip: an explicit `gzip` (or `x-gzip`) item decides by its
/// q-value; otherwise `*` does; otherwise no.
fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in list_items(request, header::ACCEPT_ENCODING) {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if coding == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether the request asks to bypass fresh entries (`Cache-Control: no-cache` or `max-age=0`).
pub fn wants_refresh(request: &HeaderMap) -> bool {
    list_items(request, header::CACHE_CONTROL)
        .any(|d| d.eq_ignore_ascii_case("no-cache") || d == "max-age=0")
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
        assert!(wants_refresh(&headers(&[("cache-control", "no-cache")])));
        assert!(!wants_refresh(&headers(&[("cache-control", "max-age=60")])));
    }

    #[test]
    fn a_replaced_entry_gets_a_new_lifetime() {
        use moka::Expiry as _;
        let now = Instant::now();
        let entry = Arc::new(Entry {
            content: Content::NotFound(UpstreamError::Protocol("x".into())),
            fetched_at: now,
            fresh_until: now + Duration::from_secs(60),
            usable_until: now + Duration::from_secs(600),
            failed_refresh: AtomicU16::new(0),
        });
        let key =
            ParticipantsQuery::new("1", crate::upstream::Operator::user_id("u").expect("valid"))
                .expect("valid");
        let at = std::time::Instant::now();
        let old = Some(Duration::from_secs(5));
        let expiry = UntilUnusable;
        assert_eq!(
            expiry.expire_after_create(&key, &entry, at),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            expiry.expire_after_update(&key, &entry, at, old),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn cache_status_follows_rfc_9211() {
        assert_eq!(cache_status(How::Hit, 30), "wemeet-gateway; hit; ttl=30");
        assert_eq!(
            cache_status(How::Miss { collapsed: true }, 30),
            "wemeet-gateway; fwd=miss; stored; collapsed; ttl=30"
        );
        assert_eq!(
            cache_status(
                How::StaleIfError {
                    upstream_status: Some(502)
                },
                -5
            ),
            "wemeet-gateway; fwd=stale; fwd-status=502; detail=stale-if-error; ttl=-5"
        );
    }
}
