//! The second level: entries shared with the other replicas through Redis, and one fetch per
//! list across them. A local miss looks there first; a fetch is made by whichever replica takes
//! the list's lock, the others waiting for its entry (see [`crate::cluster::lists`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::ParticipantCache;
use super::entry::{Body, Entry};
use super::flight::Flight;
use crate::clock::unix_now;
use crate::cluster::lists::{Announcement, ListKey, Lock};
use crate::upstream::ParticipantsQuery;

/// The shared format of an entry, and its version: a build that reads another version treats
/// the entry as absent.
const ENCODING: &[u8] = b"entry/1\n";

/// How often a replica waiting for another's fetch looks at the entry and the lock, in case it
/// missed the announcement.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What the cluster decided about a flight.
pub(super) enum Coordinated<B> {
    /// Another replica's fetch (or an earlier one) left an entry that answers the flight.
    Landed(Arc<Entry<B>>),
    /// This replica holds the lock: it fetches.
    Holder(Lock),
    /// Redis cannot help (unreachable, or the wait was too long): this replica fetches alone.
    Alone,
}

/// An entry as the shared cache stores it: when it was fetched (unix ms), how long it is fresh
/// and usable from then (ms), then the body. `None` for "no such meeting", which stays local.
pub(super) fn encode<B: Body>(entry: &Entry<B>) -> Option<Vec<u8>> {
    let body = entry.body().ok()?.encode();
    let now = Instant::now();
    let fetched_unix = unix_now().saturating_sub(entry.age(now));
    let mut out = Vec::with_capacity(ENCODING.len() + 24 + body.len());
    out.extend_from_slice(ENCODING);
    for value in [fetched_unix, entry.freshness_lifetime(), entry.lifetime()] {
        out.extend_from_slice(&(value.as_millis() as u64).to_le_bytes());
    }
    out.extend_from_slice(&body);
    Some(out)
}

pub(super) fn decode<B: Body>(bytes: &[u8]) -> Option<Entry<B>> {
    let rest = bytes.strip_prefix(ENCODING)?;
    let (fetched, rest) = rest.split_first_chunk::<8>()?;
    let (fresh_for, rest) = rest.split_first_chunk::<8>()?;
    let (usable_for, body) = rest.split_first_chunk::<8>()?;
    let millis = |b: &[u8; 8]| Duration::from_millis(u64::from_le_bytes(*b));
    // Replicas' clocks disagree a little; an entry from the future is simply new.
    let age = unix_now().saturating_sub(millis(fetched));
    let fetched_at = Instant::now().checked_sub(age)?;
    Some(Entry::restored(
        B::decode(body)?,
        fetched_at,
        millis(fresh_for),
        millis(usable_for),
    ))
}

impl<B: Body> ParticipantCache<B> {
    /// Decides with the other replicas who fetches the flight's list.
    pub(super) async fn coordinate(
        &self,
        key: &ParticipantsQuery,
        flight: &Flight<B>,
    ) -> Coordinated<B> {
        let Some(shared) = &self.inner.shared else {
            return Coordinated::Alone;
        };
        let list = ListKey::of(key);
        // Listen before looking, so that no announcement falls between the look and the wait.
        let mut announcements = shared.announcements();
        let give_up = Instant::now() + self.inner.client.list_deadline() + LOCK_TTL_MARGIN;
        let mut waited = false;
        loop {
            if let Some(entry) = self.load_shared(&list, flight).await {
                return Coordinated::Landed(entry);
            }
            match shared.lock(&list).await {
                None => return Coordinated::Alone,
                Some(Some(lock)) => {
                    // The holder before may have stored its entry just before letting go.
                    if let Some(entry) = self.load_shared(&list, flight).await {
                        lock.release().await;
                        return Coordinated::Landed(entry);
                    }
                    if waited {
                        metrics::counter!(crate::metrics::SHARED_LOCKS, "event" => "takeover")
                            .increment(1);
                    }
                    return Coordinated::Holder(lock);
                }
                Some(None) => {}
            }
            if !waited {
                metrics::counter!(crate::metrics::SHARED_LOCKS, "event" => "wait").increment(1);
                waited = true;
            }
            if let Some((records, total)) = shared.progress(&list).await {
                flight.progress.record(records, total);
            }
            if Instant::now() >= give_up {
                return Coordinated::Alone;
            }
            let landed = list.entry_name();
            let _ = tokio::time::timeout(LOOK_EVERY, async {
                loop {
                    match announcements.recv().await {
                        Ok(Announcement::Landed(name)) if name == landed => return,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            })
            .await;
        }
    }

    /// The shared entry of a list, if it answers the flight: fetched after the flight was asked
    /// for, or fresh (unless a refresh was asked for).
    async fn load_shared(&self, list: &ListKey, flight: &Flight<B>) -> Option<Arc<Entry<B>>> {
        let bytes = self.inner.shared.as_ref()?.load(list).await?;
        let entry = tokio::task::spawn_blocking(move || decode::<B>(&bytes))
            .await
            .ok()??;
        flight.is_answered_by(&entry).then(|| Arc::new(entry))
    }

    /// Shares a fetched entry with the other replicas, for as long as it is of use.
    pub(super) async fn store_shared(&self, key: &ParticipantsQuery, entry: Arc<Entry<B>>) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        let ttl = entry.remaining_use(Instant::now());
        let encoded = tokio::task::spawn_blocking(move || encode(&entry)).await;
        if let Ok(Some(bytes)) = encoded
            && !ttl.is_zero()
        {
            shared.store(&ListKey::of(key), bytes, ttl).await;
        }
    }
}

/// A waiting replica gives up on the holder this long after the list's own deadline (by then a
/// live holder has finished, and a dead one's lock has expired).
const LOCK_TTL_MARGIN: Duration = crate::cluster::lists::LOCK_TTL;
