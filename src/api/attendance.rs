//! Attendance per person, computed from a cached participant list: who attended and for how
//! long, who is still in, and the meeting's summary: [`compute`], a pure function of the records
//! and the time the list was current. The route answers through [`views::serve`].

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Authorized;
use super::participants::MeetingPath;

use super::records::{Field, Head, Visit, both, parallel};
use super::stored_list::StoredList;
use super::views::{self, Of, ViewParams};
use crate::error::ApiError;
use crate::upstream::query::ParticipantsParams;

/// Attendance per person
///
/// Who attended the meeting and for how long, from its participant list: one row per person
/// (their `userid`, else `ms_open_id`, else `uuid`) with each session, the devices, and the time
/// attended (two devices at once counted once), and the meeting's summary: distinct attendees,
/// who is still in, the peak and the median. Made from the same cached list as
/// `listParticipants`, with the same parameters, caching, validators and errors: no extra
/// upstream call. As a CSV file with `Accept: text/csv` or `format=csv` (one row per person).
#[utoipa::path(
    get,
    path = "/meetings/{meeting_id}/attendance",
    tag = "participants",
    operation_id = "getAttendance",
    params(
        MeetingPath,
        ParticipantsParams,
        ViewParams,
        ("Accept" = Option<String>, Header, description = "`text/csv` (preferred over `application/json`) for the CSV form; `format` overrides it."),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` from an earlier answer: `304` when unchanged."),
        ("Cache-Control" = Option<String>, Header, description = "`no-cache` (or `max-age=0`) fetches the list anew from the upstream."),
    ),
    responses(
        (status = 200, description = "Attendance computed from the whole list, or from as much as the upstream serves (`complete` says which). Every other answer is as for `listParticipants`.",
            content(
                (AttendanceResponse = "application/json", example = json!(crate::api::examples::seed_attendance())),
                (String = "text/csv", example = json!(crate::api::examples::seed_attendance_csv())),
            ),
            headers(
                ("ETag" = String, description = "Strong validator of this body (differs for its gzip form and for each format)."),
                ("Cache-Control" = String, description = "As for `listParticipants`: the list's freshness."),
                ("Age" = u64, description = "Seconds since the list was fetched from the upstream."),
                ("Cache-Status" = String, description = "As for `listParticipants`."),
                ("Vary" = String, description = "`Accept-Encoding, Accept`."),
                ("Content-Encoding" = String, description = "`gzip` when the body is compressed; absent otherwise."),
                ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"meeting-<id>-attendance.csv\"`."),
            )),
    ),
    security(("api_key" = [])),
)]
pub async fn list_attendance(
    _: Authorized,
    State(state): State<AppState>,
    meeting: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    views::serve(&state, meeting, raw.as_deref(), &headers, Of::Attendance).await
}

/// A meeting's attendance: one row per person, and the summary.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attendance)]
pub struct AttendanceResponse<'a> {
    /// The meeting's id.
    pub meeting_id: Option<&'a str>,
    /// The meeting's number, as people dial it.
    pub meeting_code: Option<&'a str>,
    /// The meeting's subject.
    pub subject: Option<&'a str>,
    /// Scheduled start (unix seconds).
    pub schedule_start_time: Option<i64>,
    /// Scheduled end (unix seconds).
    pub schedule_end_time: Option<i64>,
    /// When the list this is computed from was current (unix seconds): fetched from the
    /// upstream, or changed since by Tencent's join and leave events. A session still open
    /// counts until then.
    pub as_of: i64,
    /// False when the list could not be fetched whole (the upstream serves at most 50,000
    /// records of one list): then so is this summary, computed from the records served.
    pub complete: bool,
    /// Why the list is incomplete; null when it is complete.
    pub incomplete_reason: Option<&'a str>,
    /// Upstream time windows the list took (see the participants endpoint).
    pub upstream_windows: u32,
    /// The whole meeting's numbers (the `still_in` parameter does not filter them).
    pub summary: Summary,
    /// One row per person, by first join (then by `person`); with `still_in=true`, only the
    /// people still in the meeting.
    pub attendees: Vec<Attendee<'a>>,
}

/// The meeting's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// Participation records the list holds.
    pub records: usize,
    /// Distinct people who attended.
    pub attendees: usize,
    /// People still in the meeting at `as_of`.
    pub still_in: usize,
    /// Most people in the meeting at once (two devices of one person count once).
    pub peak_concurrent: usize,
    /// When that peak was first reached (unix seconds); null when nobody attended.
    pub peak_at: Option<i64>,
    /// The median of the people's `attended_seconds` (with an even number of people, the mean
    /// of the two middle values, rounded down); 0 when nobody attended.
    pub median_attended_seconds: i64,
    /// The sum of the people's `attended_seconds`.
    pub total_attended_seconds: i64,
}

/// One person's attendance. A person is the `userid` when it is not empty, else the
/// `ms_open_id`, else the `uuid`; a record with none of them is a person of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Attendee<'a> {
    /// What identifies the person: their `userid`, else `ms_open_id`, else `uuid` (empty for a
    /// record with none of them).
    pub person: Cow<'a, str>,
    /// The display name as text, from the person's latest record.
    pub user_name: Option<Cow<'a, str>>,
    /// The display name as the upstream sent it (base64), from the latest record.
    pub user_name_base64: Option<Cow<'a, str>>,
    /// The enterprise user id; empty for people outside the enterprise.
    pub userid: Option<Cow<'a, str>>,
    /// From the latest record.
    pub ms_open_id: Option<Cow<'a, str>>,
    /// From the latest record.
    pub uuid: Option<Cow<'a, str>>,
    /// The role of the person's latest record (see the participant record's `user_role`).
    pub user_role: Option<i64>,
    /// The person's first join (unix seconds).
    pub first_join_time: i64,
    /// The person's last leave (unix seconds); null while still in.
    pub last_left_time: Option<i64>,
    /// Whether any of the person's sessions is still open.
    pub still_in: bool,
    /// Seconds in the meeting: the union of the person's sessions, so that two devices at once
    /// count once; an open session counts until `as_of`.
    pub attended_seconds: i64,
    /// Sessions (records) of the person.
    pub session_count: usize,
    /// Distinct devices (`instanceid` values) the person joined from.
    pub device_count: usize,
    /// Each join and leave, by join time.
    pub sessions: Vec<Session>,
}

/// One session: a join, its leave (null while still in) and the device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Session {
    /// Unix seconds.
    pub join_time: i64,
    /// Unix seconds; null while still in.
    pub left_time: Option<i64>,
    /// The device (see the participant record's `instanceid`).
    pub instanceid: Option<i64>,
    /// Present (true) when the record was made from Tencent's join event.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub provisional: bool,
}

/// A list's attendance as worked out: the document without its rows (`attendees` is empty),
/// and the people, whose rows the views write.
pub struct Report<'r, 'a> {
    pub document: AttendanceResponse<'a>,
    pub people: People<'r, 'a>,
}

/// The people of a list, one [`Row`] each, by first join then person.
pub struct People<'r, 'a> {
    records: &'r [Visit<'a>],
    /// The records' places, each person's together and by join time: a row's `run`.
    places: Vec<u32>,
    pub rows: Vec<Row<'a>>,
}

/// One person's numbers. Their texts are their latest record's and their sessions are their
/// records, read from the list when written ([`People::sessions`]), not copied here: a row is
/// made for every person of every rendering, and most of what one holds is written once.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub first_join_time: i64,
    pub last_left_time: Option<i64>,
    pub still_in: bool,
    pub attended_seconds: i64,
    pub device_count: u32,
    /// The person's latest record, whose texts the row shows.
    pub latest: Visit<'a>,
    /// Where the person's records lie in the people's places.
    run: Span,
}

impl Row<'_> {
    pub fn session_count(&self) -> usize {
        self.run.1 as usize
    }
}

impl<'a> People<'_, 'a> {
    /// A person's records, by join time.
    fn records(&self, row: &Row<'a>) -> impl Iterator<Item = &Visit<'a>> + Clone {
        let (start, len) = (row.run.0 as usize, row.run.1 as usize);
        self.places[start..][..len]
            .iter()
            .map(|&i| &self.records[i as usize])
    }

    /// A person's sessions, by join time.
    pub fn sessions(&self, row: &Row<'a>) -> impl Iterator<Item = Session> {
        self.records(row).map(session)
    }

    /// Every row as the document's schema has it.
    #[cfg(test)]
    pub fn attendees(&self) -> Vec<Attendee<'a>> {
        self.rows.iter().map(|row| self.attendee(row)).collect()
    }

    /// A person's row as the document's schema has it (what the views write by hand).
    #[cfg(test)]
    pub fn attendee(&self, row: &Row<'a>) -> Attendee<'a> {
        let text = |field| row.latest.text(field).map(|text| text.0);
        Attendee {
            person: String::from_utf8(person_text(&row.latest).into_owned())
                .expect("texts are UTF-8")
                .into(),
            user_name: text(Field::UserName),
            user_name_base64: text(Field::UserNameBase64),
            userid: text(Field::Userid),
            ms_open_id: text(Field::MsOpenId),
            uuid: text(Field::Uuid),
            user_role: row.latest.user_role(),
            first_join_time: row.first_join_time,
            last_left_time: row.last_left_time,
            still_in: row.still_in,
            attended_seconds: row.attended_seconds,
            session_count: row.session_count(),
            device_count: row.device_count as usize,
            sessions: self.sessions(row).collect(),
        }
    }
}

/// The attendance of a list's records at `as_of` (unix seconds), with every person; the
/// handler filters.
pub fn compute<'r, 'a>(head: &'a Head, records: &'r [Visit<'a>], as_of: i64) -> Report<'r, 'a> {
    let (people, edges) = people(records, as_of);
    let summary = summarize(records.len(), &people.rows, edges);
    let document = AttendanceResponse {
        meeting_id: head.meeting_id.as_deref(),
        meeting_code: head.meeting_code.as_deref(),
        subject: head.subject.as_deref(),
        schedule_start_time: head.schedule_start_time,
        schedule_end_time: head.schedule_end_time,
        as_of,
        complete: head.complete,
        incomplete_reason: head.incomplete_reason.as_deref(),
        upstream_windows: head.upstream_windows,
        summary,
        attendees: Vec::new(),
    };
    Report { document, people }
}

/// Every record of a stored list as attendance reads it, in order: by the briefs kept beside
/// the stored records, without reading their JSON again.
pub fn visits(list: &StoredList) -> Vec<Visit<'_>> {
    let mut visits = Vec::with_capacity(list.records());
    visits.extend(
        list.each_record_briefly()
            .map(|(json, brief)| Visit::new(json, brief)),
    );
    visits
}

/// Which text identifies a record's person: `userid`, else `ms_open_id`, else `uuid`, the
/// first that is neither null nor empty; `None` for a record with none.
fn person_field(record: &Visit<'_>) -> Option<Field> {
    [Field::Userid, Field::MsOpenId, Field::Uuid]
        .into_iter()
        .find(|&field| record.escaped(field).is_some_and(|id| !id.is_empty()))
}

/// A record's person as the JSON writes it: equal exactly when the people are.
fn person_key<'a>(record: &Visit<'a>) -> Option<&'a [u8]> {
    person_field(record).and_then(|field| record.escaped(field))
}

/// A record's person as the JSON writes it, with its quotes; `""` for a record with none.
pub fn person_json<'a>(record: &Visit<'a>) -> &'a [u8] {
    person_field(record).map_or(b"\"\"", |field| record.json(field))
}

/// A record's person as text (UTF-8); empty for a record with none.
pub fn person_text<'a>(record: &Visit<'a>) -> Cow<'a, [u8]> {
    person_field(record)
        .and_then(|field| record.text_bytes(field))
        .unwrap_or_default()
}

/// Each record's person as a number: records of one person have the same, a record with no
/// identity one of its own. Each half of a long list is numbered on a thread of its own, and
/// the second half's numbers then translated into the first's.
fn numbers(records: &[Visit<'_>]) -> Vec<u32> {
    type Numbers<'r> = HashMap<&'r [u8], u32, foldhash::fast::RandomState>;
    /// Numbers from 0, as first seen.
    fn number<'r>(records: &'r [Visit<'_>]) -> (Vec<u32>, Numbers<'r>) {
        let mut known = Numbers::with_capacity_and_hasher(records.len(), Default::default());
        let mut numbers = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let new = u32::try_from(i).expect("a list holds far fewer records");
            numbers.push(match person_key(record) {
                Some(id) => *known.entry(id).or_insert(new),
                None => new,
            });
        }
        (numbers, known)
    }
    let (front, back) = records.split_at(records.len() / 2);
    let ((mut numbers, known), (back_numbers, back_known)) =
        both(parallel(records.len()), || number(front), || number(back));
    // A person of the second half keeps the first half's number, or takes a new one past it.
    let offset = u32::try_from(front.len()).expect("a list holds far fewer records");
    let mut translated: Vec<u32> = (offset..).take(back.len()).collect();
    for (id, local) in back_known {
        if let Some(&number) = known.get(id) {
            translated[local as usize] = number;
        }
    }
    numbers.extend(back_numbers.iter().map(|&local| translated[local as usize]));
    numbers
}

/// Where a person's records lie in the places, by join time: the first and how many.
type Span = (u32, u32);

/// One person's records: their first join, their text, and where they lie.
type Run<'a> = (i64, Cow<'a, [u8]>, Span);

/// The records' indices grouped by person, the people in the order of their numbers and each
/// one's records in list order. A counting sort: the numbers are below the list's length (see
/// [`numbers`]), so a table as long as the list has a slot for each.
fn grouped(numbers: &[u32]) -> Vec<u32> {
    let mut next = vec![0u32; numbers.len() + 1];
    for &number in numbers {
        next[number as usize + 1] += 1;
    }
    for i in 1..next.len() {
        next[i] += next[i - 1];
    }
    let mut places = vec![0u32; numbers.len()];
    for (i, &number) in numbers.iter().enumerate() {
        let at = &mut next[number as usize];
        places[*at as usize] = i as u32;
        *at += 1;
    }
    places
}

/// Each person's row, by first join then person, and the starts and ends of the time each
/// person was in, for the peak.
fn people<'r, 'a>(records: &'r [Visit<'a>], as_of: i64) -> (People<'r, 'a>, Edges) {
    // The records by person (numbered), then join time and list order: each person is one run.
    let numbers = numbers(records);
    let mut places = grouped(&numbers);
    let mut at = 0;
    let mut runs: Vec<Run<'a>> = places
        .chunk_by_mut(|&a, &b| numbers[a as usize] == numbers[b as usize])
        .map(|run| {
            // Most lists come in join order: then this finds the run sorted.
            run.sort_unstable_by_key(|&i| (records[i as usize].join_time(), i));
            let (len, first) = (run.len() as u32, &records[run[0] as usize]);
            at += len;
            (first.join_time(), person_text(first), (at - len, len))
        })
        .collect();
    let run = |&(start, len): &Span| {
        places[start as usize..][..len as usize]
            .iter()
            .map(|&i| &records[i as usize])
    };
    // The people by first join, then person; records with no identity share an empty key, so
    // their sessions decide, and the order never depends on how the records were sorted. Sorted
    // as runs (where each person's records lie in the places), before the rows are made: by
    // first join alone, then each group of equal first joins by the rest, with the runs' own
    // order (each person's first record in the list) last: the order a stable sort gives.
    runs.sort_unstable_by_key(|&(join, _, (start, _))| (join, start));
    for same_join in runs.chunk_by_mut(|a, b| a.0 == b.0) {
        if same_join.len() > 1 {
            same_join.sort_unstable_by(|(_, a, a_run), (_, b, b_run)| {
                a.cmp(b)
                    .then_with(|| run(a_run).map(session).cmp(run(b_run).map(session)))
                    .then(a_run.0.cmp(&b_run.0))
            });
        }
    }
    // The rows, in two halves on two threads when there are many.
    let rows = |runs: &[Run<'a>]| {
        let mut edges = Edges::with_capacity(runs.len() * 3 / 2);
        let mut scratch = Scratch::default();
        let rows: Vec<Row<'a>> = runs
            .iter()
            .map(|&(.., span)| row(run(&span), span, as_of, &mut edges, &mut scratch))
            .collect();
        (rows, edges)
    };
    let (front, back) = runs.split_at(runs.len() / 2);
    let ((mut rows, mut edges), (more_rows, more_edges)) =
        both(parallel(records.len()), || rows(front), || rows(back));
    rows.extend(more_rows);
    edges.starts.extend(more_edges.starts);
    edges.ends.extend(more_edges.ends);
    let people = People {
        records,
        places,
        rows,
    };
    (people, edges)
}

/// When each person's time in the meeting started and ended (the union of their sessions).
struct Edges {
    starts: Vec<i64>,
    ends: Vec<i64>,
}

impl Edges {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            starts: Vec::with_capacity(capacity),
            ends: Vec::with_capacity(capacity),
        }
    }
}

/// Buffers one person's row is worked out in, kept for the next.
#[derive(Default)]
struct Scratch {
    intervals: Vec<(i64, i64)>,
    devices: Vec<i64>,
}

/// One person's row from their records (by join time), which lie at `run` in the places,
/// adding the starts and ends of the time they were in to `edges`.
fn row<'r, 'a: 'r>(
    group: impl Iterator<Item = &'r Visit<'a>> + Clone,
    run: Span,
    as_of: i64,
    edges: &mut Edges,
    scratch: &mut Scratch,
) -> Row<'a> {
    let first = group.clone().next().expect("a group has a record");
    let latest = group.clone().last().expect("a group has a record");
    let intervals = &mut scratch.intervals;
    intervals.clear();
    intervals.extend(group.clone().map(|r| interval(r, as_of)));
    let still_in = group.clone().any(|r| r.left_time().is_none());
    let devices = &mut scratch.devices;
    devices.clear();
    devices.extend(group.clone().filter_map(Visit::instanceid));
    devices.sort_unstable();
    devices.dedup();
    let mut attended = 0;
    for (from, to) in union(intervals) {
        attended += to - from;
        edges.starts.push(*from);
        edges.ends.push(*to);
    }
    Row {
        first_join_time: first.join_time(),
        last_left_time: if still_in {
            None
        } else {
            group.filter_map(Visit::left_time).max()
        },
        still_in,
        attended_seconds: attended,
        device_count: devices.len() as u32,
        latest: *latest,
        run,
    }
}

fn session(record: &Visit<'_>) -> Session {
    Session {
        join_time: record.join_time(),
        left_time: record.left_time(),
        instanceid: record.instanceid(),
        provisional: record.provisional(),
    }
}

/// A session as a half-open interval of seconds: an open one ends at `as_of`; one that ends
/// before it starts (the upstream's clocks disagree) is empty.
fn interval(record: &Visit<'_>, as_of: i64) -> (i64, i64) {
    let end = record.left_time().unwrap_or(as_of);
    (record.join_time(), end.max(record.join_time()))
}

/// The union of intervals, in place: sorted, overlapping and touching ones joined, empty ones
/// dropped.
fn union(intervals: &mut Vec<(i64, i64)>) -> &[(i64, i64)] {
    intervals.retain(|(from, to)| to > from);
    intervals.sort_unstable();
    let mut kept = 0;
    for i in 0..intervals.len() {
        let (from, to) = intervals[i];
        if kept > 0 && from <= intervals[kept - 1].1 {
            intervals[kept - 1].1 = intervals[kept - 1].1.max(to);
        } else {
            intervals[kept] = (from, to);
            kept += 1;
        }
    }
    intervals.truncate(kept);
    intervals
}

/// The summary, from the people and the starts and ends of each one's time in the meeting.
fn summarize(records: usize, people: &[Row<'_>], edges: Edges) -> Summary {
    let Edges {
        mut starts,
        mut ends,
    } = edges;
    starts.sort_unstable();
    ends.sort_unstable();
    // The number in only rises at a start. The ends up to a start's second come first: a person
    // leaving as another joins is not overlap.
    // Every interval ends after it starts, so no more have ended than started.
    let (mut ended, mut peak, mut peak_at) = (0, 0, None);
    for (started, &time) in starts.iter().enumerate() {
        ended += ends[ended..].iter().take_while(|&&end| end <= time).count();
        let now_in = started + 1 - ended;
        if now_in > peak {
            peak = now_in;
            peak_at = Some(time);
        }
    }
    let mut attended: Vec<i64> = people.iter().map(|p| p.attended_seconds).collect();
    attended.sort_unstable();
    let median = match attended.len() {
        0 => 0,
        n if n % 2 == 1 => attended[n / 2],
        n => (attended[n / 2 - 1] + attended[n / 2]).div_euclid(2),
    };
    Summary {
        records,
        attendees: people.len(),
        still_in: people.iter().filter(|p| p.still_in).count(),
        peak_concurrent: peak,
        peak_at,
        median_attended_seconds: median,
        total_attended_seconds: attended.iter().sum(),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::api::participants::ParticipantResponse;
    use crate::api::records::Brief;
    use crate::upstream::Participant;

    fn record(
        userid: &str,
        ms_open_id: &str,
        uuid: &str,
        join: i64,
        left: Option<i64>,
        device: i64,
    ) -> Participant {
        let name = base64::engine::general_purpose::STANDARD.encode(format!("{uuid}-{join}"));
        Participant {
            userid: Some(userid.into()),
            ms_open_id: Some(ms_open_id.into()),
            uuid: Some(uuid.into()),
            user_name: Some(name.into()),
            join_time: join,
            left_time: left,
            instanceid: Some(device),
            user_role: Some(join % 7),
            ..Participant::default()
        }
    }

    /// The records as a list stores them: their JSON as the API writes it, and their briefs.
    fn stored(records: &[Participant]) -> Vec<(Vec<u8>, Brief)> {
        records
            .iter()
            .map(|record| {
                let json = serde_json::to_vec(&ParticipantResponse::from(record)).unwrap();
                let brief = Brief::of(&json).expect("the API's JSON has a brief");
                (json, brief)
            })
            .collect()
    }

    fn visits(stored: &[(Vec<u8>, Brief)]) -> Vec<Visit<'_>> {
        stored
            .iter()
            .map(|(json, brief)| Visit::new(json, brief))
            .collect()
    }

    fn head() -> Head {
        serde_json::from_str(r#"{"meeting_id":"1","complete":true}"#).unwrap()
    }

    #[test]
    fn overlapping_devices_count_once_and_open_sessions_run_to_as_of() {
        let records = [
            // Alice: a PC from 100 to 200, a phone from 150 to 300 (overlap), back from 400 on.
            record("alice", "ms-a", "WM-a", 100, Some(200), 1),
            record("alice", "ms-a", "WM-a", 150, Some(300), 4),
            record("alice", "ms-a", "WM-a", 400, None, 1),
            // No user id: known by ms_open_id; two sessions touching end to start.
            record("", "ms-b", "WM-b", 120, Some(180), 3),
            record("", "ms-b", "WM-b2", 180, Some(240), 3),
            // Neither: by uuid.
            record("", "", "WM-c", 500, Some(450), 5), // leaves before it joins: empty
            // No identity at all: each record a person of its own.
            record("", "", "", 600, Some(610), 0),
            record("", "", "", 600, Some(620), 0),
        ];
        let head = head();
        let stored = stored(&records);
        let visits = visits(&stored);
        let report = compute(&head, &visits, 1_000);
        let attendees = report.people.attendees();
        type Numbers<'a> = (&'a str, i64, usize, usize, bool, Option<i64>);
        let people: Vec<Numbers<'_>> = attendees
            .iter()
            .map(|p| {
                (
                    p.person.as_ref(),
                    p.attended_seconds,
                    p.session_count,
                    p.device_count,
                    p.still_in,
                    p.last_left_time,
                )
            })
            .collect();
        assert_eq!(
            people,
            [
                ("alice", 200 + 600, 3, 2, true, None),
                ("ms-b", 120, 2, 1, false, Some(240)),
                ("WM-c", 0, 1, 1, false, Some(450)),
                ("", 10, 1, 1, false, Some(610)),
                ("", 20, 1, 1, false, Some(620)),
            ]
        );
        let alice = &attendees[0];
        assert_eq!(alice.first_join_time, 100);
        assert_eq!(alice.user_role, Some(400 % 7), "the latest record's");
        assert_eq!(alice.user_name.as_deref(), Some("WM-a-400"));
        assert_eq!(attendees[1].uuid.as_deref(), Some("WM-b2"));
        assert_eq!(
            alice.sessions,
            [(100, Some(200), 1), (150, Some(300), 4), (400, None, 1)].map(
                |(join_time, left_time, device)| Session {
                    join_time,
                    left_time,
                    instanceid: Some(device),
                    provisional: false,
                }
            )
        );
        let summary = &report.document.summary;
        assert_eq!(summary.records, 8);
        assert_eq!(summary.attendees, 5);
        assert_eq!(summary.still_in, 1);
        // 120..180 Alice and B; 600..610 Alice and both anonymous records: three at once.
        assert_eq!((summary.peak_concurrent, summary.peak_at), (3, Some(600)));
        assert_eq!(summary.total_attended_seconds, 800 + 120 + 10 + 20);
        assert_eq!(summary.median_attended_seconds, 20);
    }

    #[test]
    fn leaving_as_another_joins_is_not_overlap_and_an_even_median_is_the_mean() {
        let records = [
            record("a", "", "", 0, Some(10), 1),
            record("b", "", "", 10, Some(25), 1),
        ];
        let head = head();
        let stored = stored(&records);
        let summary = compute(&head, &visits(&stored), 100).document.summary;
        assert_eq!((summary.peak_concurrent, summary.peak_at), (1, Some(0)));
        assert_eq!(summary.median_attended_seconds, 12);
        let empty = compute(&head, &[], 100).document.summary;
        assert_eq!((empty.peak_concurrent, empty.peak_at), (0, None));
        assert_eq!(empty.median_attended_seconds, 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]

        /// Numbering each half of the list on its own and then translating the second half's
        /// numbers gives two records one number exactly when they are one person.
        #[test]
        fn records_share_a_number_exactly_when_they_are_one_person(
            ids in proptest::collection::vec((0..4u8, 0..4u8, 0..4u8), 0..48),
        ) {
            // 0: absent, 1: empty, else an id from a small alphabet (so that people repeat).
            let id = |n: u8, kind: &str| match n {
                0 => None,
                1 => Some("".into()),
                n => Some(format!("{kind}{n}").into()),
            };
            let records: Vec<Participant> = ids
                .iter()
                .map(|&(u, m, w)| Participant {
                    userid: id(u, "u"),
                    ms_open_id: id(m, "m"),
                    uuid: id(w, "w"),
                    ..Participant::default()
                })
                .collect();
            let stored = stored(&records);
            let visits = visits(&stored);
            let numbers = numbers(&visits);
            proptest::prop_assert_eq!(numbers.len(), visits.len());
            for (i, a) in visits.iter().enumerate() {
                for (j, b) in visits.iter().enumerate() {
                    let same = i == j || (person_key(a).is_some() && person_key(a) == person_key(b));
                    proptest::prop_assert_eq!(numbers[i] == numbers[j], same, "{} {}", i, j);
                }
            }
        }

        /// The people are in the documented order, by first join, then by their text (not by
        /// its JSON, which differs for quotes, backslashes and control characters), then by
        /// their sessions.
        #[test]
        fn people_are_ordered_by_first_join_then_text_then_sessions(
            people in proptest::collection::vec(
                ("[aA\\\"\u{1}é]{0,3}", 0..3i64, proptest::option::of(0..3i64)),
                0..32,
            ),
        ) {
            let records: Vec<Participant> = people
                .iter()
                .map(|(id, join, left)| Participant {
                    userid: Some(id.as_str().into()),
                    join_time: *join,
                    left_time: left.map(|l| join + l),
                    ..Participant::default()
                })
                .collect();
            let head = head();
            let stored = stored(&records);
            let visits = visits(&stored);
            let report = compute(&head, &visits, 100);
            let attendees = report.people.attendees();
            for pair in attendees.windows(2) {
                let key = |a: &Attendee<'_>| (a.first_join_time, a.person.to_string(), a.sessions.clone());
                proptest::prop_assert!(key(&pair[0]) <= key(&pair[1]), "{:?}", pair);
            }
        }
    }
}
