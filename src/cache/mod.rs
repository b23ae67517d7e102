//! The participant-list cache: one upstream pass per list however many callers ask, fresh when
//! it matters, stale when the upstream fails. No HTTP here: the API hands in the renderer that
//! turns a list's pages, as they arrive, into the body to store, and gives the answers their
//! HTTP form.
//!
//! - [`decision`]: what to do with a request, as pure functions (hit, stale-while-revalidate,
//!   stale-if-error, revalidate, miss, still fetching).
//! - [`entry`]: one cached answer, its freshness and expiry.
//! - [`flight`]: the shared, detached fetch and its drop guard.
//! - [`budget`]: the bytes that fetches in flight may take together.
//!
//! Each entry is the renderer's body, made once per fetch while its pages arrive: a hit copies
//! and renders nothing.
//! Concurrent misses for one key share one fetch, which runs detached from the requests: a
//! caller that gives up does not cancel it. Freshness is kept on tokio's clock (tests pause
//! it); moka's own expiry only reclaims memory once an entry is past any use.

pub mod budget;
mod decision;
mod entry;
mod flight;
mod shared;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use budget::WorkBudget;
use decision::{Decision, EntryState, Failure, Settled, Waited, decide, settle};
pub use decision::{How, Wish};

use entry::UntilUnusable;
pub use entry::{Body, Entry, Render, Renderer};
use flight::Flights;

use tokio::sync::broadcast::error::RecvError;

use crate::cluster::lists::{Announcement, SharedLists};
use crate::upstream::{ParticipantsQuery, UpstreamClient, UpstreamError};

/// How the cache sizes and ages its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes of bodies held at most.
    pub max_bytes: u64,
    /// Freshness of a meeting that has ended: scheduled end passed, nobody still in.
    pub ttl_ended: Duration,
    /// Freshness of a meeting in progress.
    pub ttl_live: Duration,
    /// Freshness of a meeting that has not started.
    pub ttl_not_started: Duration,
    /// How long past its freshness an entry may still stand in for a failing upstream.
    pub stale_if_error: Duration,
    /// How long a caller waits for a fetch before getting the stale entry or a pending answer.
    pub fetch_wait: Duration,
    /// How long "no such meeting" is remembered.
    pub not_found_ttl: Duration,
    /// Bytes that lists being fetched and rendered may take together (see [`budget`]).
    pub work_max_bytes: u64,
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
            work_max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why the cache has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The upstream failed or refused.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The cache itself failed: the renderer panicked, or a fetch task died.
    #[error("the cache failed: {0}")]
    Internal(&'static str),
}

impl CacheError {
    /// Whether the upstream refused the request (see [`crate::upstream::ErrorClass::is_refusal`]):
    /// then no stale copy stands in.
    fn is_refusal(&self) -> bool {
        match self {
            Self::Upstream(error) => error.class().is_refusal(),
            Self::Internal(_) => false,
        }
    }

    fn failure(&self) -> Failure {
        Failure {
            fwd_status: match self {
                Self::Upstream(error) => error.http_status(),
                Self::Internal(_) => None,
            },
        }
    }
}

/// What the cache answered.
#[derive(Debug)]
pub enum Served<B> {
    /// An entry, and how it came to be served.
    Entry { entry: Arc<Entry<B>>, how: How },
    /// The list is still being fetched: how far it has got.
    Pending {
        records_fetched: usize,
        total_count: Option<i64>,
    },
}

/// The cache: a cheap handle.
#[derive(Debug)]
pub struct ParticipantCache<B: Body> {
    inner: Arc<Inner<B>>,
}

impl<B: Body> Clone for ParticipantCache<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner<B: Body> {
    client: UpstreamClient,
    render: Render<B>,
    config: CacheConfig,
    entries: moka::future::Cache<ParticipantsQuery, Arc<Entry<B>>>,
    flights: Mutex<Flights<B>>,
    /// The lists shared with other replicas, when there are any.
    shared: Option<SharedLists>,
    /// Shared by every flight.
    budget: WorkBudget,
}

impl<B: Body> Inner<B> {
    /// The registry of running fetches. A panic while it was held leaves nothing half-done
    /// (each use is one map operation), so a poisoned lock is used as it is.
    fn flights(&self) -> std::sync::MutexGuard<'_, Flights<B>> {
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<B: Body> ParticipantCache<B> {
    /// A cache over `client`, storing what the renderers `render` starts make of each fetched
    /// list.
    pub fn new(
        client: UpstreamClient,
        config: CacheConfig,
        render: Render<B>,
        shared: Option<SharedLists>,
    ) -> Self {
        // LRU rather than moka's default TinyLFU admission: a list just fetched at the cost of
        // upstream quota must always be kept, or the next caller would fetch it again.
        let entries = moka::future::Cache::builder()
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .max_capacity(config.max_bytes)
            .weigher(|_, entry: &Arc<Entry<B>>| entry.weight())
            .expire_after(UntilUnusable)
            .support_invalidation_closures()
            .build();
        Self {
            inner: Arc::new(Inner {
                client,
                render,
                budget: WorkBudget::new(config.work_max_bytes),
                config,
                entries,
                flights: Mutex::default(),
                shared,
            }),
        }
        .listening()
    }

    /// Drops the local copies of a meeting's lists whenever any replica purges them.
    fn listening(self) -> Self {
        if let Some(shared) = &self.inner.shared {
            let mut announcements = shared.announcements();
            let cache = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    let meeting_id = match announcements.recv().await {
                        Ok(Announcement::Purged(meeting_id)) => meeting_id,
                        Ok(Announcement::Landed(_) | Announcement::Event(_)) => continue,
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return,
                    };
                    let Some(inner) = cache.upgrade() else { return };
                    ParticipantCache { inner }.invalidate_locally(&meeting_id);
                }
            });
        }
        self
    }

    /// The entry for `key` if it is a fresh hit for this wish; `None` for anything
    /// [`Self::get`] would fetch, refresh or serve stale. Counts nothing: a caller that answers
    /// with the entry says so with [`Self::count_hit`].
    pub async fn fresh(&self, key: &ParticipantsQuery, wish: Wish) -> Option<Arc<Entry<B>>> {
        match decide(self.held(key).await, wish, Instant::now()) {
            Decision::Hit(entry) => Some(entry),
            Decision::ServeStale(..) | Decision::Fetch(..) => None,
        }
    }

    /// The entry held for `key`, with its state, for [`decide`].
    async fn held(&self, key: &ParticipantsQuery) -> Option<(Arc<Entry<B>>, EntryState)> {
        let entry = self.inner.entries.get(key).await?;
        let state = entry.state();
        Some((entry, state))
    }

    /// Counts a hit answered with an entry from [`Self::fresh`].
    pub fn count_hit(&self) {
        count("hit");
    }

    /// The answer for `key`: from the cache, or from a fetch shared with every other caller.
    pub async fn get(&self, key: &ParticipantsQuery, wish: Wish) -> Result<Served<B>, CacheError> {
        let now = Instant::now();
        let (why, stale) = match decide(self.held(key).await, wish, now) {
            Decision::Hit(entry) => {
                count("hit");
                return Ok(Served::Entry {
                    entry,
                    how: How::Hit,
                });
            }
            Decision::ServeStale(entry, how) => {
                self.start_or_join(key, now, false);
                count(stale_label(how));
                return Ok(Served::Entry { entry, how });
            }
            Decision::Fetch(why, stale) => (why, stale),
        };
        let (flight, collapsed) = self.start_or_join(key, now, wish == Wish::Refresh);
        count(if collapsed { "collapsed" } else { "miss" });
        let mut done = flight.done.subscribe();
        let waited =
            tokio::time::timeout(self.inner.config.fetch_wait, done.wait_for(Option::is_some))
                .await;
        let waited = match waited {
            Err(_) => Waited::StillFetching,
            Ok(outcome) => match outcome.ok().and_then(|outcome| (*outcome).clone()) {
                Some(Ok(entry)) => Waited::Landed(entry),
                Some(Err(error)) => Waited::Failed(error),
                // `wait_for` returns only an outcome, and the sender lives in the flight held
                // here; answered all the same.
                None => Waited::Failed(CacheError::Internal("a flight ended without an outcome")),
            },
        };
        match settle(why, collapsed, waited, stale) {
            Settled::Landed(entry, how) => Ok(Served::Entry { entry, how }),
            Settled::Stale(entry, how) => {
                count(stale_label(how));
                Ok(Served::Entry { entry, how })
            }
            Settled::Pending => {
                count("pending");
                Ok(Served::Pending {
                    records_fetched: flight.progress.records(),
                    total_count: flight.progress.total_count(),
                })
            }
            Settled::Failed(error) => Err(error),
        }
    }

    /// Fetches each cached list of a meeting again, in the background (the meeting started or
    /// ended: its list changes). Callers meanwhile get what is cached.
    pub fn refresh_meeting(&self, meeting_id: &str) {
        let now = Instant::now();
        for key in self.keys_of(meeting_id) {
            self.start_or_join(&key, now, true);
        }
    }

    /// The keys of a meeting's cached lists.
    fn keys_of(&self, meeting_id: &str) -> Vec<ParticipantsQuery> {
        self.inner
            .entries
            .iter()
            .filter(|(key, _)| key.meeting_id() == meeting_id)
            .map(|(key, _)| ParticipantsQuery::clone(&key))
            .collect()
    }

    /// Replaces the body of each cached list of a meeting with what `patch` makes of it, given
    /// the list's key (`None`: unchanged), keeping its fetch time; see [`Entry::patched`].
    /// Returns how many changed.
    pub async fn patch_meeting(
        &self,
        meeting_id: &str,
        fresh_for: Duration,
        patch: impl Fn(&ParticipantsQuery, &B) -> Option<B>,
    ) -> usize {
        let mut changed = 0;
        for key in self.keys_of(meeting_id) {
            let patched = self
                .inner
                .entries
                .entry(key.clone())
                .and_compute_with(|held| {
                    let patched = held.and_then(|held| {
                        let entry = held.into_value();
                        let body = patch(&key, entry.body().ok()?)?;
                        Some(Arc::new(entry.patched(body, fresh_for)))
                    });
                    std::future::ready(match patched {
                        Some(entry) => moka::ops::compute::Op::Put(entry),
                        None => moka::ops::compute::Op::Nop,
                    })
                })
                .await;
            if matches!(patched, moka::ops::compute::CompResult::ReplacedWith(_)) {
                changed += 1;
            }
        }
        changed
    }

    /// Drops every cached list of one meeting. Fetches already running for it still answer
    /// their callers, but store nothing.
    pub async fn invalidate_meeting(&self, meeting_id: &str) {
        self.invalidate_locally(meeting_id);
        if let Some(shared) = &self.inner.shared {
            shared.purge(meeting_id).await;
        }
    }

    fn invalidate_locally(&self, meeting_id: &str) {
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

    /// Bytes of the work budget the lists being fetched hold now.
    pub fn work_in_flight(&self) -> u64 {
        self.inner.budget.in_use()
    }

    /// Lets moka apply pending evictions now (tests and metrics read exact sizes after it).
    pub async fn settle(&self) {
        self.inner.entries.run_pending_tasks().await;
    }
}

/// The metric label of a stale answer.
fn stale_label(how: How) -> &'static str {
    match how {
        How::StaleWhileRevalidate => "stale_while_revalidate",
        _ => "stale_if_error",
    }
}

fn count(result: &'static str) {
    crate::metrics::cache_requests(result).increment(1);
}
