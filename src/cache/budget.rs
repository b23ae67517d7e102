//! The work budget: the bytes that lists being fetched and rendered may take together.
//!
//! The cache's byte bound covers stored entries only. A list on its way in (its stored form
//! being built page by page, the pages waiting to be rendered) is not stored yet, and any number
//! of them could run at once. Each flight therefore reserves its share of one budget as soon as
//! the upstream's first page says how long the list is, and holds it until the entry is stored
//! (where the cache's bound takes over) or the fetch fails. While the budget is spent, a flight
//! waits for its turn (first come, first served) before fetching on; callers meanwhile get the
//! usual `202` with the fetch's progress. So a budget of 256 MiB lets two 50,000-record lists be
//! fetched at once, or a hundred lists of 1,000 records, and the process's memory stays within
//! the cache's bound plus this budget plus the runtime's own.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Work bytes reserved per record: the stored form being built (about 660 bytes a record, JSON
/// and gzip), the decoded pages in the pipeline, and the allocator's slack around both. Eight
/// 50,000-record lists fetched at once with no budget peaked at about 500 MiB, about 1.2 KiB a
/// record each (`bench/README.md`, "Memory under a burst"); the rest is margin.
pub const WORK_BYTES_PER_RECORD: u64 = 2048;

/// Permits count kibibytes, so that a budget of many gigabytes still fits the semaphore.
const UNIT: u64 = 1024;

/// One budget shared by every flight of a cache.
#[derive(Debug, Clone)]
pub struct WorkBudget {
    permits: Arc<Semaphore>,
    units: u32,
}

impl WorkBudget {
    /// A budget of `max_bytes` (at least 1 KiB; at most 4 TiB).
    pub fn new(max_bytes: u64) -> Self {
        let units = u32::try_from((max_bytes / UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Bytes reserved now, by every flight.
    pub fn in_use(&self) -> u64 {
        u64::from(self.units).saturating_sub(self.permits.available_permits() as u64) * UNIT
    }

    /// An empty reservation, to grow with [`Reservation::cover`].
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: None,
            units: 0,
        }
    }
}

/// A flight's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: WorkBudget,
    held: Option<OwnedSemaphorePermit>,
    units: u32,
}

impl Reservation {
    /// Grows the reservation to cover `records` records, waiting while the budget is spent. A
    /// list larger than the whole budget takes all of it (and so runs alone), rather than wait
    /// for ever.
    pub async fn cover(&mut self, records: usize) {
        let wanted = (records as u64 * WORK_BYTES_PER_RECORD).div_ceil(UNIT);
        let wanted = u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .min(self.budget.units);
        if wanted <= self.units {
            return;
        }
        let more = wanted - self.units;
        if self.budget.permits.available_permits() < more as usize {
            metrics::counter!(crate::metrics::WORK_WAITS).increment(1);
        }
        let Ok(permit) = self.budget.permits.clone().acquire_many_owned(more).await else {
            unreachable!("the budget's semaphore is never closed")
        };
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.units = wanted;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_flight_waits_for_its_turn_and_a_list_larger_than_the_budget_runs_alone() {
        // Room for 1,000 records.
        let budget = WorkBudget::new(1000 * WORK_BYTES_PER_RECORD);
        let mut first = budget.reservation();
        first.cover(600).await;
        assert_eq!(budget.in_use(), 600 * WORK_BYTES_PER_RECORD);
        let mut second = budget.reservation();
        let waiting = tokio::time::timeout(Duration::from_secs(1), second.cover(600)).await;
        assert!(waiting.is_err(), "600 more do not fit beside 600");
        // Growing only takes the difference, and never more than the whole budget.
        first.cover(5_000).await;
        assert_eq!(budget.in_use(), 1000 * WORK_BYTES_PER_RECORD);
        drop(first);
        assert_eq!(budget.in_use(), 0);
        second.cover(600).await;
        assert_eq!(budget.in_use(), 600 * WORK_BYTES_PER_RECORD);
        drop(second);
        assert_eq!(budget.in_use(), 0);
    }
}
