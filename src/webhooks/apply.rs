//! Events applied to cached lists: joins appended as provisional records and leaves closing
//! open records, in batches (at most one a second per meeting); a meeting changed or canceled
//! drops its lists, one that starts or ends is fetched again (an end a little later: Tencent's
//! list may lag its event). A list kept current by events stays fresh until the reconciliation
//! interval after its fetch, when it is fetched whole again, replacing the provisional records.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::event::{Event, Kind, Payload};
use super::receiver::count;
use crate::cache::{Body, ParticipantCache};
use crate::clock::unix_now;
use crate::upstream::Participant;

/// How often pending events are applied, at most.
const BATCH_EVERY: Duration = Duration::from_secs(1);
/// How long after `meeting.end` the list is fetched again.
const END_LAG: Duration = Duration::from_secs(10);
/// How long a leave that matched no open record is tried again (its join may come later).
const UNMATCHED_FOR: Duration = Duration::from_secs(60);

/// Someone who joined: the record to append, provisional until the next fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub record: Participant,
}

/// Someone who left: closes their open record (same `uuid` and `instanceid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub uuid: String,
    pub instanceid: Option<i64>,
    pub left_time: i64,
}

/// What a batch did to one stored list: the list changed (when anything did), and the leaves
/// that matched no open record.
#[derive(Debug)]
pub struct Applied<B> {
    pub list: Option<B>,
    pub unmatched: Vec<Left>,
}

/// Applies a batch of joins and leaves to one stored list (the API's, which knows its form).
pub type Patch<B> = fn(&B, &[Joined], &[Left]) -> Applied<B>;

/// The events pending for one meeting (one sub-meeting of a recurring one).
#[derive(Debug, Default)]
struct Batch {
    joined: Vec<Joined>,
    left: Vec<(Left, Instant)>,
}

/// A meeting, and the sub-meeting when the events name one.
type Meeting = (String, Option<String>);

/// Applies the events from `events` to `cache` until the channel closes.
pub async fn apply_events<B: Body>(
    mut events: mpsc::Receiver<Event>,
    cache: ParticipantCache<B>,
    patch: Patch<B>,
    reconcile: Duration,
) {
    let mut pending: HashMap<Meeting, Batch> = HashMap::new();
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => take(event, &mut pending, &cache).await,
                None => return,
            },
            _ = tick.tick() => flush(&mut pending, &cache, patch, reconcile).await,
        }
    }
}

/// Sorts one event into the pending batches, or acts on it at once.
async fn take<B: Body>(
    event: Event,
    pending: &mut HashMap<Meeting, Batch>,
    cache: &ParticipantCache<B>,
) {
    let kind = event.kind();
    for payload in &event.payload {
        let Some(meeting_id) = payload.meeting_info.meeting_id.clone() else {
            continue;
        };
        let meeting = (
            meeting_id.clone(),
            payload.meeting_info.sub_meeting_id.clone(),
        );
        match kind {
            Kind::Joined => pending.entry(meeting).or_default().joined.push(Joined {
                record: record_of(payload),
            }),
            Kind::Left => {
                if let Some(uuid) = payload.operator.uuid.clone() {
                    let left = Left {
                        uuid,
                        instanceid: instance_of(payload),
                        left_time: seconds_of(payload),
                    };
                    pending
                        .entry(meeting)
                        .or_default()
                        .left
                        .push((left, Instant::now() + UNMATCHED_FOR));
                }
            }
            Kind::Updated | Kind::Canceled => cache.invalidate_meeting(&meeting_id).await,
            Kind::Started => cache.refresh_meeting(&meeting_id),
            Kind::Ended => {
                let cache = cache.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(END_LAG).await;
                    cache.refresh_meeting(&meeting_id);
                });
            }
            Kind::Other => {}
        }
    }
    count(
        &event,
        if kind == Kind::Other {
            "ignored"
        } else {
            "received"
        },
    );
}

/// Applies every meeting's pending joins and leaves to its cached lists.
async fn flush<B: Body>(
    pending: &mut HashMap<Meeting, Batch>,
    cache: &ParticipantCache<B>,
    patch: Patch<B>,
    reconcile: Duration,
) {
    let now = Instant::now();
    for ((meeting_id, sub), batch) in std::mem::take(pending) {
        let unmatched = std::sync::Mutex::new(Vec::new());
        let changed = cache
            .patch_meeting(&meeting_id, reconcile, |key, body| {
                // Each list takes the events of its sub-meeting inside its time window.
                let covered = |time| key.covers(sub.as_deref(), time);
                let joined: Vec<Joined> = batch
                    .joined
                    .iter()
                    .filter(|j| covered(j.record.join_time))
                    .cloned()
                    .collect();
                let left: Vec<Left> = batch
                    .left
                    .iter()
                    .map(|(left, _)| left)
                    .filter(|l| covered(l.left_time))
                    .cloned()
                    .collect();
                let applied = patch(body, &joined, &left);
                unmatched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(applied.unmatched);
                applied.list
            })
            .await;
        if changed > 0 {
            metrics::counter!(crate::metrics::PATCHES).increment(changed as u64);
        }
        // Leaves whose join has not come yet are tried again, for a while.
        let unmatched = unmatched.into_inner().unwrap_or_else(|e| e.into_inner());
        let retry: Vec<(Left, Instant)> = batch
            .left
            .into_iter()
            .filter(|(left, until)| *until > now && unmatched.contains(left))
            .collect();
        if !retry.is_empty() {
            pending.entry((meeting_id, sub)).or_default().left = retry;
        }
    }
}

/// The provisional record of someone who joined.
fn record_of(payload: &Payload) -> Participant {
    let operator = &payload.operator;
    Participant {
        userid: operator.userid.as_deref().map(Into::into),
        ms_open_id: operator.ms_open_id.as_deref().map(Into::into),
        uuid: operator.uuid.as_deref().map(Into::into),
        open_id: operator.open_id.as_deref().map(Into::into),
        // The event's name is text; the list's is base64.
        user_name: operator
            .user_name
            .as_deref()
            .map(|name| BASE64.encode(name).into()),
        join_time: seconds_of(payload),
        instanceid: instance_of(payload),
        ..Participant::default()
    }
}

fn instance_of(payload: &Payload) -> Option<i64> {
    payload.operator.instance_id.as_deref()?.parse().ok()
}

/// When it happened, in unix seconds: the event's `operate_time`, or now.
fn seconds_of(payload: &Payload) -> i64 {
    payload
        .operate_time_ms()
        .map(|ms| ms / 1000)
        .unwrap_or_else(|| unix_now().as_secs() as i64)
}
