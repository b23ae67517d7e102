//! The Tencent Meeting client: one private send path (sign, send, classify, decode) and the
//! paging loop over it. Callers ask for a whole list and never see pages.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use compact_str::CompactString;
use reqwest::Url;
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};
use tracing::{Instrument, debug, info_span, instrument, warn};

use super::breaker::{Admission, Breaker, BreakerPolicy, Health};
use super::error::{ErrorClass, UpstreamError};
use super::pacer::Pacer;
use super::query::ParticipantsQuery;
use super::quota::{Permit, Quota};
use super::signing::{Credentials, signed_headers};
use super::wire::{ErrorBody, Page, Participant};
use crate::clock::{WallClock, unix_now};
use crate::cluster::limiter::SharedLimiter;

/// Records asked for per page: the upstream's maximum.
pub const PAGE_SIZE: u32 = 100;
/// The upstream serves at most this many records of one list, over all pages.
pub const RECORD_CAP: usize = 50_000;
/// The most pages one list may take: twice what the record cap needs at full pages, as slack for
/// an upstream that sends short pages. More is a paging loop, not data.
const MAX_PAGES: u32 = 2 * RECORD_CAP.div_ceil(PAGE_SIZE as usize) as u32;

/// How failed calls are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after a transient failure or a replay rejection (not counting the first try).
    pub max_retries: u32,
    /// First backoff; doubles on each retry, with jitter.
    pub base_delay: Duration,
    /// Longest single backoff.
    pub max_delay: Duration,
    /// How many times a per-minute quota rejection waits for the next minute before giving up.
    pub minute_waits: u32,
    /// When repeated transient failures stop the calls for a while.
    pub breaker: BreakerPolicy,
    /// How many retries all lists together may make, whatever each page's own allowance.
    pub budget: RetryBudget,
}

/// A retry budget shared by every fetch: retries may be at most `ratio` of the first attempts
/// made over the last `window`, plus `floor_per_second` so that a quiet gateway can still retry a
/// lone failure. Under a partial outage this keeps retries from multiplying the load on the
/// upstream (and the quota spent) when the circuit breaker has not opened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// The sliding window first attempts are counted over (1 to 60 s).
    pub window: Duration,
    /// Retries allowed per first attempt.
    pub ratio: f32,
    /// Retries allowed each second on top of the ratio.
    pub floor_per_second: u32,
}

impl Default for RetryBudget {
    /// A fifth of first attempts over 10 s, plus one retry a second.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            ratio: 0.2,
            floor_per_second: 1,
        }
    }
}

impl RetryBudget {
    fn tokens(self) -> TpsBudget {
        TpsBudget::new(
            self.window
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            self.floor_per_second,
            self.ratio.clamp(0.0, 1000.0),
        )
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            minute_waits: 2,
            breaker: BreakerPolicy::default(),
            budget: RetryBudget::default(),
        }
    }
}

/// Everything the client needs; see `config.rs` for where each value comes from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port of the API, e.g. `https://api.meeting.qq.com`.
    pub base_url: String,
    pub credentials: Credentials,
    /// Outbound budget shared by every fetch.
    pub calls_per_minute: u32,
    /// The enterprise's calls a day: counted across replicas when Redis is shared, and exported
    /// as a gauge for alerts either way.
    pub calls_per_day: u32,
    /// Longest wait for one page.
    pub page_timeout: Duration,
    /// Longest time for a whole list, retries and pacing included.
    pub list_deadline: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A client of the API at `base_url`, with the documented defaults: 240 calls a minute,
    /// 10 s per page, 5 minutes per list, the default retries.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            calls_per_minute: 240,
            calls_per_day: 200_000,
            page_timeout: Duration::from_secs(10),
            list_deadline: Duration::from_secs(300),
            retry: RetryPolicy::default(),
        }
    }
}

/// Why a list is not the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// The upstream stops serving at [`RECORD_CAP`] records; `total_count` says how many exist.
    TruncatedAtRecordCap,
}

/// What a list says besides its records: the meeting, the counts, whether it is whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListHead {
    pub meeting_id: Option<String>,
    pub meeting_code: Option<String>,
    pub subject: Option<String>,
    pub schedule_start_time: Option<i64>,
    pub schedule_end_time: Option<i64>,
    pub total_count: Option<i64>,
    pub completeness: Completeness,
    /// Upstream pages that made up the list.
    pub pages: u32,
    /// Records in the list.
    pub records: usize,
    /// Records of people still in the meeting (no `left_time`).
    pub still_in: usize,
    /// Upstream time windows fetched (more than one when the list's window spans more than
    /// the upstream's 31 days).
    pub windows: u32,
}

/// A list being merged from its windows' pages.
#[derive(Debug, Default)]
struct Merged {
    head: Option<ListHead>,
    pages: u32,
    /// Whether the window being fetched is the first.
    first_window: bool,
    /// The records kept so far, when there are several windows: a later window's copy of one
    /// is a repeat.
    seen: HashSet<RecordKey>,
    /// Records the windows fetched before count, repeats left out.
    counted: i64,
    /// Records the current window counts, repeats left out.
    window_total: i64,
    /// Whether any page gave a `total_count`.
    any_total: bool,
}

/// What makes a record the same record in two windows: the person's ids, the device and the
/// second they joined.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RecordKey {
    ids: [Option<CompactString>; 3],
    instanceid: Option<i64>,
    join_time: i64,
}

impl RecordKey {
    fn of(record: &Participant) -> Self {
        Self {
            ids: [
                record.userid.clone(),
                record.ms_open_id.clone(),
                record.uuid.clone(),
            ],
            instanceid: record.instanceid,
            join_time: record.join_time,
        }
    }
}

/// A whole participant list, merged from every page in the upstream's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantList {
    pub head: ListHead,
    pub participants: Vec<Participant>,
}

/// Takes a list's records page by page, as they arrive, in the upstream's order.
/// The fetch waits for each page to be taken before asking for the next, so a sink can hold
/// the fetch back (a full pipeline, a memory budget).
pub trait PageSink: Send {
    fn page(&mut self, records: Vec<Participant>) -> impl Future<Output = ()> + Send;
}

/// Collects the pages into one vector.
impl PageSink for Vec<Participant> {
    async fn page(&mut self, records: Vec<Participant>) {
        if self.is_empty() {
            *self = records;
        } else {
            self.extend(records);
        }
    }
}

/// How far a fetch has got: records so far and the upstream's `total_count`, when known.
#[derive(Debug)]
pub struct FetchProgress {
    records: AtomicUsize,
    total_count: AtomicI64,
}

impl Default for FetchProgress {
    fn default() -> Self {
        Self {
            records: AtomicUsize::new(0),
            total_count: AtomicI64::new(-1),
        }
    }
}

impl FetchProgress {
    /// Sets how far the fetch has got (the client as pages arrive; a replica waiting for
    /// another replica's fetch, from what that one shares).
    pub fn record(&self, records: usize, total_count: Option<i64>) {
        self.records.store(records, Ordering::Relaxed);
        self.total_count
            .store(total_count.unwrap_or(-1), Ordering::Relaxed);
    }

    /// Records fetched so far.
    pub fn records(&self) -> usize {
        self.records.load(Ordering::Relaxed)
    }

    /// The upstream's `total_count`, once a page has said it.
    pub fn total_count(&self) -> Option<i64> {
        Some(self.total_count.load(Ordering::Relaxed)).filter(|t| *t >= 0)
    }
}

/// A cheap, cloneable handle to the upstream client.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// The API's origin, parsed once; each page's URL is this joined with its signed target.
    base: Url,
    credentials: Credentials,
    quota: Quota,
    clock: WallClock,
    page_timeout: Duration,
    list_deadline: Duration,
    retry: RetryPolicy,
    lockout: Lockout,
    breaker: Breaker,
    /// Shared by every fetch: a first attempt deposits, a retry withdraws.
    retry_budget: TpsBudget,
}

/// Whether the upstream has locked the gateway out: credentials, signature or clock rejected
/// (re-checked a minute later, or on any success), or the daily quota spent (an hour).
#[derive(Debug, Default)]
struct Lockout {
    /// Unix second until which the gateway counts as locked out.
    until: AtomicU64,
    reason: AtomicUsize,
}

const LOCKOUT_REASONS: [&str; 3] = [
    "the upstream rejects the gateway's credentials or signature",
    "the upstream rejects the gateway's clock",
    "the enterprise's daily API quota is spent",
];

impl Lockout {
    fn note<T>(&self, result: &Result<T, UpstreamError>) {
        let now = unix_now().as_secs();
        let (until, reason) = match result {
            Ok(_) => (0, 0),
            Err(e) => match e.class() {
                ErrorClass::Credentials => (now + 60, 0),
                ErrorClass::ClockSkew => (now + 60, 1),
                ErrorClass::DailyLimit => (now + 3600, 2),
                _ => return,
            },
        };
        self.reason.store(reason, Ordering::Relaxed);
        self.until.store(until, Ordering::Relaxed);
    }

    fn reason(&self) -> Option<&'static str> {
        (self.until.load(Ordering::Relaxed) > unix_now().as_secs())
            .then(|| LOCKOUT_REASONS[self.reason.load(Ordering::Relaxed) % LOCKOUT_REASONS.len()])
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("invalid API base URL {0:?}: give scheme, host and optional port only")]
    BaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl UpstreamClient {
    /// A client pacing itself to `config.calls_per_minute`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        let pacer = Pacer::per_minute(config.calls_per_minute);
        Self::build(config, Quota::Local(pacer))
    }

    /// A client taking each call from `limiter`, shared with every other replica, or from its own
    /// pacer at `fallback_calls_per_minute` while Redis cannot answer.
    pub fn shared(
        config: ClientConfig,
        limiter: SharedLimiter,
        fallback_calls_per_minute: u32,
    ) -> Result<Self, ClientBuildError> {
        let fallback = Pacer::per_minute(fallback_calls_per_minute);
        Self::build(config, Quota::Shared { limiter, fallback })
    }

    fn build(config: ClientConfig, quota: Quota) -> Result<Self, ClientBuildError> {
        let base = origin(&config.base_url)
            .ok_or_else(|| ClientBuildError::BaseUrl(config.base_url.clone()))?;
        // reqwest is built without a default crypto provider; ring is ours. A second install
        // (several clients in one process) is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("wemeet-gateway/", env!("CARGO_PKG_VERSION")))
            // A redirect is not an answer the API gives. Following one would send the signed
            // headers (AppId, SecretId, signature) wherever the Location points; refused, it is
            // reported as the status it is.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                credentials: config.credentials,
                quota,
                clock: WallClock::new(),
                page_timeout: config.page_timeout,
                list_deadline: config.list_deadline,
                breaker: Breaker::new(config.retry.breaker),
                retry_budget: config.retry.budget.tokens(),
                retry: config.retry,
                lockout: Lockout::default(),
            }),
        })
    }

    /// Longest time one whole list may take.
    pub fn list_deadline(&self) -> Duration {
        self.inner.list_deadline
    }

    /// Calls that could start now without waiting for the pacer.
    pub fn quota_available(&self) -> u32 {
        self.inner.quota.available()
    }

    /// Fetches a whole participant list, following the cursor until the upstream says there is
    /// no more, within the list deadline.
    pub async fn fetch_participants(
        &self,
        query: &ParticipantsQuery,
    ) -> Result<ParticipantList, UpstreamError> {
        let mut participants = Vec::new();
        let head = self
            .fetch_participants_into(query, &FetchProgress::default(), &mut participants)
            .await?;
        Ok(ParticipantList { head, participants })
    }

    /// Like [`fetch_participants`](Self::fetch_participants), handing each page's records to
    /// `sink` as it arrives (so that the caller's work on one page overlaps the next page's
    /// round trip) and updating `progress`, so that others can say how far a long fetch has got.
    /// Returns the list's head once it is whole.
    #[instrument(skip_all, fields(meeting_id = query.meeting_id()))]
    pub async fn fetch_participants_into(
        &self,
        query: &ParticipantsQuery,
        progress: &FetchProgress,
        sink: &mut impl PageSink,
    ) -> Result<ListHead, UpstreamError> {
        let limit = self.inner.list_deadline;
        let deadline = Instant::now() + limit;
        let result = tokio::time::timeout_at(
            deadline,
            self.fetch_all_pages(query, deadline, progress, sink),
        )
        .await
        .unwrap_or(Err(UpstreamError::Deadline(limit)));
        self.inner.lockout.note(&result);
        result
    }

    /// Whether calls are held back because the upstream keeps failing (for readiness).
    pub fn upstream_failing(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Why the upstream is refusing this gateway, if it is (for readiness).
    pub fn lockout(&self) -> Option<&'static str> {
        self.inner.lockout.reason()
    }

    /// Every window of the list (one, unless its time window spans more than 31 days), one
    /// after another, merged in order.
    async fn fetch_all_pages(
        &self,
        query: &ParticipantsQuery,
        deadline: Instant,
        progress: &FetchProgress,
        sink: &mut impl PageSink,
    ) -> Result<ListHead, UpstreamError> {
        let windows = query.windows();
        let mut merged = Merged {
            first_window: true,
            ..Merged::default()
        };
        for window in &windows {
            self.fetch_window(window, windows.len(), deadline, progress, sink, &mut merged)
                .await?;
            merged.counted += merged.window_total;
            merged.first_window = false;
        }
        let mut head = merged.head.expect("every window fetches a page at least");
        head.total_count = Some(merged.counted).filter(|_| merged.any_total);
        head.windows = windows.len() as u32;
        metrics::histogram!(crate::metrics::PAGES_PER_FETCH).record(f64::from(head.pages));
        Ok(head)
    }

    /// The pages of one of `windows` windows, into `merged`: records a window before already had
    /// are left out.
    async fn fetch_window(
        &self,
        query: &ParticipantsQuery,
        windows: usize,
        deadline: Instant,
        progress: &FetchProgress,
        sink: &mut impl PageSink,
        merged: &mut Merged,
    ) -> Result<(), UpstreamError> {
        let mut pos = 0;
        let mut cursors_seen = HashSet::from([pos]);
        let mut fetched = 0;
        let mut repeated: i64 = 0;
        merged.window_total = 0;
        for page_number in 1..=MAX_PAGES {
            let page = self
                .fetch_page(query, pos, merged.pages + 1, deadline)
                .await?;
            merged.pages += 1;
            let head = merged.head.get_or_insert(ListHead {
                meeting_id: page.meeting_id,
                meeting_code: page.meeting_code,
                subject: page.subject,
                schedule_start_time: page.schedule_start_time,
                schedule_end_time: page.schedule_end_time,
                total_count: None,
                completeness: Completeness::Complete,
                pages: 0,
                records: 0,
                still_in: 0,
                windows: 1,
            });
            head.pages = merged.pages;
            fetched += page.participants.len();
            let mut records = page.participants;
            if windows > 1 {
                // A record whose session spans two windows is in both (and a recurring
                // meeting's list, whose window the upstream ignores, is in every one).
                let before = records.len();
                let first_window = merged.first_window;
                records.retain(|r| merged.seen.insert(RecordKey::of(r)) || first_window);
                repeated += (before - records.len()) as i64;
            }
            head.records += records.len();
            head.still_in += records.iter().filter(|p| p.left_time.is_none()).count();
            if let Some(total) = page.total_count {
                merged.any_total = true;
                merged.window_total = total - repeated;
            } else {
                merged.window_total = fetched as i64 - repeated;
            }
            progress.record(
                head.records,
                Some(merged.counted + merged.window_total).filter(|_| merged.any_total),
            );
            if !records.is_empty() {
                sink.page(records).await;
            }
            if fetched >= RECORD_CAP {
                let more_exist = page.has_remaining
                    || page.total_count.is_some_and(|total| total > fetched as i64);
                if more_exist {
                    head.completeness = Completeness::TruncatedAtRecordCap;
                }
                return Ok(());
            }
            if !page.has_remaining {
                return Ok(());
            }
            let next = page.next_pos.ok_or_else(|| {
                UpstreamError::Protocol("has_remaining is true but next_pos is missing".into())
            })?;
            if !cursors_seen.insert(next) {
                return Err(UpstreamError::Protocol(format!(
                    "cursor {next} was returned twice (page {page_number})"
                )));
            }
            pos = next;
        }
        Err(UpstreamError::Protocol(format!(
            "more than {MAX_PAGES} pages without reaching the end or {RECORD_CAP} records"
        )))
    }

    /// One page, retried as its failure class allows.
    async fn fetch_page(
        &self,
        query: &ParticipantsQuery,
        pos: i64,
        page_number: u32,
        deadline: Instant,
    ) -> Result<Page, UpstreamError> {
        let target = query.page_target(pos, PAGE_SIZE);
        let policy = &self.inner.retry;
        let (mut retries, mut minute_waits) = (0, 0);
        let breaker = &self.inner.breaker;
        for attempt in 1.. {
            // An upstream that keeps failing is not asked (and no quota is spent) until its
            // cool-down is over.
            let probe = match breaker.admit() {
                Admission::Go => false,
                Admission::Probe => true,
                Admission::Refused(wait) => return Err(UpstreamError::CircuitOpen(wait)),
            };
            if attempt == 1 {
                self.inner.retry_budget.deposit();
            }
            let permit = self.inner.quota.acquire_by(deadline).await;
            metrics::gauge!(crate::metrics::QUOTA_AVAILABLE)
                .set(f64::from(self.inner.quota.available()));
            let refused = match permit {
                Permit::Go => None,
                Permit::PastDeadline => Some(UpstreamError::Deadline(self.inner.list_deadline)),
                Permit::DaySpent => Some(UpstreamError::DaySpent),
            };
            if let Some(error) = refused {
                breaker.record(probe, Health::Unknown);
                return Err(error);
            }
            let span = info_span!(
                "upstream_page",
                meeting_id = query.meeting_id(),
                page = page_number,
                attempt,
                outcome = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            );
            let started = Instant::now();
            let result = tokio::time::timeout(self.inner.page_timeout, self.send_get(&target))
                .instrument(span.clone())
                .await
                .unwrap_or_else(|_| {
                    Err(UpstreamError::Transport(format!(
                        "no answer within {:?}",
                        self.inner.page_timeout
                    )))
                });
            let outcome = result
                .as_ref()
                .map_or_else(|e| e.class().as_str(), |_| "ok");
            let latency = started.elapsed().as_secs_f64();
            span.record("outcome", outcome);
            span.record("latency_ms", latency * 1e3);
            metrics::counter!(crate::metrics::UPSTREAM_CALLS, "outcome" => outcome).increment(1);
            metrics::histogram!(crate::metrics::UPSTREAM_LATENCY).record(latency);
            let error = match result {
                Ok(page) => {
                    breaker.record(probe, Health::Answered);
                    return Ok(page);
                }
                Err(error) => error,
            };
            let failing = error.class() == ErrorClass::Transient;
            breaker.record(
                probe,
                if failing {
                    Health::Failing
                } else {
                    Health::Unknown
                },
            );
            if failing && breaker.is_open() {
                // The upstream is down: retrying now would only spend quota.
                return Err(error);
            }
            self.inner.quota.note_refusal(error.class()).await;
            let retryable = matches!(error.class(), ErrorClass::Transient | ErrorClass::Replay)
                || matches!(error, UpstreamError::Undecodable(_));
            let wait = match error.class() {
                _ if retryable && retries < policy.max_retries => {
                    if !self.inner.retry_budget.withdraw() {
                        metrics::counter!(crate::metrics::RETRIES_REFUSED).increment(1);
                        return Err(error);
                    }
                    retries += 1;
                    backoff(policy, retries)
                }
                ErrorClass::MinuteLimit if minute_waits < policy.minute_waits => {
                    minute_waits += 1;
                    // A little jitter so that waiting fetches do not all return at once.
                    let jitter = Duration::from_millis(rand::random_range(0..=1000));
                    self.inner.clock.until_next_minute() + jitter
                }
                _ => return Err(error),
            };
            // A wait that would end past the list's deadline cannot help: report the failure as
            // it is now, rather than as a deadline once the time is up.
            if Instant::now() + wait >= deadline {
                return Err(error);
            }
            span.in_scope(|| warn!(error = %error, retry_in_ms = wait.as_millis() as u64, "upstream page failed; retrying"));
            tokio::time::sleep(wait).await;
        }
        unreachable!("the retry loop returns")
    }

    /// Signs and sends one GET for `target`, classifying whatever comes back.
    async fn send_get(&self, target: &str) -> Result<Page, UpstreamError> {
        // Fresh timestamp and nonce on every try: Tencent rejects a reused pair.
        let timestamp = unix_now().as_secs();
        // Positive and within i64: the SDK's nonces are ~1.8e18, and a server that parses the
        // nonce as a signed 64-bit integer must accept ours.
        let nonce = rand::random_range(1..=i64::MAX as u64);
        let headers = signed_headers(
            &self.inner.credentials,
            "GET",
            target,
            b"",
            timestamp,
            nonce,
        );
        let url = page_url(&self.inner.base, target)?;
        let response = self
            .inner
            .http
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        debug!(status, bytes = body.len(), "upstream answered");
        decode(status, &body)
    }
}

/// Decodes one answer: a page, or a classified error.
pub fn decode(status: u16, body: &[u8]) -> Result<Page, UpstreamError> {
    if status == 200 {
        // One UTF-8 check over the whole body is much cheaper than serde_json's check of every
        // string it reads from a byte slice.
        let text = std::str::from_utf8(body)
            .map_err(|e| UpstreamError::Undecodable(format!("page is not UTF-8: {e}")))?;
        let page: Page = serde_json::from_str(text)
            .map_err(|e| UpstreamError::Undecodable(format!("not a page: {e}")))?;
        return match page.error_info {
            Some(info) => Err(api_error(status, info)),
            None => Ok(page),
        };
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => Err(api_error(status, body.error_info)),
        Err(_) => Err(UpstreamError::Status(status)),
    }
}

fn api_error(status: u16, info: super::wire::ErrorInfo) -> UpstreamError {
    UpstreamError::Api {
        class: ErrorClass::of_code(info.error_code),
        status,
        code: info.error_code,
        new_code: info.new_error_code,
        message: info.message.unwrap_or_default(),
    }
}

fn transport_error(error: reqwest::Error) -> UpstreamError {
    // Without the URL: it carries the operator's id, which is not the log's business.
    UpstreamError::Transport(error.without_url().to_string())
}

/// Exponential backoff with equal jitter: half the capped delay, plus a random part of the rest.
fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exponential = policy
        .base_delay
        .saturating_mul(1 << (retry - 1).min(20))
        .min(policy.max_delay);
    let half = exponential / 2;
    half + Duration::from_nanos(rand::random_range(0..=half.as_nanos() as u64))
}

/// `scheme://host[:port]` of a base URL with no path, query or credentials; `None` otherwise.
pub(crate) fn origin(base: &str) -> Option<Url> {
    let url = Url::parse(base).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then_some(url)
}

/// The URL for one signed request target (`/v1/...?...`), relative to the origin: no second
/// parse of scheme and host per page.
fn page_url(base: &Url, target: &str) -> Result<Url, UpstreamError> {
    let url = base
        .join(target)
        .map_err(|e| UpstreamError::Protocol(format!("request target: {e}")))?;
    // The origin serializes as `scheme://host[:port]/`, and every target starts with `/`.
    debug_assert_eq!(
        &url.as_str()[base.as_str().len() - 1..],
        target,
        "the URL must carry the signed target byte for byte"
    );
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::query::Operator;

    #[test]
    fn base_urls_are_origins_only() {
        assert_eq!(
            origin("https://api.meeting.qq.com").map(String::from),
            Some("https://api.meeting.qq.com/".to_owned())
        );
        assert_eq!(
            origin("http://127.0.0.1:9000/").map(String::from),
            Some("http://127.0.0.1:9000/".to_owned())
        );
        for bad in [
            "api.meeting.qq.com",
            "ftp://x",
            "https://x/v1",
            "https://u:p@x",
            "https://x?a=1",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    /// The URL type must not re-encode, decode or reorder the signed target.
    #[test]
    fn urls_carry_the_signed_target_byte_for_byte() {
        let odd = ["a.b-c_d", "x@y+z", "A+B@C.D"];
        for user in odd {
            let query = ParticipantsQuery::new(
                "144115214488302892",
                Operator::user_id(user).expect("valid"),
            )
            .and_then(|q| q.with_sub_meeting("0012"))
            .and_then(|q| q.with_window(Some(1), Some(2), 2))
            .expect("valid");
            let target = query.page_target(987654321, PAGE_SIZE);
            let base = origin("https://api.meeting.qq.com").expect("origin");
            let url = page_url(&base, &target).expect("url");
            let sent = format!("{}?{}", url.path(), url.query().expect("query"));
            assert_eq!(sent, target);
        }
    }

    #[test]
    fn answers_are_decoded_or_classified() {
        let page = decode(200, br#"{"participants":[],"has_remaining":false}"#).expect("page");
        assert!(page.participants.is_empty());
        let err = decode(
            400,
            br#"{"error_info":{"error_code":9003,"message":"no such meeting"}}"#,
        )
        .expect_err("error");
        assert_eq!(
            (err.class(), err.code()),
            (ErrorClass::NotFound, Some(9003))
        );
        let err = decode(
            200,
            br#"{"error_info":{"error_code":190310,"message":"quota"}}"#,
        )
        .expect_err("error in a 200");
        assert_eq!(err.class(), ErrorClass::MinuteLimit);
        assert_eq!(
            decode(502, b"<html>bad gateway</html>")
                .expect_err("5xx")
                .class(),
            ErrorClass::Transient
        );
        assert_eq!(
            decode(200, b"{not json").expect_err("junk").class(),
            ErrorClass::Protocol
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for retry in 1..10 {
            let delay = backoff(&policy, retry);
            let ceiling = (policy.base_delay * (1 << (retry - 1))).min(policy.max_delay);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "retry {retry}: {delay:?}"
            );
        }
    }
}

/// Properties of what is signed and what is sent, over generated queries and credentials: the
/// URL carries the signed target byte for byte, a receiver reading the target from the request
/// line verifies the signature, and a target changed in any byte does not.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use secrecy::SecretString;

    use super::*;
    use crate::simulator::auth::{ReplayGuard, verify};
    use crate::upstream::query::Operator;

    prop_compose! {
        fn query()(
            meeting in "[0-9]{1,32}",
            sub in proptest::option::of("[0-9]{1,32}"),
            operator in "[A-Za-z0-9._@+-]{1,64}",
            rooms in any::<bool>(),
            start in proptest::option::of(0..999_999_999_999_i64),
            length in 0..372 * 86_400_i64,
        ) -> ParticipantsQuery {
            let operator = if rooms {
                Operator::operator_id(&operator, 3)
            } else {
                Operator::user_id(&operator)
            };
            let mut query = ParticipantsQuery::new(&meeting, operator.expect("valid"))
                .expect("valid");
            if let Some(sub) = sub {
                query = query.with_sub_meeting(&sub).expect("valid");
            }
            if let Some(start) = start {
                query = query.with_window(Some(start), Some(start + length), 0).expect("valid");
            }
            query
        }
    }

    proptest! {
        #![proptest_config(Config::with_cases(10_000))]

        #[test]
        fn the_target_sent_is_the_target_signed_and_no_other_verifies(
            query in query(),
            pos in 0..i64::MAX,
            size in 1..=100u32,
            port in 1..=u16::MAX,
            secret_id in "[!-~]{1,40}",
            secret_key in ".{1,64}",
            nonce in 1..u64::MAX,
            changed_at in any::<prop::sample::Index>(),
        ) {
            let target = query.page_target(pos, size);
            let base = origin(&format!("http://127.0.0.1:{port}")).expect("origin");
            let url = page_url(&base, &target).expect("url");
            prop_assert_eq!(format!("{}?{}", url.path(), url.query().unwrap_or_default()), target.as_str());
            // What a server reads from the request line.
            let uri: http::Uri = url.as_str().parse().expect("a URI");
            let received = uri.path_and_query().expect("a target").as_str();
            prop_assert_eq!(received, target.as_str());

            let credentials = Credentials::new(
                "200000001",
                None,
                secret_id,
                SecretString::from(secret_key),
            ).expect("valid");
            let now = 1_800_000_000;
            let headers = signed_headers(&credentials, "GET", &target, b"", now as u64, nonce);
            let verified = verify(&headers, "GET", received, b"", &credentials, now, &ReplayGuard::new());
            prop_assert!(verified.is_ok(), "{:?}", verified.err().map(|e| e.code));

            let mut changed = target.into_bytes();
            let at = changed_at.index(changed.len());
            changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(changed).expect("ASCII");
            let refused = verify(&headers, "GET", &changed, b"", &credentials, now, &ReplayGuard::new());
            prop_assert_eq!(refused.map_err(|e| e.code), Err(200003));
        }
    }
}
