//! The live demo meeting changing over time, as Tencent would report it: every so often someone
//! joins it or leaves it. The change is in the simulator's own list (so that a gateway's refetch
//! finds it), and an event is delivered, signed (and encrypted with an EncodingAESKey), to a
//! subscribed URL, with Tencent's retries after 1, 3 and 6 minutes when it is not acknowledged.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::value::RawValue;

use super::Simulator;
use super::dataset::Record;
use super::demo::LIVE_MEETING;
use crate::clock::unix_now;
use crate::webhooks::delivery::{EVENT_ANSWER, WebhookKeys};

/// Where and how often events go.
#[derive(Debug, Clone)]
pub struct EventFeed {
    /// The subscribed URL (the gateway's `/webhooks/wemeet`).
    pub url: String,
    pub keys: WebhookKeys,
    /// How often someone joins or leaves.
    pub every: Duration,
}

/// Tencent's retries of a delivery that was not acknowledged.
const RETRIES: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(180),
    Duration::from_secs(360),
];

/// The live meeting's changes since the simulator started: records appended, and records of
/// the dataset closed (by index, with their `left_time`).
#[derive(Debug, Default)]
pub(super) struct Changes {
    joined: Vec<Record>,
    closed: Vec<(usize, i64)>,
    steps: u64,
}

impl Changes {
    pub(super) fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// The meeting's records with the changes applied.
    pub(super) fn apply(&self, records: &[Record]) -> Vec<Record> {
        let mut all = records.to_vec();
        for (index, left_time) in &self.closed {
            if let Some(record) = all.get_mut(*index) {
                *record = closed(record, *left_time);
            }
        }
        all.extend(self.joined.iter().cloned());
        all
    }
}

/// A record with its `left_time` set.
fn closed(record: &Record, left_time: i64) -> Record {
    let mut value: serde_json::Value =
        serde_json::from_str(record.json.get()).expect("stored records are JSON");
    value["left_time"] = serde_json::Value::String(left_time.to_string());
    Record {
        join_time: record.join_time,
        left_time: Some(left_time),
        json: RawValue::from_string(value.to_string()).expect("a value is JSON"),
    }
}

impl Simulator {
    /// Starts the live meeting's changes and their deliveries to `feed.url`.
    pub fn start_events(&self, feed: EventFeed) {
        let simulator = self.clone();
        // reqwest is built without a default crypto provider; ring is ours (a second install,
        // as when a gateway runs in the same process, is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(feed.every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some(event) = simulator.step() {
                    tokio::spawn(deliver(http.clone(), feed.clone(), event));
                }
            }
        });
    }

    /// One change: someone joins (odd steps) or someone still in leaves (even steps).
    /// Returns the event that reports it.
    fn step(&self) -> Option<serde_json::Value> {
        let records = self
            .dataset()
            .meetings
            .get(LIVE_MEETING)?
            .records(None)
            .ok()?;
        let now = unix_now();
        let (seconds, millis) = (now.as_secs() as i64, now.as_millis() as i64);
        let mut changes = self.state.live.lock().unwrap_or_else(|e| e.into_inner());
        changes.steps += 1;
        let n = changes.steps;
        let (kind, uuid, name, instance) = if n % 2 == 1 {
            let uuid = format!("WM-sim-{n}");
            let name = format!("访客{n}");
            let json = serde_json::json!({
                "userid": "", "uuid": uuid, "ms_open_id": format!("ms-sim-{n}"),
                "user_name": BASE64.encode(&name), "join_time": seconds.to_string(),
                "instanceid": 1, "user_role": 0,
            });
            changes.joined.push(Record {
                join_time: seconds,
                left_time: None,
                json: RawValue::from_string(json.to_string()).expect("a value is JSON"),
            });
            ("meeting.participant-joined", uuid, name, 1)
        } else {
            // Someone of the dataset still in leaves; once none is, someone who joined here.
            let open = |record: &Record| record.left_time.is_none();
            let closed_already = |i: usize| changes.closed.iter().any(|(c, _)| *c == i);
            let from_dataset = (0..records.len())
                .filter(|i| open(&records[*i]) && !closed_already(*i))
                .find_map(|i| {
                    let value: serde_json::Value =
                        serde_json::from_str(records[i].json.get()).ok()?;
                    value["uuid"].is_string().then_some((i, value))
                });
            let value = if let Some((index, value)) = from_dataset {
                changes.closed.push((index, seconds));
                value
            } else {
                let record = changes.joined.iter_mut().find(|r| open(r))?;
                let value: serde_json::Value = serde_json::from_str(record.json.get()).ok()?;
                *record = closed(record, seconds);
                value
            };
            (
                "meeting.participant-left",
                value["uuid"].as_str().unwrap_or_default().to_owned(),
                String::new(),
                value["instanceid"].as_i64().unwrap_or(1),
            )
        };
        Some(serde_json::json!({
            "event": kind,
            "trace_id": format!("sim-{}-{n}", hex::encode(rand::random::<[u8; 6]>())),
            "payload": [{
                "operate_time": millis,
                "operator": {"userid": "", "uuid": uuid, "user_name": name,
                             "instance_id": instance.to_string(), "ms_open_id": ""},
                "meeting_info": {"meeting_id": LIVE_MEETING, "meeting_type": 0},
            }],
        }))
    }
}

/// Delivers one event, signed, as Tencent does: once, then retried until acknowledged.
async fn deliver(http: reqwest::Client, feed: EventFeed, event: serde_json::Value) {
    let data = feed.keys.seal(event.to_string().as_bytes());
    for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
        tokio::time::sleep(wait).await;
        let timestamp = unix_now().as_millis().to_string();
        let nonce = rand::random_range(10_000_000..100_000_000u32).to_string();
        let answer = http
            .post(&feed.url)
            .header("timestamp", &timestamp)
            .header("nonce", &nonce)
            .header("signature", feed.keys.sign(&timestamp, &nonce, &data))
            .json(&serde_json::json!({ "data": data }))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status().is_success()
            && answer
                .bytes()
                .await
                .is_ok_and(|b| b == EVENT_ANSWER.as_bytes())
        {
            return;
        }
    }
}
