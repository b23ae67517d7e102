//! Where the client takes its permission for each upstream call: its own pacer, or the limiter
//! every replica shares through Redis, falling back to a pacer at a safe share of the quota
//! while Redis cannot answer.

use std::time::Duration;

use tokio::time::Instant;

use super::error::ErrorClass;
use super::pacer::Pacer;
use crate::cluster::limiter::{Admission, SharedLimiter, Spent};

/// The outcome of asking for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// The next free slot is past the list's deadline; nothing was booked.
    PastDeadline,
    /// The enterprise's calls for the day are spent, by the count every replica shares.
    DaySpent,
}

#[derive(Debug)]
pub enum Quota {
    Local(Pacer),
    Shared {
        limiter: SharedLimiter,
        fallback: Pacer,
    },
}

impl Quota {
    /// Waits for permission to make one call before `deadline`.
    pub async fn acquire_by(&self, deadline: Instant) -> Permit {
        let pacer = match self {
            Self::Local(pacer) => pacer,
            Self::Shared { limiter, fallback } => loop {
                let wait = match limiter.take().await {
                    None => break fallback,
                    Some(Admission::Now) => return Permit::Go,
                    Some(Admission::DaySpent(_)) => return Permit::DaySpent,
                    Some(Admission::After(wait)) => wait,
                };
                // Replicas told the same wait would all ask again at once: spread them a little.
                let wait = wait + Duration::from_millis(rand::random_range(0..=5));
                if Instant::now() + wait > deadline {
                    return Permit::PastDeadline;
                }
                metrics::counter!(crate::metrics::SHARED_LIMITER_WAITS).increment(1);
                tokio::time::sleep(wait).await;
            },
        };
        if pacer.acquire_by(Some(deadline)).await {
            Permit::Go
        } else {
            Permit::PastDeadline
        }
    }

    /// Tells every replica that a quota is spent, so that none of them spends a call to learn it.
    pub async fn note_refusal(&self, class: ErrorClass) {
        let Self::Shared { limiter, .. } = self else {
            return;
        };
        match class {
            ErrorClass::MinuteLimit => limiter.pause(Spent::Minute).await,
            ErrorClass::DailyLimit => limiter.pause(Spent::Day).await,
            _ => {}
        }
    }

    /// Calls that could start now without waiting, as far as this replica knows (the local or
    /// fallback pacer's count; in shared mode the shared schedule decides).
    pub fn available(&self) -> u32 {
        match self {
            Self::Local(pacer)
            | Self::Shared {
                fallback: pacer, ..
            } => pacer.available(),
        }
    }
}
