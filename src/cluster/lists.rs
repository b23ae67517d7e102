//! Lists shared by every replica: the second cache level, one fetch per list across the cluster,
//! and purges that reach every replica.
//!
//! - An entry is stored under `list:<meeting>:<fingerprint>` with a TTL of its remaining use.
//! - The first replica to miss takes `lock:<meeting>:<fingerprint>` (`SET NX PX` with a random
//!   token), renews it while it fetches, shares its progress, stores the entry, announces it and
//!   releases the lock (compare-and-delete). A replica that finds the lock taken waits for the
//!   announcement, looking at the entry and the lock now and then; once a dead holder's lock
//!   expires, it takes the fetch over.
//! - Announcements (`landed`, `purged`) go over one pub/sub channel; a replica that misses one
//!   still finds the entry by looking.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::{AsyncCommands as _, Script};
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::Redis;
use crate::upstream::{PAGE_SIZE, ParticipantsQuery};

/// How long a lock lives without renewal: a dead holder's fetch is taken over this long after
/// its last renewal.
pub const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews its lock and shares its progress.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Renews a lock and shares the fetch's progress, if the lock is still this holder's.
/// KEYS: lock, progress. ARGV: token, TTL (ms), records, total count (-1: unknown).
const HEARTBEAT_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. ARGV[4], 'PX', ARGV[2])
return 1
";

/// Releases a lock if it is still this holder's. KEYS: lock, progress. ARGV: token.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
";

/// One list's keys in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListKey {
    meeting_id: String,
    /// A digest of everything that selects the list (meeting, sub-meeting, operator, window):
    /// the request target of its first page, which names them all.
    fingerprint: String,
}

impl ListKey {
    pub fn of(query: &ParticipantsQuery) -> Self {
        let target = query.page_target(0, PAGE_SIZE);
        Self {
            meeting_id: query.meeting_id().to_owned(),
            fingerprint: hex::encode(&Sha256::digest(target.as_bytes())[..16]),
        }
    }

    /// The name its entry is stored and announced under (before the prefix).
    pub fn entry_name(&self) -> String {
        self.name("list")
    }

    fn name(&self, kind: &str) -> String {
        format!("{kind}:{}:{}", self.meeting_id, self.fingerprint)
    }
}

/// Announced to every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A list was stored (its key's `list:` name).
    Landed(String),
    /// A meeting's lists were purged.
    Purged(String),
    /// A webhook event one replica received, for every replica to apply (its JSON).
    Event(String),
}

/// The shared lists of one deployment.
#[derive(Debug, Clone)]
pub struct SharedLists {
    redis: Redis,
    channel: String,
    announcements: broadcast::Sender<Announcement>,
    heartbeat: Arc<Script>,
    release: Arc<Script>,
}

impl SharedLists {
    /// The shared lists, listening for announcements (reconnecting as long as the process runs).
    pub fn new(redis: Redis) -> Self {
        let channel = redis.key("announcements");
        let (announcements, _) = broadcast::channel(256);
        tokio::spawn(listen(
            redis.client().clone(),
            channel.clone(),
            announcements.clone(),
        ));
        Self {
            redis,
            channel,
            announcements,
            heartbeat: Arc::new(Script::new(HEARTBEAT_SCRIPT)),
            release: Arc::new(Script::new(RELEASE_SCRIPT)),
        }
    }

    /// Announcements from every replica, this one's included, from now on.
    pub fn announcements(&self) -> broadcast::Receiver<Announcement> {
        self.announcements.subscribe()
    }

    /// The stored entry of a list; `None` when absent or Redis cannot answer.
    pub async fn load(&self, key: &ListKey) -> Option<Vec<u8>> {
        let name = self.redis.key(&key.name("list"));
        let found: Option<Vec<u8>> = self
            .redis
            .run("list_load", |mut c| async move { c.get(name).await })
            .await?;
        metrics::counter!(
            crate::metrics::SHARED_LISTS,
            "result" => if found.is_some() { "hit" } else { "miss" }
        )
        .increment(1);
        found
    }

    /// Stores a list's entry for `ttl` and announces it.
    pub async fn store(&self, key: &ListKey, entry: Vec<u8>, ttl: Duration) {
        let name = key.name("list");
        let full = self.redis.key(&name);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let channel = self.channel.clone();
        let _: Option<()> = self
            .redis
            .run("list_store", |mut c| async move {
                redis::pipe()
                    .set_options(
                        &full,
                        entry,
                        redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms)),
                    )
                    .ignore()
                    .publish(&channel, format!("landed {name}"))
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await;
    }

    /// Takes the lock of a list's fetch: `Some(Some(lock))` when taken, `Some(None)` when
    /// another replica holds it, `None` when Redis cannot answer.
    pub async fn lock(&self, key: &ListKey) -> Option<Option<Lock>> {
        let lock = self.redis.key(&key.name("lock"));
        let token = hex::encode(rand::random::<[u8; 16]>());
        let taken: Option<String> = self
            .redis
            .run("lock_take", |mut c| {
                let (lock, token) = (lock.clone(), token.clone());
                async move {
                    redis::cmd("SET")
                        .arg(lock)
                        .arg(token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LOCK_TTL.as_millis() as u64)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Some(taken.map(|_| Lock {
            lists: self.clone(),
            progress: self.redis.key(&key.name("progress")),
            lock,
            token,
            heartbeat: None,
        }))
    }

    /// How far the holder of a list's lock has got: records and `total_count`.
    pub async fn progress(&self, key: &ListKey) -> Option<(usize, Option<i64>)> {
        let name = self.redis.key(&key.name("progress"));
        let text: Option<String> = self
            .redis
            .run("progress_read", |mut c| async move { c.get(name).await })
            .await?;
        let text = text?;
        let (records, total) = text.split_once(' ')?;
        let total: i64 = total.parse().ok()?;
        Some((records.parse().ok()?, (total >= 0).then_some(total)))
    }

    /// Whether this is the first time any replica saw the delivery `id` (within an hour):
    /// `None` when Redis cannot answer.
    pub async fn first_delivery(&self, id: &str) -> Option<bool> {
        let key = self.redis.key(&format!("webhook:{id}"));
        let set: Option<String> = self
            .redis
            .run("delivery_seen", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(3600)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Some(set.is_some())
    }

    /// Hands a webhook event (its JSON) to every replica; `false` when Redis cannot take it.
    pub async fn announce_event(&self, json: &str) -> bool {
        let channel = self.channel.clone();
        let message = format!("event {json}");
        self.redis
            .run("event_publish", |mut c| async move {
                c.publish::<_, _, ()>(channel, message).await
            })
            .await
            .is_some()
    }

    /// Drops a meeting's shared lists and tells every replica to drop its own copies.
    pub async fn purge(&self, meeting_id: &str) {
        let pattern = self.redis.key(&format!("list:{meeting_id}:*"));
        let channel = self.channel.clone();
        let message = format!("purged {meeting_id}");
        let _: Option<()> = self
            .redis
            .run("purge", |mut c| async move {
                let mut keys: Vec<String> = Vec::new();
                {
                    let mut found = c.scan_match::<_, String>(&pattern).await?;
                    while let Some(key) = found.next().await {
                        keys.push(key?);
                    }
                }
                if !keys.is_empty() {
                    let _: () = c.del(keys).await?;
                }
                c.publish(channel, message).await
            })
            .await;
    }
}

/// A list's fetch lock, held by this replica. Released by [`Lock::release`]; if the process dies
/// instead, the lock expires.
#[derive(Debug)]
pub struct Lock {
    lists: SharedLists,
    lock: String,
    progress: String,
    token: String,
    heartbeat: Option<JoinHandle<()>>,
}

impl Lock {
    /// Renews the lock and shares `progress()` (records, total count) until released.
    pub fn keep_alive(&mut self, progress: impl Fn() -> (usize, Option<i64>) + Send + 'static) {
        let (lists, lock, key, token) = (
            self.lists.clone(),
            self.lock.clone(),
            self.progress.clone(),
            self.token.clone(),
        );
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                let (records, total) = progress();
                let ttl = LOCK_TTL.as_millis() as u64;
                let script = lists.heartbeat.clone();
                let (lock, key, token) = (lock.clone(), key.clone(), token.clone());
                let _: Option<i64> = lists
                    .redis
                    .run("lock_renew", |mut c| async move {
                        script
                            .key(lock)
                            .key(key)
                            .arg(token)
                            .arg(ttl)
                            .arg(records)
                            .arg(total.unwrap_or(-1))
                            .invoke_async(&mut c)
                            .await
                    })
                    .await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        }));
    }

    /// Gives the lock up (if it is still this holder's).
    pub async fn release(mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let (script, lock, progress, token) = (
            self.lists.release.clone(),
            self.lock.clone(),
            self.progress.clone(),
            self.token.clone(),
        );
        let _: Option<i64> = self
            .lists
            .redis
            .run("lock_release", |mut c| async move {
                script
                    .key(lock)
                    .key(progress)
                    .arg(token)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

/// Relays the deployment's announcements to this process, reconnecting with backoff.
async fn listen(
    client: redis::Client,
    channel: String,
    announcements: broadcast::Sender<Announcement>,
) {
    let mut wait = Duration::from_millis(250);
    loop {
        if let Ok(mut pubsub) = client.get_async_pubsub().await
            && pubsub.subscribe(&channel).await.is_ok()
        {
            wait = Duration::from_millis(250);
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                let announcement = match text.split_once(' ') {
                    Some(("landed", name)) => Announcement::Landed(name.to_owned()),
                    Some(("purged", meeting)) => Announcement::Purged(meeting.to_owned()),
                    Some(("event", json)) => Announcement::Event(json.to_owned()),
                    _ => continue,
                };
                // None listening right now is fine: announcements are hints.
                let _ = announcements.send(announcement);
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
