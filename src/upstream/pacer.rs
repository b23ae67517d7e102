//! Outbound pacing: one limiter shared by every fetch, so no burst of callers can push the
//! enterprise app past the upstream's per-minute quota.
//!
//! A GCRA ("leaky bucket as a meter") on tokio's clock, so tests can pause time. It admits short
//! bursts of a tenth of the budget and spaces the rest evenly, and its parameters are chosen so
//! that any 60-second window — sliding, not just a calendar minute — holds at most
//! `calls_per_minute` calls.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The schedule for at most `calls` calls in any window of length `per`: `burst` calls at once,
/// then one every `interval`. The shared limiter in Redis keeps the same schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval: Duration,
    pub burst: u32,
}

impl Gcra {
    pub fn new(calls: u32, per: Duration) -> Self {
        let calls = calls.max(1);
        let burst = if calls < 2 { 1 } else { (calls / 10).max(1) };
        // With `burst` calls at once and then one per interval, a window [t, t + per) holds
        // `burst + per / interval - 1` calls; make that exactly `calls`, rounding the interval up.
        let steady = u128::from(calls - burst + 1);
        let interval = Duration::from_nanos(per.as_nanos().div_ceil(steady) as u64);
        Self { interval, burst }
    }

    /// How far ahead of the theoretical schedule a call may go.
    pub fn tolerance(self) -> Duration {
        self.interval * (self.burst - 1)
    }
}

/// Spaces outbound calls so that no 60-second window holds more than the configured number.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// How far ahead of the theoretical schedule a call may go: `(burst - 1) * interval`.
    tolerance: Duration,
    capacity: u32,
    /// The theoretical arrival time of the next call.
    next: Mutex<Instant>,
}

impl Pacer {
    /// A pacer for at most `calls_per_minute` calls in any 60-second window (at least 1).
    pub fn per_minute(calls_per_minute: u32) -> Self {
        Self::new(calls_per_minute, Duration::from_secs(60))
    }

    /// A pacer for at most `calls` calls in any window of length `per`.
    pub fn new(calls: u32, per: Duration) -> Self {
        let gcra = Gcra::new(calls, per);
        Self {
            interval: gcra.interval,
            tolerance: gcra.tolerance(),
            capacity: gcra.burst,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits until one more call is allowed, and reserves it; with a `deadline`, books nothing
    /// and returns `false` at once when the next free slot is after it: a fetch that would time
    /// out before its call never holds a slot that others could have used. Reservations are first
    /// come, first served: a waiting caller holds its slot even while it sleeps.
    pub async fn acquire_by(&self, deadline: Option<Instant>) -> bool {
        let now = Instant::now();
        let Some(at) = self.reserve(now, deadline) else {
            return false;
        };
        // tokio's timer wheel ticks in milliseconds: sleeping "until now" would still wait for
        // the next tick, so a call that may go now goes now.
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        true
    }

    /// Takes a call now if one is allowed now; otherwise books nothing and says how long until
    /// one would be (for inbound rate limits, which refuse rather than wait).
    pub fn try_now(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let scheduled = (*next).max(now);
        let at = scheduled.checked_sub(self.tolerance).unwrap_or(now);
        if at > now {
            return Err(at - now);
        }
        *next = scheduled + self.interval;
        Ok(())
    }

    fn reserve(&self, now: Instant, deadline: Option<Instant>) -> Option<Instant> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let scheduled = (*next).max(now);
        let at = scheduled
            .checked_sub(self.tolerance)
            .map_or(now, |at| at.max(now));
        if deadline.is_some_and(|deadline| at > deadline) {
            return None;
        }
        *next = scheduled + self.interval;
        Some(at)
    }

    /// How many calls could start right now without waiting (for the quota gauge).
    pub fn available(&self) -> u32 {
        let next = *self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let ahead = next.saturating_duration_since(now);
        let used = ahead.as_nanos().div_ceil(self.interval.as_nanos().max(1));
        self.capacity
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn admission_times(pacer: Arc<Pacer>, calls: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..calls {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.acquire_by(None).await;
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.expect("task"));
        }
        times.sort();
        times
    }

    fn busiest_window(times: &[Duration], window: Duration) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn no_sixty_second_window_holds_more_than_the_budget() {
        for budget in [1, 2, 7, 60, 240, 300] {
            let pacer = Arc::new(Pacer::per_minute(budget));
            let calls = budget * 3 + 5;
            let times = admission_times(pacer, calls as usize).await;
            let busiest = busiest_window(&times, Duration::from_secs(60));
            assert!(busiest <= budget as usize, "budget {budget}: {busiest}");
            // And the pacer is not needlessly slow: `calls` calls take at most one minute per
            // budget's worth, plus one.
            let minutes = calls.div_ceil(budget) + 1;
            assert!(*times.last().expect("times") < Duration::from_secs(60) * minutes);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_deadline_is_refused_without_being_booked() {
        let pacer = Pacer::per_minute(10);
        assert!(
            pacer.acquire_by(None).await,
            "the burst of one goes at once"
        );
        let soon = Instant::now() + Duration::from_secs(1);
        assert!(!pacer.acquire_by(Some(soon)).await);
        assert!(!pacer.acquire_by(Some(soon)).await);
        // Nothing was booked by the refusals: the next slot is still one interval away.
        let started = Instant::now();
        assert!(pacer.acquire_by(None).await);
        assert_eq!(started.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenth_of_the_budget_goes_at_once() {
        let pacer = Arc::new(Pacer::per_minute(240));
        assert_eq!(pacer.available(), 24);
        let times = admission_times(pacer.clone(), 24).await;
        assert!(times.iter().all(|t| *t == Duration::ZERO));
        assert_eq!(pacer.available(), 0);
        let next = admission_times(pacer, 1).await;
        assert!(next[0] > Duration::ZERO);
    }
}
