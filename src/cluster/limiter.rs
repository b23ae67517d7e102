//! The upstream quota shared by every replica: one GCRA in Redis per AppId, kept by a Lua script
//! that reads the time from Redis (`TIME`), because replicas' clocks disagree. The same schedule
//! as the local pacer (a tenth of the per-minute budget at once, the rest evenly spaced), a
//! per-day count that renews at midnight China time, and a shared pause: a quota error seen by
//! one replica makes every replica wait until the minute (or the day) turns.

use std::time::Duration;

use redis::Script;

use super::Redis;
use crate::upstream::pacer::Gcra;

/// Takes one call from the shared schedule.
/// KEYS: the theoretical arrival time (µs), the pause (µs), the per-day count's prefix.
/// ARGV: interval (µs), tolerance (µs), calls per day.
/// Returns `{0}` (go), `{1, µs}` (wait that long, then ask again) or `{2, µs}` (the day's calls
/// are spent; the count renews in that long).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance, per_day = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return {1, pause - now} end
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if tat - tolerance > now then return {1, tat - tolerance - now} end
local day = math.floor((tonumber(t[1]) + 28800) / 86400)
local next_day = (day + 1) * 86400 - 28800
local day_key = KEYS[3] .. day
if tonumber(redis.call('GET', day_key) or '0') >= per_day then
  return {2, next_day * 1000000 - now}
end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 1000)
redis.call('INCR', day_key)
redis.call('EXPIREAT', day_key, next_day + 3600)
return {0}
";

/// Pauses every replica until the minute turns (`minute`) or the day does, China time (`day`).
/// KEYS: the pause (µs). ARGV: `minute` or `day`. Returns the pause's end (µs).
const PAUSE: &str = r"
local s = tonumber(redis.call('TIME')[1])
local until_s
if ARGV[1] == 'minute' then
  until_s = (math.floor(s / 60) + 1) * 60
else
  until_s = (math.floor((s + 28800) / 86400) + 1) * 86400 - 28800
end
local until_us = until_s * 1000000
if until_us > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%d', until_us), 'PXAT', until_s * 1000 + 1000)
end
return until_us
";

/// What the shared schedule says about one more call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go now: the call is counted.
    Now,
    /// Ask again after this long.
    After(Duration),
    /// The enterprise's calls for the day are spent; the count renews after this long.
    DaySpent(Duration),
}

/// Which quota a refusal spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    Minute,
    Day,
}

/// The shared limiter of one AppId.
#[derive(Debug)]
pub struct SharedLimiter {
    redis: Redis,
    schedule: String,
    pause: String,
    day: String,
    interval_us: u64,
    tolerance_us: u64,
    calls_per_day: u32,
    take: Script,
    pause_script: Script,
}

impl SharedLimiter {
    /// At most `calls_per_minute` calls in any minute and `calls_per_day` in a day, for every
    /// replica using `app_id` together.
    pub fn new(redis: Redis, app_id: &str, calls_per_minute: u32, calls_per_day: u32) -> Self {
        let gcra = Gcra::new(calls_per_minute, Duration::from_secs(60));
        Self {
            schedule: redis.key(&format!("quota:{app_id}:schedule")),
            pause: redis.key(&format!("quota:{app_id}:pause")),
            day: redis.key(&format!("quota:{app_id}:day:")),
            redis,
            interval_us: micros(gcra.interval),
            tolerance_us: micros(gcra.tolerance()),
            calls_per_day,
            take: Script::new(TAKE),
            pause_script: Script::new(PAUSE),
        }
    }

    /// Whether Redis is in use right now (false: the caller paces on its own).
    pub fn is_shared(&self) -> bool {
        self.redis.is_shared()
    }

    /// Asks for one call; `None` when Redis cannot answer (the caller paces on its own).
    pub async fn take(&self) -> Option<Admission> {
        let answer: Vec<u64> = self
            .redis
            .run("quota_take", |mut connection| async move {
                self.take
                    .key(&self.schedule)
                    .key(&self.pause)
                    .key(&self.day)
                    .arg(self.interval_us)
                    .arg(self.tolerance_us)
                    .arg(self.calls_per_day)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let wait = || Duration::from_micros(answer.get(1).copied().unwrap_or(0));
        Some(match answer.first() {
            Some(0) => Admission::Now,
            Some(2) => Admission::DaySpent(wait()),
            _ => Admission::After(wait()),
        })
    }

    /// Makes every replica wait until the spent quota renews.
    pub async fn pause(&self, spent: Spent) {
        let which = match spent {
            Spent::Minute => "minute",
            Spent::Day => "day",
        };
        let _: Option<u64> = self
            .redis
            .run("quota_pause", |mut connection| async move {
                self.pause_script
                    .key(&self.pause)
                    .arg(which)
                    .invoke_async(&mut connection)
                    .await
            })
            .await;
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
