//! The receiving end of a subscription: each delivery verified, decoded and read before it is
//! acknowledged, a delivery Tencent repeats recognised by its id, and the events handed on to be
//! processed after the answer (Tencent waits about 5 seconds, then retries).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use utoipa::ToSchema;

use super::delivery::{WebhookKeys, check_str, is_current};
use super::event::Event;
use crate::cluster::lists::{Announcement, SharedLists};

/// How long a delivery's id is remembered: past Tencent's last retry (about 6 minutes).
const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// How many delivery ids are remembered at most.
const REMEMBER_AT_MOST: u64 = 100_000;
/// Events waiting to be processed at most; beyond, deliveries are still acknowledged (they
/// are valid) and the events counted as dropped (the next reconciliation corrects the lists).
const QUEUE: usize = 4096;

/// The headers Tencent signs each delivery with.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a delivery is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid signature, or a timestamp too far from now: nothing about it is trusted.
    Unsigned,
    /// Signed, but its content cannot be read; says what.
    Undecodable(&'static str),
}

/// What became of a valid event delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// New: handed on to be processed.
    Accepted,
    /// Seen before (Tencent retried it): acknowledged again, processed once.
    Repeated,
}

/// An event delivery as Tencent posts it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Delivery {
    /// The event's JSON as base64, AES-256-CBC encrypted first when an EncodingAESKey is
    /// configured; the signature covers this string exactly as sent.
    #[schema(example = "eyJldmVudCI6Im1lZXRpbmcuZW5kIiwicGF5bG9hZCI6W119")]
    pub data: String,
}

/// Receives one subscription's deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
}

struct Inner {
    keys: WebhookKeys,
    seen: moka::sync::Cache<String, ()>,
    events: mpsc::Sender<Event>,
    /// With replicas: deliveries told apart from retries across all of them, and each event
    /// handed to every replica (this one included) through Redis.
    shared: Option<SharedLists>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A receiver verifying with `keys`; its events come out of the returned channel, in the
    /// order they were delivered.
    pub fn new(keys: WebhookKeys, shared: Option<SharedLists>) -> (Self, mpsc::Receiver<Event>) {
        let (events, queue) = mpsc::channel(QUEUE);
        if let Some(shared) = &shared {
            tokio::spawn(relay(shared.announcements(), events.clone()));
        }
        let receiver = Self {
            inner: Arc::new(Inner {
                keys,
                seen: moka::sync::Cache::builder()
                    .max_capacity(REMEMBER_AT_MOST)
                    .time_to_live(REMEMBER_FOR)
                    .build(),
                events,
                shared,
            }),
        };
        (receiver, queue)
    }

    /// Tencent's URL check (`GET ?check_str=`): the plaintext to answer, as the whole body.
    pub fn check(
        &self,
        signed: Signed<'_>,
        raw_query: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<u8>, Refusal> {
        let check = raw_query.and_then(check_str).ok_or(Refusal::Unsigned)?;
        self.verify(signed, &check, now_ms)?;
        self.inner
            .keys
            .decode(&check)
            .map_err(|_| Refusal::Undecodable("check_str does not decode"))
    }

    /// An event delivery (`POST {"data": ...}`): verified, decoded and read, then handed on
    /// unless it was seen before.
    pub async fn deliver(
        &self,
        signed: Signed<'_>,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Delivered, Refusal> {
        // The signature covers `data` exactly as received: it is read before anything else,
        // and nothing else is read before it is verified.
        let body: Delivery = serde_json::from_slice(body).map_err(|_| {
            // Without `data` there is nothing the signature could cover.
            Refusal::Unsigned
        })?;
        self.verify(signed, &body.data, now_ms)?;
        let plaintext = self
            .inner
            .keys
            .decode(&body.data)
            .map_err(|_| Refusal::Undecodable("data does not decode"))?;
        let event: Event = serde_json::from_slice(&plaintext)
            .map_err(|_| Refusal::Undecodable("data is not an event"))?;
        if let Some(id) = event.id() {
            let entry = self.inner.seen.entry(id.to_owned()).or_insert(());
            if !entry.is_fresh() {
                count(&event, "repeated");
                return Ok(Delivered::Repeated);
            }
        }
        if let Some(shared) = &self.inner.shared {
            // Tencent's retry may reach another replica than the first delivery did.
            if let Some(id) = event.id()
                && shared.first_delivery(id).await == Some(false)
            {
                count(&event, "repeated");
                return Ok(Delivered::Repeated);
            }
            if shared
                .announce_event(&String::from_utf8_lossy(&plaintext))
                .await
            {
                return Ok(Delivered::Accepted);
            }
            // Redis cannot take it: this replica applies it alone.
        }
        hand_on(&self.inner.events, event);
        Ok(Delivered::Accepted)
    }

    fn verify(&self, signed: Signed<'_>, data: &str, now_ms: u64) -> Result<(), Refusal> {
        let (Some(timestamp), Some(nonce), Some(signature)) =
            (signed.timestamp, signed.nonce, signed.signature)
        else {
            return Err(refused());
        };
        if !is_current(timestamp, now_ms)
            || !self.inner.keys.verify(timestamp, nonce, data, signature)
        {
            return Err(refused());
        }
        Ok(())
    }
}

/// Queues an event for this replica, counting it as dropped when the queue is full.
fn hand_on(events: &mpsc::Sender<Event>, event: Event) {
    match events.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event)) => {
            count(&event, "dropped");
        }
    }
}

/// Queues the events any replica announced, for this replica to apply.
async fn relay(mut announcements: broadcast::Receiver<Announcement>, events: mpsc::Sender<Event>) {
    loop {
        match announcements.recv().await {
            Ok(Announcement::Event(json)) => {
                if let Ok(event) = serde_json::from_str::<Event>(&json) {
                    hand_on(&events, event);
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn refused() -> Refusal {
    metrics::counter!(crate::metrics::WEBHOOK_REFUSED).increment(1);
    Refusal::Unsigned
}

/// Counts an event by its kind and what became of it.
pub fn count(event: &Event, outcome: &'static str) {
    metrics::counter!(
        crate::metrics::WEBHOOK_EVENTS,
        "kind" => event.kind().as_str(),
        "outcome" => outcome
    )
    .increment(1);
}
