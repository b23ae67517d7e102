//! Flights: one detached fetch per key, shared by every caller waiting for it, ended exactly once
//! by a drop guard even if its task panics.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, info_span, warn};

use super::budget::Reservation;
use super::entry::{Body, Entry, freshness};
use super::shared::Coordinated;
use super::{CacheError, ParticipantCache};
use crate::upstream::{
    ErrorClass, FetchProgress, ListHead, PageSink, Participant, ParticipantsQuery, RECORD_CAP,
};

/// What a flight ends with: the entry stored, or why there is none.
pub(super) type Outcome<B> = Result<Arc<Entry<B>>, CacheError>;

/// A fetch in progress, shared by every caller waiting for it.
#[derive(Debug)]
pub(super) struct Flight<B> {
    /// When the caller that started it looked into the cache: an entry stored after that is
    /// as new as this fetch would be.
    requested_at: Instant,
    /// Started by a caller who asked for a refresh: a fresh entry does not answer it.
    forced: bool,
    pub(super) progress: FetchProgress,
    pub(super) done: watch::Sender<Option<Outcome<B>>>,
}

/// The running fetches, by key.
pub(super) type Flights<B> = HashMap<ParticipantsQuery, Arc<Flight<B>>>;

impl<B: Body> ParticipantCache<B> {
    /// The flight for `key`: the one running (`true`: the caller collapsed into it), or a new
    /// one, started detached from the caller.
    pub(super) fn start_or_join(
        &self,
        key: &ParticipantsQuery,
        requested_at: Instant,
        forced: bool,
    ) -> (Arc<Flight<B>>, bool) {
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
    async fn fetch(self, key: ParticipantsQuery, flight: Arc<Flight<B>>) {
        let mut landing = Landing {
            cache: &self,
            key: &key,
            flight: &flight,
            done: false,
        };
        let inner = &self.inner;
        // A fetch that finished between the caller's look and this flight's start already
        // stored what this one would fetch (or, unless a refresh was asked for, something fresh).
        let held = inner.entries.get(&key).await;
        if let Some(entry) = &held
            && flight.is_answered_by(entry)
        {
            landing.finish(Ok(entry.clone()), false).await;
            return;
        }
        // A list patched by webhook events is being reconciled with the upstream's.
        let reconciling = held.is_some_and(|entry| entry.is_patched());
        // With replicas: another one's fetch may answer this flight, or be running.
        let mut lock = match self.coordinate(&key, &flight).await {
            Coordinated::Landed(entry) => {
                landing.finish(Ok(entry), true).await;
                return;
            }
            Coordinated::Holder(lock) => Some(lock),
            Coordinated::Alone => None,
        };
        if let Some(lock) = &mut lock {
            let shared = flight.clone();
            lock.keep_alive(move || (shared.progress.records(), shared.progress.total_count()));
        }
        // The renderer takes each page on a blocking thread while the next one is fetched. Each
        // turn is its own short blocking task (a thread held for the whole fetch would stop
        // tokio's paused clock from advancing in tests), and takes every page waiting then: a
        // handoff between threads per page cost a cold 50,000-record list a tenth of its CPU
        // (bench/README.md). A few pages may wait for it, no more.
        let (feed, mut inbox) = mpsc::channel(4);
        let render = inner.render;
        let rendering = tokio::spawn(async move {
            let mut renderer = render();
            while let Some(item) = inbox.recv().await {
                // Pages that arrived while the last ones were rendered go to the same blocking
                // task: one handoff between threads for all of them.
                let mut pages = Vec::new();
                let mut whole = None;
                let mut next = Ok(item);
                while let Ok(item) = next {
                    match item {
                        Feed::Page(records) => pages.push(records),
                        Feed::Whole(head) => {
                            whole = Some(head);
                            break;
                        }
                    }
                    next = inbox.try_recv();
                }
                let work = move || {
                    for records in pages {
                        renderer.page(records);
                    }
                    match whole {
                        Some(head) => ControlFlow::Break(renderer.finish(&head)),
                        None => ControlFlow::Continue(renderer),
                    }
                };
                match tokio::task::spawn_blocking(work).await.ok()? {
                    ControlFlow::Continue(more) => renderer = more,
                    ControlFlow::Break(body) => return Some(body),
                }
            }
            None // the fetch failed
        });
        let mut sink = Forward {
            feed,
            progress: &flight.progress,
            reservation: inner.budget.reservation(),
            records: 0,
        };
        let result = inner
            .client
            .fetch_participants_into(&key, &flight.progress, &mut sink)
            .await;
        let config = &inner.config;
        let outcome = match result {
            Ok(head) => {
                let ttl = freshness(&head, config);
                let _ = sink.feed.send(Feed::Whole(head)).await;
                match rendering.await.ok().flatten() {
                    Some(body) => Ok(Entry::list(body, ttl, config)),
                    None => {
                        tracing::error!("rendering the list failed");
                        Err(CacheError::Internal("rendering the list failed"))
                    }
                }
            }
            // "No such meeting" is remembered briefly, so that repeated asks cost no quota.
            Err(error) if error.class() == ErrorClass::NotFound => {
                Ok(Entry::not_found(error, config))
            }
            Err(error) => Err(CacheError::Upstream(error)),
        };
        if let Err(error) = &outcome {
            warn!(%error, "fetch failed; nothing cached");
            if error.is_refusal() {
                // The upstream refuses this list now: a stale copy must not outlive that.
                inner.entries.invalidate(&key).await;
            } else if let Some(stale) = inner.entries.get(&key).await {
                stale.note_failed_refresh(error.failure());
            }
        }
        if reconciling {
            let outcome = if outcome.is_ok() {
                "replaced"
            } else {
                "failed"
            };
            metrics::counter!(crate::metrics::RECONCILIATIONS, "outcome" => outcome).increment(1);
        }
        let outcome = outcome.map(Arc::new);
        if let Ok(entry) = &outcome
            && landing.is_current()
        {
            self.store_shared(&key, entry.clone()).await;
        }
        if let Some(lock) = lock {
            lock.release().await;
        }
        landing.finish(outcome, true).await;
    }
}

impl<B: Body> Flight<B> {
    /// Whether `entry` is as new as this flight's fetch would be: stored after the flight was
    /// asked for, or fresh when no refresh was asked for.
    pub(super) fn is_answered_by(&self, entry: &Entry<B>) -> bool {
        entry.fetched_at() >= self.requested_at || (!self.forced && entry.is_fresh(Instant::now()))
    }
}

/// What the renderer's thread is fed.
enum Feed {
    Page(Vec<Participant>),
    Whole(ListHead),
}

/// Forwards each page to the renderer's thread as it arrives, within the flight's share of the
/// work budget: the whole list's as soon as the first page says how long it is, so that a
/// flight waits for its turn once, before it has much to hold. The share is held until the
/// flight ends (this sink lives as long as the fetch).
struct Forward<'a> {
    feed: mpsc::Sender<Feed>,
    progress: &'a FetchProgress,
    reservation: Reservation,
    records: usize,
}

impl PageSink for Forward<'_> {
    async fn page(&mut self, records: Vec<Participant>) {
        self.records += records.len();
        let expected = self
            .progress
            .total_count()
            .map_or(0, |total| total.clamp(0, RECORD_CAP as i64) as usize);
        self.reservation.cover(self.records.max(expected)).await;
        // A renderer that panicked is reported once the list is whole.
        let _ = self.feed.send(Feed::Page(records)).await;
    }
}

/// Ends a flight exactly once: stores the result (unless the meeting's cache was dropped while
/// it ran), unregisters the flight, and wakes every waiter. If the fetch task panics, the drop
/// does the same with an internal error, so that no key stays stuck on a dead flight.
struct Landing<'a, B: Body> {
    cache: &'a ParticipantCache<B>,
    key: &'a ParticipantsQuery,
    flight: &'a Arc<Flight<B>>,
    done: bool,
}

impl<B: Body> Landing<'_, B> {
    async fn finish(&mut self, outcome: Outcome<B>, store: bool) {
        // Store first, unregister after: a caller arriving in between joins this flight, or
        // finds the new entry; never neither.
        if let (Ok(entry), true, true) = (&outcome, store, self.is_current()) {
            let entries = &self.cache.inner.entries;
            entries.insert(self.key.clone(), entry.clone()).await;
            // moka evicts past its bound lazily, at later operations: without them (a burst of
            // fetches, then quiet) the lists over the bound would stay in memory. Next to a
            // fetch, evicting now costs nothing worth counting.
            entries.run_pending_tasks().await;
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
    fn is_registered(&self, flights: &Flights<B>) -> bool {
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

impl<B: Body> Drop for Landing<'_, B> {
    fn drop(&mut self) {
        if !self.done {
            self.unregister();
            let error = CacheError::Internal("the fetch stopped without an answer");
            self.flight.done.send_replace(Some(Err(error)));
        }
    }
}
