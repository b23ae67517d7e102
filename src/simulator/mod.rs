//! The simulated upstream: Tencent's participants endpoint as far as the gateway can observe it.
//!
//! It verifies signatures exactly as Tencent does ([`auth`]), serves meetings from a dataset with
//! opaque cursors and the 50,000-record cap ([`dataset`], [`demo`]), enforces per-minute and
//! per-day quotas, answers errors in Tencent's body format, and injects latency and faults on
//! command. Control endpoints under `/_simulator/` expose call counters and fault injection for
//! tests and benchmarks.

pub mod auth;
pub mod dataset;
pub mod demo;
pub mod events;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::clock::WallClock;
use crate::upstream::Credentials;
use auth::ReplayGuard;
use dataset::{Dataset, ListingError, Meeting, Record, View};

/// Tencent's limits, as its documentation states them. Kept here, not taken from the client, so
/// that testing the client against the simulator would catch a wrong limit in the client.
pub mod limits {
    /// Records served of one list at most, over all pages.
    pub const RECORD_CAP: usize = 50_000;
    /// Widest `start_time`..`end_time` window, in seconds: 31 days.
    pub const MAX_WINDOW_SECS: i64 = 31 * 24 * 3600;
    /// Largest page `size`.
    pub const MAX_PAGE_SIZE: u32 = 100;
}
use limits::{MAX_PAGE_SIZE, MAX_WINDOW_SECS, RECORD_CAP};

/// What the simulator is started with.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The only credentials it accepts.
    pub credentials: Credentials,
    /// Calls accepted per calendar minute (Tencent: 300 for a self-built app).
    pub calls_per_minute: u32,
    /// Calls accepted per calendar day (Tencent: 200,000).
    pub calls_per_day: u32,
    pub dataset: Arc<Dataset>,
}

/// The demo dataset, generated once per process relative to the first call's time.
pub fn demo_dataset() -> Arc<Dataset> {
    static DEMO: OnceLock<Arc<Dataset>> = OnceLock::new();
    DEMO.get_or_init(|| {
        let now = crate::clock::unix_now().as_secs() as i64;
        Arc::new(Dataset::from_file(demo::dataset(now)).expect("the demo dataset is valid"))
    })
    .clone()
}

/// A Tencent error: code, message, and the HTTP status Tencent answers it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TencentError {
    pub code: i64,
    pub message: String,
}

impl TencentError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The status Tencent sends with each code (the API page's table, 400 otherwise).
    pub fn status(&self) -> StatusCode {
        match self.code {
            41 | 190310 | 190001 | 10000 | 960000 | 190313 => StatusCode::INTERNAL_SERVER_ERROR,
            9042 => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for TencentError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error_info": {"error_code": self.code, "new_error_code": self.code, "message": self.message}
        });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// A fault to inject, from `POST /_simulator/faults`. Each matching call applies it once;
/// `times` bounds how often (unbounded when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Only calls for this meeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_id: Option<String>,
    /// How many calls it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Matching calls to let through first (a fault in the middle of a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_calls: Option<u32>,
    /// Delay before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Answer this Tencent error code instead of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Answer this bare HTTP status with a non-Tencent body (a proxy's error page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Answer the cursor that was asked for as the next one (a paging loop).
    #[serde(default)]
    pub repeat_cursor: bool,
    /// Always claim more remains, with a new cursor each time.
    #[serde(default)]
    pub endless: bool,
    /// Answer a body that is not JSON.
    #[serde(default)]
    pub malformed: bool,
}

/// Call counters, from `GET /_simulator/counters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every call to the participants endpoint.
    pub calls: u64,
    /// Calls per meeting id.
    pub by_meeting: BTreeMap<String, u64>,
    /// Answered calls per outcome: `ok`, the Tencent error code, or `http_<status>`. Calls the
    /// client gave up on before the answer have none.
    pub by_outcome: BTreeMap<String, u64>,
    /// The most calls accepted in one calendar minute.
    pub busiest_minute: u64,
    /// The most calls accepted in any 60 seconds, wherever the window starts: what a pacer
    /// promises (Tencent counts by calendar minute, which this bounds).
    #[serde(default)]
    pub busiest_60s: u64,
}

#[derive(Debug, Default)]
struct Quota {
    minute: u64,
    minute_calls: u64,
    day: u64,
    day_calls: u64,
    /// When each call of the last 60 seconds was accepted.
    last_60s: std::collections::VecDeque<Duration>,
}

/// A cheap handle to one simulator's state.
#[derive(Debug, Clone)]
pub struct Simulator {
    state: Arc<SimState>,
}

#[derive(Debug)]
struct SimState {
    config: SimulatorConfig,
    /// For the quota's minutes and days only: tests pause and advance it.
    clock: WallClock,
    replay: ReplayGuard,
    quota: Mutex<Quota>,
    counters: Mutex<Counters>,
    faults: Mutex<Vec<Fault>>,
    /// The live meeting's changes, when events run (see [`Simulator::start_events`]).
    live: Mutex<events::Changes>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Self {
        Self {
            state: Arc::new(SimState {
                config,
                clock: WallClock::new(),
                replay: ReplayGuard::new(),
                quota: Mutex::default(),
                counters: Mutex::default(),
                faults: Mutex::default(),
                live: Mutex::default(),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/meetings/{meeting_id}/participants", get(participants))
            .route(
                "/healthz",
                get(|| async { axum::Json(serde_json::json!({"status": "alive"})) }),
            )
            .route("/metrics", get(prometheus_counters))
            .route(
                "/_simulator/counters",
                get(get_counters).delete(reset_counters),
            )
            .route(
                "/_simulator/faults",
                get(list_faults).post(add_fault).delete(clear_faults),
            )
            .route(
                "/_simulator/meetings/{meeting_id}/records",
                get(meeting_records),
            )
            .fallback(|| async { TencentError::new(190004, "no such API") })
            .with_state(self.clone())
    }

    pub fn counters(&self) -> Counters {
        lock(&self.state.counters).clone()
    }

    fn reset_counters(&self) {
        *lock(&self.state.counters) = Counters::default();
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// The live meeting's records with the changes events reported, once any happened.
    fn live_records(&self, meeting_id: &str) -> Option<Vec<Record>> {
        if meeting_id != demo::LIVE_MEETING {
            return None;
        }
        let changes = lock(&self.state.live);
        if changes.is_empty() {
            return None;
        }
        let records = self
            .dataset()
            .meetings
            .get(meeting_id)?
            .records(None)
            .ok()?;
        Some(changes.apply(records))
    }

    pub fn dataset(&self) -> &Dataset {
        &self.state.config.dataset
    }

    /// Takes one use of the first fault matching this meeting.
    fn take_fault(&self, meeting_id: &str) -> Option<Fault> {
        let mut faults = lock(&self.state.faults);
        let index = faults
            .iter()
            .position(|f| f.meeting_id.as_deref().is_none_or(|m| m == meeting_id))?;
        if let Some(after) = &mut faults[index].after_calls
            && *after > 0
        {
            *after -= 1;
            return None;
        }
        let fault = faults[index].clone();
        if let Some(times) = &mut faults[index].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                faults.remove(index);
            }
        }
        Some(fault)
    }

    /// Counts the call against both quotas; refuses it when either is spent.
    fn spend_quota(&self) -> Result<(), TencentError> {
        let exact = self.state.clock.now();
        let now = exact.as_secs();
        let (minute, day) = (now / 60, crate::clock::china_day(now));
        let mut quota = lock(&self.state.quota);
        if quota.minute != minute {
            quota.minute = minute;
            quota.minute_calls = 0;
        }
        if quota.day != day {
            quota.day = day;
            quota.day_calls = 0;
        }
        if quota.day_calls >= u64::from(self.state.config.calls_per_day) {
            return Err(TencentError::new(190311, "daily API quota exceeded"));
        }
        if quota.minute_calls >= u64::from(self.state.config.calls_per_minute) {
            return Err(TencentError::new(
                190310,
                "API calls per minute over the limit",
            ));
        }
        quota.minute_calls += 1;
        quota.day_calls += 1;
        let busiest = quota.minute_calls;
        while quota
            .last_60s
            .front()
            .is_some_and(|t| *t + Duration::from_secs(60) <= exact)
        {
            quota.last_60s.pop_front();
        }
        quota.last_60s.push_back(exact);
        let busiest_60s = quota.last_60s.len() as u64;
        drop(quota);
        let mut counters = lock(&self.state.counters);
        counters.busiest_minute = counters.busiest_minute.max(busiest);
        counters.busiest_60s = counters.busiest_60s.max(busiest_60s);
        Ok(())
    }

    /// Counts a call as it arrives, so that calls abandoned by the client count too.
    fn count_call(&self, meeting_id: &str) {
        let mut counters = lock(&self.state.counters);
        counters.calls += 1;
        *counters
            .by_meeting
            .entry(meeting_id.to_owned())
            .or_default() += 1;
    }

    fn count_outcome(&self, outcome: String) {
        *lock(&self.state.counters)
            .by_outcome
            .entry(outcome)
            .or_default() += 1;
    }
}

async fn participants(
    State(sim): State<Simulator>,
    Path(meeting_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.count_call(&meeting_id);
    let fault = sim.take_fault(&meeting_id);
    if let Some(ms) = fault.as_ref().and_then(|f| f.latency_ms) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let result = answer(&sim, &meeting_id, target, &headers, &body, fault.as_ref());
    let outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(Failure::Tencent(e)) => e.code.to_string(),
        Err(Failure::Status(status)) => format!("http_{status}"),
    };
    sim.count_outcome(outcome);
    match result {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(Failure::Tencent(e)) => e.into_response(),
        Err(Failure::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (
                status,
                [(header::CONTENT_TYPE, "text/html")],
                "<html>upstream trouble</html>",
            )
                .into_response()
        }
    }
}

enum Failure {
    Tencent(TencentError),
    Status(u16),
}

impl From<TencentError> for Failure {
    fn from(e: TencentError) -> Self {
        Self::Tencent(e)
    }
}

fn answer(
    sim: &Simulator,
    meeting_id: &str,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    fault: Option<&Fault>,
) -> Result<Vec<u8>, Failure> {
    let state = &sim.state;
    // The system clock, as the client's signatures and the gateway's checks use it. Only the
    // quota minutes follow tokio's clock (which tests pause and advance, and which stops while
    // the machine sleeps).
    let now = crate::clock::unix_now().as_secs() as i64;
    auth::verify(
        headers,
        "GET",
        target,
        body,
        &state.config.credentials,
        now,
        &state.replay,
    )?;
    sim.spend_quota()?;
    if let Some(fault) = fault {
        if let Some(code) = fault.error_code {
            return Err(TencentError::new(code, "injected fault").into());
        }
        if let Some(status) = fault.http_status {
            return Err(Failure::Status(status));
        }
        if fault.malformed {
            return Ok(b"{\"participants\": [{\"userid\": ".to_vec());
        }
    }
    let params = parse_query(target)?;
    let meeting = state
        .config
        .dataset
        .meetings
        .get(meeting_id)
        .ok_or_else(|| TencentError::new(9003, "meeting does not exist"))?;
    authorize(&state.config.dataset, meeting, &params)?;
    let live = sim.live_records(meeting_id);
    Ok(page(meeting, live.as_deref(), &params, now, fault)?)
}

/// The query parameters the endpoint knows; duplicates are refused.
#[derive(Debug, Default)]
struct Params {
    values: HashMap<String, String>,
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn int(&self, name: &str) -> Result<Option<i64>, TencentError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| TencentError::new(190004, format!("{name} must be an integer")))
            })
            .transpose()
    }
}

fn parse_query(target: &str) -> Result<Params, TencentError> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut values = HashMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if values.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(TencentError::new(
                190004,
                format!("parameter {key} given twice"),
            ));
        }
    }
    Ok(Params { values })
}

fn authorize(dataset: &Dataset, meeting: &Meeting, params: &Params) -> Result<(), TencentError> {
    let operator = match (params.get("userid"), params.get("operator_id")) {
        (_, Some(operator_id)) => {
            if params.get("operator_id_type") != Some("3") {
                return Err(TencentError::new(
                    190004,
                    "operator_id requires operator_id_type=3",
                ));
            }
            operator_id
        }
        (Some(userid), None) => {
            if !dataset.users.contains(userid) {
                return Err(TencentError::new(
                    190001,
                    "an unregistered user is involved",
                ));
            }
            userid
        }
        (None, None) => return Err(TencentError::new(190004, "userid is required")),
    };
    if !meeting.readers.contains(operator) {
        return Err(TencentError::new(9042, "no permission for this meeting"));
    }
    Ok(())
}

fn page(
    meeting: &Meeting,
    live: Option<&[Record]>,
    params: &Params,
    now: i64,
    fault: Option<&Fault>,
) -> Result<Vec<u8>, TencentError> {
    let sub = params.get("sub_meeting_id").filter(|s| !s.is_empty());
    let size = params.int("size")?.unwrap_or(20);
    if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&size) {
        return Err(TencentError::new(
            190004,
            format!("size must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let pos = params.int("pos")?.unwrap_or(0);
    let stored = meeting.records(sub).map_err(|e| match e {
        ListingError::SubMeetingRequired => {
            TencentError::new(190004, "sub_meeting_id is required for a recurring meeting")
        }
        ListingError::UnknownSubMeeting => {
            TencentError::new(190004, "sub_meeting_id does not belong to this meeting")
        }
    })?;
    let records = live.unwrap_or(stored);
    let window = time_window(params, now, meeting.is_recurring())?;
    let offset = meeting
        .offset(sub, pos)
        .ok_or_else(|| TencentError::new(190004, "invalid pos"))?;

    let mut out = Vec::with_capacity(512 * size as usize);
    out.push(b'{');
    let mut field = |name: &str, value: &dyn erased::Json| {
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        value.write(&mut out);
    };
    field("meeting_id", &meeting.meeting_id.as_str());
    field("meeting_code", &meeting.meeting_code.as_str());
    field("subject", &meeting.subject.as_str());
    field(
        "schedule_start_time",
        &meeting.schedule_start_time.to_string().as_str(),
    );
    field(
        "schedule_end_time",
        &meeting.schedule_end_time.to_string().as_str(),
    );
    if !meeting.started {
        field("total_count", &0i64);
        field("has_remaining", &false);
        out.push(b'}');
        return Ok(out);
    }
    let view = View::new(records, window);
    let total = view.total();
    let served = total.min(RECORD_CAP);
    let chunk = view.page(offset, size as usize);
    let end = offset + chunk.len();
    let endless = fault.is_some_and(|f| f.endless);
    let has_remaining = end < served || endless;
    field("total_count", &(total as i64));
    field("has_remaining", &has_remaining);
    if has_remaining {
        let next = if fault.is_some_and(|f| f.repeat_cursor) && pos != 0 {
            pos
        } else if endless {
            meeting.cursor(sub, offset + 1 + rand::random_range(0..1_000_000usize))
        } else {
            meeting.cursor(sub, end)
        };
        field("next_pos", &next);
    }
    out.extend_from_slice(b",\"participants\":");
    write_records(&mut out, chunk.into_iter());
    out.push(b'}');
    Ok(out)
}

/// Writes records as a JSON array, each exactly as stored.
fn write_records<'a>(out: &mut Vec<u8>, records: impl Iterator<Item = &'a dataset::Record>) {
    out.push(b'[');
    for (i, record) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(record.json.get().as_bytes());
    }
    out.push(b']');
}

/// The participation-time filter. Tencent's rules: at most 31 days; a missing end is now, a
/// missing start is 31 days before now; ignored for recurring meetings.
fn time_window(
    params: &Params,
    now: i64,
    recurring: bool,
) -> Result<Option<(i64, i64)>, TencentError> {
    let (start, end) = (params.int("start_time")?, params.int("end_time")?);
    if recurring || (start.is_none() && end.is_none()) {
        return Ok(None);
    }
    let refuse = || {
        TencentError::new(
            190004,
            "start_time and end_time must be ordered, not negative, and at most 31 days apart",
        )
    };
    let end = end.unwrap_or(now);
    let start = match start {
        Some(start) => start,
        None => now - MAX_WINDOW_SECS,
    };
    let width = end.checked_sub(start).ok_or_else(refuse)?;
    if start < 0 || !(0..=MAX_WINDOW_SECS).contains(&width) {
        return Err(refuse());
    }
    Ok(Some((start, end)))
}

/// Small JSON writers for the page header (the records are spliced in as they are stored).
mod erased {
    pub trait Json {
        fn write(&self, out: &mut Vec<u8>);
    }
    impl Json for &str {
        fn write(&self, out: &mut Vec<u8>) {
            serde_json::to_writer(out, self).expect("strings serialize");
        }
    }
    impl Json for i64 {
        fn write(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
    impl Json for bool {
        fn write(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(if *self { b"true" } else { b"false" });
        }
    }
}

async fn get_counters(State(sim): State<Simulator>) -> axum::Json<Counters> {
    axum::Json(sim.counters())
}

async fn reset_counters(State(sim): State<Simulator>) -> StatusCode {
    sim.reset_counters();
    StatusCode::NO_CONTENT
}

/// The counters in Prometheus's text format, so that a monitoring stack can set the calls the
/// upstream saw beside the gateway's own count of them.
async fn prometheus_counters(State(sim): State<Simulator>) -> impl IntoResponse {
    use std::fmt::Write as _;
    let counters = sim.counters();
    let mut text = String::from(
        "# HELP simulator_calls_total Calls to the participants endpoint, by outcome (ok, the Tencent error code, or http_<status>).\n\
         # TYPE simulator_calls_total counter\n",
    );
    for (outcome, calls) in &counters.by_outcome {
        let _ = writeln!(
            text,
            "simulator_calls_total{{outcome=\"{outcome}\"}} {calls}"
        );
    }
    let _ = write!(
        text,
        "# HELP simulator_busiest_60s_calls The most calls accepted in any 60 seconds.\n\
         # TYPE simulator_busiest_60s_calls gauge\n\
         simulator_busiest_60s_calls {}\n",
        counters.busiest_60s
    );
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn list_faults(State(sim): State<Simulator>) -> axum::Json<Vec<Fault>> {
    axum::Json(lock(&sim.state.faults).clone())
}

async fn add_fault(
    State(sim): State<Simulator>,
    axum::Json(fault): axum::Json<Fault>,
) -> StatusCode {
    sim.inject(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    sub_meeting_id: Option<String>,
}

/// Every record of a meeting as stored, uncapped: what a complete fetch should return.
async fn meeting_records(
    State(sim): State<Simulator>,
    Path(meeting_id): Path<String>,
    Query(query): Query<RecordsQuery>,
) -> Response {
    let Some(meeting) = sim.dataset().meetings.get(&meeting_id) else {
        return TencentError::new(9003, "meeting does not exist").into_response();
    };
    let Ok(stored) = meeting.records(query.sub_meeting_id.as_deref()) else {
        return TencentError::new(190004, "sub_meeting_id missing or unknown").into_response();
    };
    let live = sim.live_records(&meeting_id);
    let records = live.as_deref().unwrap_or(stored);
    let mut out = Vec::with_capacity(records.len() * 512);
    write_records(&mut out, records.iter());
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}
