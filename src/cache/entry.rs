//! One cached answer: the stored body (or "no such meeting"), when it was fetched, how long it is
//! fresh and how long it stays of use.

use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::CacheConfig;
use super::decision::{EntryState, Failure};
use crate::clock::unix_now;
use crate::upstream::{ListHead, Participant, ParticipantsQuery, UpstreamError};

/// What the cache stores for a fetched list: whatever the renderer made of it. The cache keeps,
/// weighs and hands back the body; it never reads it.
pub trait Body: fmt::Debug + Send + Sync + Sized + 'static {
    /// Bytes the body holds, counted against the cache's byte bound.
    fn weight(&self) -> usize;
    /// The body as the shared cache stores it.
    fn encode(&self) -> Vec<u8>;
    /// A body from [`encode`](Self::encode)'s bytes; `None` for anything else (another
    /// version's format, damage).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Builds the body to store from a list's pages as they arrive. The API hands the cache a
/// [`Render`] that starts one per fetch; it is fed on a blocking thread, so that its work on one
/// page overlaps the fetch of the next.
pub trait Renderer<B>: Send {
    /// One page's records, in the upstream's order.
    fn page(&mut self, records: Vec<Participant>);
    /// The list is whole: the body to store.
    fn finish(self: Box<Self>, head: &ListHead) -> B;
}

/// Starts the renderer for one fetch.
pub type Render<B> = fn() -> Box<dyn Renderer<B>>;

/// Bytes counted for an entry besides its body: the entry, its key and moka's bookkeeping.
const ENTRY_OVERHEAD: usize = 512;

/// One cached answer.
#[derive(Debug)]
pub struct Entry<B> {
    content: Content<B>,
    fetched_at: Instant,
    fresh_until: Instant,
    usable_until: Instant,
    /// How the last refresh since this entry was stored failed, so that stale answers say the
    /// upstream is failing: 0 for none, 1 for a failure without an upstream status, else that
    /// status (HTTP statuses start at 100).
    failed_refresh: AtomicU16,
    /// Changed since its fetch by events (Tencent's joins and leaves).
    patched: bool,
    /// When the list was current, in unix seconds: its fetch, or its last patch.
    as_of: i64,
}

#[derive(Debug)]
enum Content<B> {
    List(B),
    /// The upstream said the meeting does not exist.
    NotFound(UpstreamError),
}

impl<B: Body> Entry<B> {
    /// A list's entry, fresh for `ttl` from now and usable for the stale-if-error age beyond.
    pub(super) fn list(body: B, ttl: Duration, config: &CacheConfig) -> Self {
        Self::new(Content::List(body), ttl, ttl + config.stale_if_error)
    }

    /// "No such meeting", remembered briefly and never served stale.
    pub(super) fn not_found(error: UpstreamError, config: &CacheConfig) -> Self {
        Self::new(
            Content::NotFound(error),
            config.not_found_ttl,
            config.not_found_ttl,
        )
    }

    fn new(content: Content<B>, fresh_for: Duration, usable_for: Duration) -> Self {
        Self::at(content, Instant::now(), fresh_for, usable_for)
    }

    /// A list's entry fetched at `fetched_at` (by another replica), fresh and usable for as long
    /// from then as it was when stored.
    pub(super) fn restored(
        body: B,
        fetched_at: Instant,
        fresh_for: Duration,
        usable_for: Duration,
    ) -> Self {
        Self::at(Content::List(body), fetched_at, fresh_for, usable_for)
    }

    fn at(
        content: Content<B>,
        fetched_at: Instant,
        fresh_for: Duration,
        usable_for: Duration,
    ) -> Self {
        let unix = unix_now().as_secs() as i64;
        Self {
            content,
            fetched_at,
            fresh_until: fetched_at + fresh_for,
            usable_until: fetched_at + usable_for,
            failed_refresh: AtomicU16::new(0),
            patched: false,
            as_of: unix
                - Instant::now()
                    .saturating_duration_since(fetched_at)
                    .as_secs() as i64,
        }
    }

    /// This entry with its body changed by events: the same fetch, fresh until at least
    /// `fresh_for` after it (a list kept current by events is refetched only that often), and
    /// usable for as long again beyond as before.
    pub(super) fn patched(&self, body: B, fresh_for: Duration) -> Self {
        let fresh_until = self.fresh_until.max(self.fetched_at + fresh_for);
        Self {
            content: Content::List(body),
            fetched_at: self.fetched_at,
            fresh_until,
            usable_until: self.usable_until + (fresh_until - self.fresh_until),
            failed_refresh: AtomicU16::new(0),
            patched: true,
            as_of: unix_now().as_secs() as i64,
        }
    }

    /// When the list was current, in unix seconds: when it was fetched, or last changed by
    /// events.
    pub fn as_of(&self) -> i64 {
        self.as_of
    }

    /// Whether events changed the list since it was fetched.
    pub fn is_patched(&self) -> bool {
        self.patched
    }

    /// How long from `now` the entry is of any use.
    pub(super) fn remaining_use(&self, now: Instant) -> Duration {
        self.usable_until.saturating_duration_since(now)
    }

    /// The stored body, or the upstream's "no such meeting".
    pub fn body(&self) -> Result<&B, &UpstreamError> {
        match &self.content {
            Content::List(body) => Ok(body),
            Content::NotFound(error) => Err(error),
        }
    }

    /// Time since the list was fetched from the upstream.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.fetched_at)
    }

    /// How long the entry is fresh from its fetch: `max-age` in HTTP's terms.
    pub fn freshness_lifetime(&self) -> Duration {
        self.fresh_until - self.fetched_at
    }

    pub(super) fn weight(&self) -> u32 {
        let body = match &self.content {
            Content::List(body) => body.weight(),
            Content::NotFound(_) => 0,
        };
        u32::try_from(body + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }

    /// From its fetch until it is of no use at all: how long moka keeps it.
    pub(super) fn lifetime(&self) -> Duration {
        self.usable_until - self.fetched_at
    }

    pub(super) fn fetched_at(&self) -> Instant {
        self.fetched_at
    }

    pub(super) fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }

    pub(super) fn state(&self) -> EntryState {
        EntryState {
            fetched_at: self.fetched_at,
            fresh_until: self.fresh_until,
            usable_until: self.usable_until,
            failed_refresh: match self.failed_refresh.load(Ordering::Relaxed) {
                0 => None,
                1 => Some(Failure { fwd_status: None }),
                status => Some(Failure {
                    fwd_status: Some(status),
                }),
            },
        }
    }

    pub(super) fn note_failed_refresh(&self, failure: Failure) {
        let code = failure.fwd_status.map_or(1, |status| status.max(100));
        self.failed_refresh.store(code, Ordering::Relaxed);
    }
}

/// Lets moka reclaim an entry once it is past any use. Freshness is decided on tokio's clock
/// (tests pause it), not by this.
pub(super) struct UntilUnusable;

impl<B: Body> moka::Expiry<ParticipantsQuery, std::sync::Arc<Entry<B>>> for UntilUnusable {
    fn expire_after_create(
        &self,
        _: &ParticipantsQuery,
        entry: &std::sync::Arc<Entry<B>>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }

    /// A refresh replaces the entry: its lifetime starts again (moka would keep the old one).
    fn expire_after_update(
        &self,
        _: &ParticipantsQuery,
        entry: &std::sync::Arc<Entry<B>>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }
}

/// How long a list stays fresh: long once the meeting is over, briefly while it may change.
pub(super) fn freshness(list: &ListHead, config: &CacheConfig) -> Duration {
    let now = unix_now().as_secs() as i64;
    let ended = list.still_in == 0 && list.schedule_end_time.is_some_and(|end| end <= now);
    let not_started =
        list.records == 0 && list.schedule_start_time.is_some_and(|start| start > now);
    if ended {
        config.ttl_ended
    } else if not_started {
        config.ttl_not_started
    } else {
        config.ttl_live
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::upstream::Operator;

    #[derive(Debug)]
    struct Bytes(usize);

    impl Body for Bytes {
        fn weight(&self) -> usize {
            self.0
        }

        fn encode(&self) -> Vec<u8> {
            self.0.to_le_bytes().to_vec()
        }

        fn decode(bytes: &[u8]) -> Option<Self> {
            Some(Self(usize::from_le_bytes(bytes.try_into().ok()?)))
        }
    }

    #[test]
    fn a_replaced_entry_gets_a_new_lifetime() {
        use moka::Expiry as _;
        let config = CacheConfig {
            stale_if_error: Duration::from_secs(540),
            ..CacheConfig::default()
        };
        let entry = Arc::new(Entry::list(Bytes(1), Duration::from_secs(60), &config));
        let key =
            ParticipantsQuery::new("1", Operator::user_id("u").expect("valid")).expect("valid");
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
    fn an_entry_weighs_its_body_and_remembers_how_its_refresh_failed() {
        let entry = Entry::list(
            Bytes(1000),
            Duration::from_secs(60),
            &CacheConfig::default(),
        );
        assert_eq!(entry.weight() as usize, 1000 + ENTRY_OVERHEAD);
        assert_eq!(entry.state().failed_refresh, None);
        for fwd_status in [Some(500), None, Some(502)] {
            entry.note_failed_refresh(Failure { fwd_status });
            assert_eq!(entry.state().failed_refresh, Some(Failure { fwd_status }));
        }
    }
}
