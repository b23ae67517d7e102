//! Wall-clock time that advances with tokio's clock.
//!
//! Quota windows are calendar minutes, so both the client (waiting for the next minute) and the
//! simulator (counting calls per minute) need the time of day. Reading it as "the wall clock when
//! created, plus tokio's elapsed time" keeps it true in production and lets tests pause and
//! advance time with `tokio::time`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    anchor_unix: Duration,
    anchor: Instant,
}

impl WallClock {
    pub fn new() -> Self {
        Self {
            anchor_unix: unix_now(),
            anchor: Instant::now(),
        }
    }

    /// Time since the unix epoch.
    pub fn now(&self) -> Duration {
        self.anchor_unix + self.anchor.elapsed()
    }

    /// How long until the next calendar minute begins.
    pub fn until_next_minute(&self) -> Duration {
        let now = self.now();
        let into_minute = Duration::from_nanos((now.as_nanos() % 60_000_000_000) as u64);
        Duration::from_secs(60) - into_minute
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

/// China's offset from UTC (no daylight saving). Tencent's daily API quota follows China's day.
pub const CHINA_UTC_OFFSET_SECS: u64 = 8 * 3600;

/// The number of the day in China (UTC+8) that a unix second falls in.
pub fn china_day(unix_secs: u64) -> u64 {
    (unix_secs + CHINA_UTC_OFFSET_SECS) / 86_400
}

/// The system's time since the unix epoch (zero if the clock is before 1970).
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_days_begin_at_16_00_utc() {
        assert_eq!(china_day(0), 0, "08:00 in China");
        assert_eq!(china_day(16 * 3600 - 1), 0, "23:59:59 in China");
        assert_eq!(china_day(16 * 3600), 1, "midnight in China");
        assert_eq!(china_day(86_400 + 16 * 3600 - 1), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time_and_finds_the_next_minute() {
        let clock = WallClock::new();
        let before = clock.now();
        let wait = clock.until_next_minute();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        tokio::time::advance(wait).await;
        assert_eq!(clock.now() - before, wait);
        assert_eq!(clock.now().as_nanos() % 60_000_000_000, 0);
    }
}
