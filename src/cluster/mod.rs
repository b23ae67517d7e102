//! What the gateway's replicas share through Redis: the enterprise's upstream quota
//! ([`limiter`]) and the lists, fetched once for all of them ([`lists`]).
//!
//! Redis is an aid, never a condition of an answer. Every operation has a short timeout; the
//! first failure switches this replica to local mode (its own pacer at the fallback rate), and a
//! background probe switches it back once Redis answers again. Each switch is one log line and
//! the `gateway_redis_shared` gauge; the URL, which may carry a password, is never printed.

pub mod limiter;
pub mod lists;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

/// How replicas share through Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`, with the password in the URL if there is one.
    pub url: SecretString,
    /// Put before every key, so that several deployments can share one Redis.
    pub prefix: String,
    /// The pacer's rate while Redis is unreachable: this replica's safe share of the quota.
    pub fallback_calls_per_minute: u32,
    /// Upstream calls the enterprise may make in a day (China time), counted across replicas.
    pub calls_per_day: u32,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"[redacted]")
            .field("prefix", &self.prefix)
            .field("fallback_calls_per_minute", &self.fallback_calls_per_minute)
            .field("calls_per_day", &self.calls_per_day)
            .finish()
    }
}

/// Why a Redis URL cannot be used. Never repeats the URL.
#[derive(Debug, thiserror::Error)]
#[error("not a usable Redis URL ({0}); use redis://[user:password@]host[:port][/db] or rediss://")]
pub struct InvalidRedisUrl(String);

/// Checks a Redis URL without connecting.
pub fn check_url(url: &SecretString) -> Result<(), InvalidRedisUrl> {
    client(url).map(drop)
}

fn client(url: &SecretString) -> Result<redis::Client, InvalidRedisUrl> {
    let url = url.expose_secret();
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(InvalidRedisUrl("the scheme must be redis or rediss".into()));
    }
    // The error's text may quote the URL: only its kind is kept.
    redis::Client::open(url).map_err(|e| InvalidRedisUrl(format!("{:?}", e.kind())))
}

/// Longest wait for one Redis operation before this replica gives up on Redis for a while.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// A shared Redis connection (multiplexed, reconnecting) and whether this replica is in shared
/// mode. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    shared: AtomicBool,
    probing: AtomicBool,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.inner.prefix)
            .field("shared", &self.is_shared())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects (or starts in local mode, probing, when Redis does not answer at once).
    pub async fn connect(settings: &RedisSettings) -> Result<Self, InvalidRedisUrl> {
        let client = client(&settings.url)?;
        crate::metrics::handle(); // the mode gauge below needs the recorder installed
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| InvalidRedisUrl(format!("{:?}", e.kind())))?;
        let redis = Self {
            inner: Arc::new(Inner {
                client,
                connection,
                prefix: settings.prefix.clone(),
                shared: AtomicBool::new(false),
                probing: AtomicBool::new(false),
            }),
        };
        set_mode_gauge(false);
        if redis.ping().await {
            redis.inner.shared.store(true, Ordering::Relaxed);
            set_mode_gauge(true);
            tracing::info!("Redis answers: shared mode");
        } else {
            tracing::warn!("Redis does not answer: local mode until it does");
            redis.start_probe();
        }
        Ok(redis)
    }

    /// Whether this replica shares the quota and the lists through Redis right now.
    pub fn is_shared(&self) -> bool {
        self.inner.shared.load(Ordering::Relaxed)
    }

    /// The client, for connections of their own (pub/sub).
    fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// A key under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    /// Runs one operation on the shared connection: `None` when this replica is in local mode
    /// or the operation fails (which switches it to local mode).
    pub async fn run<T, F, Fut>(&self, operation: &'static str, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_shared() {
            return None;
        }
        let result = tokio::time::timeout(OPERATION_TIMEOUT, op(self.inner.connection.clone()))
            .await
            .unwrap_or_else(|_| Err(redis::RedisError::from(timeout_error())));
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                metrics::counter!(crate::metrics::REDIS_ERRORS, "operation" => operation)
                    .increment(1);
                self.fall_back(operation, &error);
                None
            }
        }
    }

    /// Switches to local mode (once) and starts probing for Redis.
    fn fall_back(&self, operation: &'static str, error: &redis::RedisError) {
        if self.inner.shared.swap(false, Ordering::Relaxed) {
            set_mode_gauge(false);
            // The kind and category only: a connection error's text may carry the address.
            tracing::warn!(
                operation,
                kind = ?error.kind(),
                "Redis failed: local mode until it answers again"
            );
        }
        self.start_probe();
    }

    fn start_probe(&self) {
        if self.inner.probing.swap(true, Ordering::Relaxed) {
            return;
        }
        let redis = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            loop {
                tokio::time::sleep(wait).await;
                if redis.ping().await {
                    redis.inner.probing.store(false, Ordering::Relaxed);
                    redis.inner.shared.store(true, Ordering::Relaxed);
                    set_mode_gauge(true);
                    tracing::info!("Redis answers again: shared mode");
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn ping(&self) -> bool {
        let mut connection = self.inner.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        matches!(
            tokio::time::timeout(OPERATION_TIMEOUT, ping).await,
            Ok(Ok(_))
        )
    }
}

fn timeout_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer in time")
}

fn set_mode_gauge(shared: bool) {
    metrics::gauge!(crate::metrics::REDIS_SHARED).set(if shared { 1.0 } else { 0.0 });
}
