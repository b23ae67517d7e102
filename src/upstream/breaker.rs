//! The circuit breaker: an upstream that keeps failing (timeouts, HTTP 5xx, Tencent's transient
//! codes) is not asked again at every caller's refresh, so that an outage costs almost no quota.
//!
//! Closed, calls go. After `threshold` transient failures in a row it opens: calls fail at once,
//! without touching the quota, for a cool-down that starts at `cooldown` and doubles with each
//! failed probe up to `max_cooldown`. Then one call goes through as a probe (half-open): its
//! success closes the breaker, its failure opens it again. Failures of other kinds (a refusal,
//! a quota limit) say nothing about the upstream's health and leave it as it is. Kept on tokio's
//! clock, so tests can pause it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Transient failures in a row that open it.
    pub threshold: u32,
    /// The first cool-down.
    pub cooldown: Duration,
    /// The longest cool-down.
    pub max_cooldown: Duration,
}

impl Default for BreakerPolicy {
    /// Four failures in a row: one call and its three retries. Cool-downs of 2, 4, 8 and then
    /// 15 s: a minute's outage costs about ten calls, and the upstream's return is noticed
    /// within 15 s.
    fn default() -> Self {
        Self {
            threshold: 4,
            cooldown: Duration::from_secs(2),
            max_cooldown: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        cooldown: Duration,
    },
    /// A probe is out; its outcome decides.
    HalfOpen {
        cooldown: Duration,
    },
}

/// Whether a call may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// The one call that tests an upstream that was failing.
    Probe,
    /// The breaker is open: no call for this long.
    Refused(Duration),
}

/// What a call's outcome says about the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Answered,
    Failing,
    /// Neither (a refusal, a quota limit): the state stays.
    Unknown,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go now.
    pub fn admit(&self) -> Admission {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Admission::Go,
            State::Open { until, cooldown } => {
                let now = Instant::now();
                if now < until {
                    Admission::Refused(until - now)
                } else {
                    *state = State::HalfOpen { cooldown };
                    Admission::Probe
                }
            }
            // Until the probe answers, nothing else goes; it takes at most a page timeout.
            State::HalfOpen { cooldown } => Admission::Refused(cooldown),
        }
    }

    /// Records a call's outcome (`probe`: it was admitted as the probe).
    pub fn record(&self, probe: bool, health: Health) {
        let mut state = self.state();
        let open = |cooldown: Duration| State::Open {
            until: Instant::now() + cooldown,
            cooldown,
        };
        *state = match (*state, health) {
            (_, Health::Answered) => State::Closed { failures: 0 },
            (State::HalfOpen { cooldown }, Health::Failing) if probe => {
                open((cooldown * 2).min(self.policy.max_cooldown))
            }
            (State::Closed { failures }, Health::Failing) => {
                if failures + 1 >= self.policy.threshold {
                    open(self.policy.cooldown)
                } else {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
            }
            // A probe that met a refusal or a limit leaves the question open: ask again soon.
            (State::HalfOpen { cooldown }, Health::Unknown) if probe => open(cooldown),
            (unchanged, _) => unchanged,
        };
        let open = !matches!(*state, State::Closed { .. });
        metrics::gauge!(crate::metrics::CIRCUIT_OPEN).set(if open { 1.0 } else { 0.0 });
    }

    /// Whether calls are being held back now (for readiness and metrics).
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_failures_in_a_row_probes_after_cooling_down_and_closes_on_success() {
        let breaker = Breaker::new(BreakerPolicy::default());
        for _ in 0..3 {
            assert_eq!(breaker.admit(), Admission::Go);
            breaker.record(false, Health::Failing);
        }
        // A success in between starts the count again.
        breaker.record(false, Health::Answered);
        for _ in 0..3 {
            breaker.record(false, Health::Failing);
        }
        breaker.record(false, Health::Unknown);
        assert_eq!(breaker.admit(), Admission::Go, "a refusal says nothing");
        breaker.record(false, Health::Failing);
        assert_eq!(breaker.admit(), Admission::Refused(Duration::from_secs(2)));
        assert!(breaker.is_open());

        // Cool-downs double while probes fail: 2, 4, 8, 15, 15 s.
        for cooldown in [2, 4, 8, 15, 15] {
            tokio::time::advance(Duration::from_secs(cooldown) - Duration::from_millis(1)).await;
            assert!(matches!(breaker.admit(), Admission::Refused(_)));
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(breaker.admit(), Admission::Probe);
            assert!(
                matches!(breaker.admit(), Admission::Refused(_)),
                "one probe at a time"
            );
            breaker.record(true, Health::Failing);
        }
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.record(true, Health::Answered);
        assert!(!breaker.is_open());
        assert_eq!(breaker.admit(), Admission::Go);
    }
}
