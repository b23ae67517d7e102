//! Views of a cached list besides the stored JSON: attendance per person, CSV for Excel, and
//! only the people still in. Each is made from the cached list (no upstream call), once per
//! list version and view, and kept in a small cache of its own, so that a repeated request
//! costs what a participants hit costs.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::AppState;
use super::attendance::{self, People, Report, Row};
use super::cached_response;
use super::participant_rows;
use super::records::{self, Field, Record, Text, both};
use super::spreadsheet::{Cell, Csv, from_json};
use super::stored_list::{self, Parts, StoredList};
use crate::cache::Served;
use crate::error::ApiError;
use crate::upstream::query::{InvalidParameter, ParticipantsParams, not_a_meeting_id};

/// The zone CSV times are written in unless `tz` names another: China's.
pub const DEFAULT_TZ: &str = "Asia/Shanghai";

/// How a caller wants the list, beside which list: the view's own parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewParams {
    /// `csv` for a CSV file (as `Accept: text/csv` asks), `json` for JSON whatever `Accept`
    /// says. Default: JSON, unless `Accept` prefers `text/csv`.
    #[param(value_type = Option<String>, pattern = "^(json|csv)$")]
    format: Option<String>,
    /// `true`: only the people (records) still in the meeting.
    #[param(value_type = Option<bool>)]
    still_in: Option<String>,
    /// The time zone of the times in a CSV answer: an IANA name such as `Asia/Shanghai` (the
    /// default) or `Europe/Berlin`. JSON answers give unix seconds and ignore it.
    #[param(value_type = Option<String>, min_length = 1, max_length = 64, example = "Asia/Shanghai")]
    tz: Option<String>,
}

/// Longest `tz` accepted (the longest IANA name is about 30 characters).
const MAX_TZ_LEN: usize = 64;

impl ViewParams {
    /// Reads the view's parameters from a raw query string; the list's own are read by
    /// [`crate::upstream::query::ParticipantsParams`]. A parameter given twice is refused.
    pub fn from_query_string(raw: &str) -> Result<Self, InvalidParameter> {
        let mut params = Self::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let (name, slot) = match &*key {
                "format" => ("format", &mut params.format),
                "still_in" => ("still_in", &mut params.still_in),
                "tz" => ("tz", &mut params.tz),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(InvalidParameter::new(name, "may be given only once"));
            }
        }
        Ok(params)
    }

    /// The view asked for, with `Accept` deciding the format when `format` does not.
    pub fn into_view(self, of: Of, request: &HeaderMap) -> Result<View, InvalidParameter> {
        let csv = match self.format.as_deref() {
            None => prefers_csv(request),
            Some("csv") => true,
            Some("json") => false,
            Some(_) => return Err(InvalidParameter::new("format", "must be `json` or `csv`")),
        };
        let still_in = match self.still_in.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(InvalidParameter::new(
                    "still_in",
                    "must be `true` or `false`",
                ));
            }
        };
        // The zone is looked up only when given or needed: a JSON answer has no use for it.
        let zone = match (self.tz, csv) {
            (None, false) => None,
            (name, _) => Some(zone(name.as_deref().unwrap_or(DEFAULT_TZ))?),
        };
        Ok(View {
            of,
            csv,
            still_in,
            // JSON answers carry no zone: one rendering serves every `tz`.
            tz: zone.filter(|_| csv),
        })
    }
}

/// A time zone by its IANA name, from the bundled database.
fn zone(name: &str) -> Result<Zone, InvalidParameter> {
    let known = name.len() <= MAX_TZ_LEN && !name.is_empty();
    let tz = known
        .then(|| TimeZone::get(name).ok())
        .flatten()
        .ok_or_else(|| {
            InvalidParameter::new(
                "tz",
                "must be an IANA time zone name, such as Asia/Shanghai or UTC",
            )
        })?;
    Ok(Zone {
        name: name.to_owned(),
        tz,
    })
}

/// Whether `Accept` prefers `text/csv` to JSON: an explicit `text/csv` item with a higher
/// q-value than any explicit `application/json` one. Anything else gets the default, JSON.
fn prefers_csv(request: &HeaderMap) -> bool {
    let (mut csv, mut json) = (0.0f32, 0.0f32);
    for (media, q) in cached_response::weighted_items(request, header::ACCEPT) {
        if media.eq_ignore_ascii_case("text/csv") {
            csv = csv.max(q);
        } else if media.eq_ignore_ascii_case("application/json") {
            json = json.max(q);
        }
    }
    csv > 0.0 && csv > json
}

/// Which document a view is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Of {
    Participants,
    Attendance,
}

impl Of {
    fn name(self) -> &'static str {
        match self {
            Self::Participants => "participants",
            Self::Attendance => "attendance",
        }
    }
}

/// One view of a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    of: Of,
    csv: bool,
    still_in: bool,
    /// The zone of a CSV answer's times.
    tz: Option<Zone>,
}

/// A time zone by the name the caller gave.
#[derive(Debug, Clone)]
struct Zone {
    name: String,
    tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Hash for Zone {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl View {
    /// Whether the stored list answers this view as it is.
    pub fn is_stored_list(&self) -> bool {
        self.of == Of::Participants && !self.csv && !self.still_in
    }
}

/// A view made: the body, its gzip form once asked for, and the headers that describe it.
#[derive(Debug)]
pub struct Rendered {
    /// The document in parts sent one after another: the halves written on two threads are
    /// kept as they were written, not copied into one.
    body: Arc<[Bytes]>,
    gzip: Option<Arc<[Bytes]>>,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
    content_type: HeaderValue,
    disposition: Option<HeaderValue>,
}

impl Rendered {
    pub fn body(&self, gzip: bool) -> Parts {
        Parts::new(match (&self.gzip, gzip) {
            (Some(gzip), true) => gzip.clone(),
            _ => self.body.clone(),
        })
    }

    pub fn etag(&self, gzip: bool) -> &HeaderValue {
        if gzip { &self.gzip_etag } else { &self.etag }
    }

    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// `Content-Disposition` of a CSV answer: a file to save.
    pub fn disposition(&self) -> Option<&HeaderValue> {
        self.disposition.as_ref()
    }

    fn weight(&self) -> u32 {
        let len = |parts: &[Bytes]| parts.iter().map(Bytes::len).sum::<usize>();
        let bytes = len(&self.body) + self.gzip.as_deref().map_or(0, len) + 512;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// This rendering with its gzip form: one gzip member, its parts compressed at once.
    fn with_gzip(&self) -> Self {
        Self {
            body: self.body.clone(),
            gzip: Some(stored_list::gzip_parts(&self.body).into()),
            etag: self.etag.clone(),
            gzip_etag: self.gzip_etag.clone(),
            content_type: self.content_type.clone(),
            disposition: self.disposition.clone(),
        }
    }
}

/// Which list version a rendering is of: its ETag and the time it was current (attendance
/// counts open sessions until then).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    list: HeaderValue,
    as_of: i64,
    view: View,
}

/// The renderings made, bounded by bytes; least recently used go first.
#[derive(Debug, Clone)]
pub struct Views {
    cache: moka::future::Cache<Key, Arc<Rendered>>,
}

impl Views {
    /// A cache of renderings holding at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .max_capacity(max_bytes)
                .weigher(|_, rendered: &Arc<Rendered>| rendered.weight())
                .build(),
        }
    }

    /// The view of `list` (current at `as_of`, unix seconds), made once however many ask at
    /// once, on a blocking thread; with its gzip form when `gzip`.
    pub async fn get(
        &self,
        list: Arc<crate::cache::Entry<StoredList>>,
        as_of: i64,
        view: View,
        gzip: bool,
    ) -> Arc<Rendered> {
        let stored = list.body().expect("views are asked only of lists");
        let key = Key {
            list: stored.etag(false).clone(),
            as_of,
            view: view.clone(),
        };
        let rendered = self
            .cache
            .get_with_by_ref(&key, async {
                let list = list.clone();
                let view = view.clone();
                let made = tokio::task::spawn_blocking(move || {
                    let stored = list.body().expect("views are asked only of lists");
                    render(stored, as_of, &view)
                })
                .await;
                Arc::new(made.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
            })
            .await;
        if !gzip || rendered.gzip.is_some() {
            return rendered;
        }
        let plain = rendered.clone();
        let compressed = tokio::task::spawn_blocking(move || plain.with_gzip()).await;
        let compressed =
            Arc::new(compressed.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
        self.cache.insert(key, compressed.clone()).await;
        compressed
    }
}

/// Answers a list route: the list's query and the view from the path, query string and
/// headers (every rule checked before the cache is asked), then the cached list as it is stored
/// or the view made of it.
pub async fn serve(
    state: &AppState,
    meeting: Result<Path<String>, PathRejection>,
    raw: Option<&str>,
    request: &HeaderMap,
    of: Of,
) -> Result<Response, ApiError> {
    let Ok(Path(meeting_id)) = meeting else {
        return Err(not_a_meeting_id().into());
    };
    let raw = raw.unwrap_or("");
    let now = crate::clock::unix_now().as_secs() as i64;
    let query = ParticipantsParams::from_query_string(raw)?.into_query(
        &meeting_id,
        state.default_operator(),
        now,
    )?;
    let view = ViewParams::from_query_string(raw)?.into_view(of, request)?;
    let served = state
        .cache()
        .get(&query, cached_response::wish(request))
        .await?;
    if view.is_stored_list() {
        return Ok(cached_response::respond(served, request));
    }
    let (entry, how) = match served {
        Served::Pending {
            records_fetched,
            total_count,
        } => return Ok(cached_response::pending(records_fetched, total_count)),
        Served::Entry { entry, how } => (entry, how),
    };
    if let Err(not_found) = entry.body() {
        return Ok(cached_response::answer(
            &entry,
            how,
            Err(not_found),
            request,
        ));
    }
    let gzip = cached_response::accepts_gzip(request);
    let rendered = state
        .views()
        .get(entry.clone(), entry.as_of(), view, gzip)
        .await;
    Ok(cached_response::answer(
        &entry,
        how,
        Ok(&*rendered),
        request,
    ))
}

/// Makes one view of a stored list.
pub fn render(list: &StoredList, as_of: i64, view: &View) -> Rendered {
    metrics::counter!(
        crate::metrics::VIEW_RENDERS,
        "view" => view.of.name(),
        "format" => if view.csv { "csv" } else { "json" },
    )
    .increment(1);
    let head = records::head(list);
    let parts: Vec<Vec<u8>> = match (view.of, &view.tz) {
        // Only the records still in: the whole list as JSON is the stored list itself.
        (Of::Participants, None) => vec![still_in_json(list)],
        (Of::Participants, Some(zone)) => participants_csv(list, view.still_in, &zone.tz).into(),
        (Of::Attendance, zone) => {
            let visits = attendance::visits(list);
            let mut report = attendance::compute(&head, &visits, as_of);
            if view.still_in {
                report.people.rows.retain(|person| person.still_in);
            }
            match zone {
                None => attendance_json(&report).into(),
                Some(zone) => attendance_csv(&report.people, &zone.tz).into(),
            }
        }
    };
    let mut hash = Sha256::new();
    hash.update(list.etag(false).as_bytes());
    hash.update(as_of.to_le_bytes());
    hash.update(format!("{view:?}").as_bytes());
    let hash = hex::encode(&hash.finalize()[..16]);
    let content_type = if view.csv {
        "text/csv; charset=utf-8; header=present"
    } else {
        "application/json"
    };
    let disposition = view.csv.then(|| {
        let meeting = head.meeting_id.as_deref().unwrap_or("unknown");
        // The id is digits (the upstream's), so the name needs no quoting beyond this.
        let meeting: String = meeting.chars().filter(char::is_ascii_digit).collect();
        HeaderValue::from_str(&format!(
            "attachment; filename=\"meeting-{meeting}-{}.csv\"",
            view.of.name()
        ))
        .expect("digits and ASCII make a valid header")
    });
    Rendered {
        body: parts
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(Bytes::from)
            .collect(),
        gzip: None,
        etag: HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header"),
        gzip_etag: HeaderValue::from_str(&format!("\"{hash}-gz\"")).expect("hex is a valid header"),
        content_type: HeaderValue::from_static(content_type),
        disposition,
    }
}

/// The participants document with only the records still in: the stored head, the records
/// exactly as stored, sifted by their briefs.
fn still_in_json(list: &StoredList) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.head().len() + 1024);
    out.extend_from_slice(list.head());
    let open = list
        .each_record_briefly()
        .filter(|(_, brief)| brief.left_time().is_none());
    for (i, (json, _)) in open.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.extend_from_slice(b"]}");
    out
}

const PARTICIPANT_COLUMNS: [&str; 24] = [
    "userid",
    "ms_open_id",
    "uuid",
    "open_id",
    "user_name",
    "user_name_base64",
    "is_enterprise_user",
    "phone",
    "join_time",
    "left_time",
    "instanceid",
    "user_role",
    "webinar_member_role",
    "IP",
    "location",
    "link_type",
    "join_type",
    "net",
    "app_version",
    "audio_state",
    "video_state",
    "screen_shared_state",
    "customer_data",
    "provisional",
];

/// A record's text as a cell (see [`from_json`]).
fn record_text<'a>(text: &'a Option<Text<'_>>) -> Cell<'a> {
    from_json(text.as_ref().map(|text| &text.0))
}

/// One row per record, the participants document's fields as columns, each written straight
/// from the record's JSON as it is read (`still_in`: only the records whose brief has no
/// `left_time`).
fn participants_csv(list: &StoredList, still_in: bool, tz: &TimeZone) -> [Vec<u8>; 2] {
    let records: Vec<&[u8]> = list
        .each_record_briefly()
        .filter(|(_, brief)| !still_in || brief.left_time().is_none())
        .map(|(json, _)| json)
        .collect();
    let (front, back) = records.split_at(records.len() / 2);
    csv_document(&PARTICIPANT_COLUMNS, [front, back], tz, |csv, json| {
        if csv
            .row_with(|out, clock| participant_rows::write(json, out, clock))
            .is_none()
        {
            participant_row(csv, &Record::read(json));
        }
    })
}

/// A record's row from the record read: the same bytes as [`participant_rows::write`], for a
/// record in another shape than the API's.
fn participant_row(csv: &mut Csv<'_>, r: &Record<'_>) {
    csv.row([
        record_text(&r.userid),
        record_text(&r.ms_open_id),
        record_text(&r.uuid),
        record_text(&r.open_id),
        record_text(&r.user_name),
        record_text(&r.user_name_base64),
        r.is_enterprise_user.into(),
        record_text(&r.phone),
        Cell::Time(Some(r.join_time)),
        Cell::Time(r.left_time),
        r.instanceid.into(),
        r.user_role.into(),
        r.webinar_member_role.into(),
        record_text(&r.ip),
        record_text(&r.location),
        record_text(&r.link_type),
        r.join_type.into(),
        record_text(&r.net),
        record_text(&r.app_version),
        r.audio_state.into(),
        r.video_state.into(),
        r.screen_shared_state.into(),
        record_text(&r.customer_data),
        Some(r.provisional).into(),
    ]);
}

const ATTENDANCE_COLUMNS: [&str; 13] = [
    "person",
    "user_name",
    "user_name_base64",
    "userid",
    "ms_open_id",
    "uuid",
    "user_role",
    "first_join_time",
    "last_left_time",
    "still_in",
    "attended_seconds",
    "session_count",
    "device_count",
];

/// A person's texts in the order both forms write them, from their latest record.
const PERSON_TEXTS: [(&str, Field); 5] = [
    ("user_name", Field::UserName),
    ("user_name_base64", Field::UserNameBase64),
    ("userid", Field::Userid),
    ("ms_open_id", Field::MsOpenId),
    ("uuid", Field::Uuid),
];

/// One row per person (their sessions are in the JSON form only).
fn attendance_csv(people: &People<'_, '_>, tz: &TimeZone) -> [Vec<u8>; 2] {
    let (front, back) = people.rows.split_at(people.rows.len() / 2);
    csv_document(&ATTENDANCE_COLUMNS, [front, back], tz, |csv, p| {
        let [name, base64, userid, ms_open_id, uuid] =
            PERSON_TEXTS.map(|(_, f)| p.latest.text_bytes(f));
        csv.row([
            from_json(Some(&attendance::person_text(&p.latest))),
            from_json(name.as_ref()),
            from_json(base64.as_ref()),
            from_json(userid.as_ref()),
            from_json(ms_open_id.as_ref()),
            from_json(uuid.as_ref()),
            p.latest.user_role().into(),
            Cell::Time(Some(p.first_join_time)),
            Cell::Time(p.last_left_time),
            Some(p.still_in).into(),
            Some(p.attended_seconds).into(),
            Some(p.session_count() as i64).into(),
            Some(i64::from(p.device_count)).into(),
        ]);
    })
}

/// The attendance document, in two parts. The people come last in it, after the summary: they
/// are written in two halves, on two threads when there are many.
fn attendance_json(report: &Report<'_, '_>) -> [Vec<u8>; 2] {
    let people = &report.people;
    let (front, back) = people.rows.split_at(people.rows.len() / 2);
    // About 430 bytes a person in the demo's lists.
    let mut out = Vec::with_capacity(front.len() * 450 + 1024);
    serde_json::to_writer(&mut out, &report.document).expect("attendance serializes");
    debug_assert!(out.ends_with(b"[]}"), "the attendees end the document");
    out.truncate(out.len() - b"]}".len());
    let write = |out: &mut Vec<u8>, rows: &[Row<'_>]| {
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_attendee(out, people, row);
        }
    };
    let ((), back_json) = both(
        records::parallel(people.rows.len()),
        || write(&mut out, front),
        || {
            let mut json = Vec::with_capacity(back.len() * 450 + 8);
            if !front.is_empty() && !back.is_empty() {
                json.push(b',');
            }
            write(&mut json, back);
            json.extend_from_slice(b"]}");
            json
        },
    );
    [out, back_json]
}

/// One person's row as serde_json writes an [`Attendee`], with the texts copied from the stored
/// JSON of the person's latest record (already escaped, as serde_json escapes them) instead of
/// escaped again.
fn write_attendee<'a>(out: &mut Vec<u8>, people: &People<'_, 'a>, person: &Row<'a>) {
    let latest = &person.latest;
    fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    fn number(out: &mut Vec<u8>, value: Option<i64>) {
        match value {
            Some(n) => int(out, n),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"{\"person\":");
    out.extend_from_slice(attendance::person_json(latest));
    for (name, field) in PERSON_TEXTS {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(latest.json(field));
    }
    out.extend_from_slice(b",\"user_role\":");
    number(out, latest.user_role());
    out.extend_from_slice(b",\"first_join_time\":");
    int(out, person.first_join_time);
    out.extend_from_slice(b",\"last_left_time\":");
    number(out, person.last_left_time);
    out.extend_from_slice(if person.still_in {
        b",\"still_in\":true"
    } else {
        b",\"still_in\":false"
    });
    out.extend_from_slice(b",\"attended_seconds\":");
    int(out, person.attended_seconds);
    out.extend_from_slice(b",\"session_count\":");
    int(out, person.session_count());
    out.extend_from_slice(b",\"device_count\":");
    int(out, person.device_count);
    out.extend_from_slice(b",\"sessions\":[");
    for (i, session) in people.sessions(person).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"join_time\":");
        int(out, session.join_time);
        out.extend_from_slice(b",\"left_time\":");
        number(out, session.left_time);
        out.extend_from_slice(b",\"instanceid\":");
        number(out, session.instanceid);
        if session.provisional {
            out.extend_from_slice(b",\"provisional\":true");
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// A CSV document in two parts: the byte-order mark, the `header` row, then the rows `row`
/// writes for each item of both halves (each half on a thread of its own when there are many).
fn csv_document<T: Sync>(
    header: &[&str],
    halves: [&[T]; 2],
    tz: &TimeZone,
    row: impl Fn(&mut Csv<'_>, &T) + Sync,
) -> [Vec<u8>; 2] {
    let write = |items: &[T], first: bool| {
        let mut csv = Csv::new(items.len() * 256, tz, first);
        if first {
            csv.row(header.iter().map(|c| Cell::Text(c.as_bytes())));
        }
        for item in items {
            row(&mut csv, item);
        }
        csv.finish()
    };
    let parallel = records::parallel(halves[0].len() + halves[1].len());
    let (front, back) = both(
        parallel,
        || write(halves[0], true),
        || write(halves[1], false),
    );
    [front, back]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::ACCEPT, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn accept_picks_csv_only_when_preferred() {
        assert!(prefers_csv(&accept("text/csv")));
        assert!(prefers_csv(&accept("application/json;q=0.5, text/csv")));
        assert!(!prefers_csv(&accept("text/csv;q=0.5, application/json")));
        assert!(!prefers_csv(&accept("text/csv, application/json")));
        assert!(!prefers_csv(&accept("text/csv;q=0")));
        assert!(!prefers_csv(&accept("*/*")));
        assert!(!prefers_csv(&HeaderMap::new()));
    }

    #[test]
    fn view_parameters_are_checked_and_name_what_was_wrong() {
        let view = |raw: &str| {
            ViewParams::from_query_string(raw)
                .and_then(|p| p.into_view(Of::Attendance, &HeaderMap::new()))
                .map_err(|e| e.parameter)
        };
        assert!(view("format=csv&tz=Europe/Berlin&still_in=true").is_ok());
        assert_eq!(view("format=xml").err(), Some("format"));
        assert_eq!(view("still_in=yes").err(), Some("still_in"));
        assert_eq!(view("tz=Mars/Olympus").err(), Some("tz"));
        assert_eq!(view("tz=").err(), Some("tz"));
        assert_eq!(view("tz=UTC&tz=UTC").err(), Some("tz"));
        // JSON ignores the zone: one rendering for every `tz`.
        assert_eq!(view("tz=UTC"), view("tz=Europe/Berlin"));
        assert_ne!(
            view("format=csv&tz=UTC"),
            view("format=csv&tz=Europe/Berlin")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(5_000))]

        /// Any record's row written straight from its JSON is the row of the record read,
        /// cell by cell: the same quoting, neutralising, numbers, flags and times.
        #[test]
        fn a_row_written_from_json_is_the_row_of_the_record_read(
            json in records::tests::any_record_json(),
            zone in proptest::sample::select(&["Asia/Shanghai", "Europe/Berlin", "America/St_Johns"][..]),
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let mut direct = Csv::new(0, &tz, false);
            let written = direct.row_with(|out, clock| participant_rows::write(json.as_bytes(), out, clock));
            proptest::prop_assert!(written.is_some(), "not written: {}", json);
            let mut read = Csv::new(0, &tz, false);
            participant_row(&mut read, &Record::read(json.as_bytes()));
            proptest::prop_assert_eq!(
                String::from_utf8(direct.finish()).unwrap(),
                String::from_utf8(read.finish()).unwrap()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(500))]

        /// Each attendance row written by hand, texts copied from the stored JSON, is what
        /// serde_json writes of it, whatever the texts hold (quotes, backslashes, control
        /// characters, any Unicode, empty or absent ids) and whatever the sessions.
        #[test]
        fn attendance_rows_are_what_serde_writes(
            records in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::option::of("(a|b|\\\\|\"|.{0,4})"), 4),
                    0..1_000i64,
                    proptest::option::of(0..1_000i64),
                    proptest::option::of(0..4i64),
                    proptest::option::of(proptest::prelude::any::<i64>()),
                ),
                1..24,
            ),
        ) {
            use base64::Engine as _;
            use proptest::prelude::*;
            use crate::upstream::{Completeness, ListHead, Participant};
            let records: Vec<Participant> = records
                .into_iter()
                .map(|(texts, join, left, device, role)| Participant {
                    userid: texts[0].as_deref().map(Into::into),
                    ms_open_id: texts[1].as_deref().map(Into::into),
                    uuid: texts[2].as_deref().map(Into::into),
                    user_name: texts[3]
                        .as_ref()
                        .map(|name| base64::engine::general_purpose::STANDARD.encode(name).into()),
                    join_time: join,
                    left_time: left.map(|l| join + l),
                    instanceid: device,
                    user_role: role,
                    ..Participant::default()
                })
                .collect();
            let head = ListHead {
                meeting_id: Some("1".into()),
                meeting_code: None,
                subject: None,
                schedule_start_time: None,
                schedule_end_time: None,
                total_count: Some(records.len() as i64),
                completeness: Completeness::Complete,
                pages: 1,
                records: records.len(),
                still_in: 0,
                windows: 1,
            };
            let mut renderer = super::super::participants::render();
            renderer.page(records);
            let list = renderer.finish(&head);
            let head = records::head(&list);
            let visits = attendance::visits(&list);
            let report = attendance::compute(&head, &visits, 2_000);
            let people = &report.people;
            for row in &people.rows {
                let mut written = Vec::new();
                write_attendee(&mut written, people, row);
                let expected = serde_json::to_vec(&people.attendee(row)).unwrap();
                prop_assert_eq!(String::from_utf8(written).unwrap(), String::from_utf8(expected).unwrap());
            }
        }
    }
}
