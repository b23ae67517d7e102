//! `GET /meetings/{meeting_id}/participants`: the whole list, merged, decoded and typed.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Authorized;
use super::cached_response::FetchInProgress;
use super::stored_list::{PatchError, StoredList, StoredListBuilder};
use super::views::{self, Of, ViewParams};
use crate::cache::Renderer;
use crate::error::{ApiError, Problem};
use crate::upstream::query::{ParticipantsParams, meeting_id, not_a_meeting_id};
use crate::upstream::{Completeness, ListHead, PAGE_SIZE, Participant, RECORD_CAP};
use crate::webhooks::apply::{Applied, Joined, Left};

/// The meeting a route's path names, documented once for every route that takes it; checked
/// by [`meeting_id`], whose limits the pattern states.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // the handlers read the path themselves; this type documents it
pub(super) struct MeetingPath {
    /// The meeting's id (`meeting_id` in Tencent's APIs, not the 9-digit meeting code).
    #[param(
        min_length = 1,
        max_length = 32,
        pattern = r"^[0-9]{1,32}$",
        example = "144115214488302892"
    )]
    meeting_id: String,
}

/// List everyone who joined a meeting
///
/// The meeting's whole participant list: every upstream page merged, names decoded, times as
/// integers. The first request for a list fetches it from Tencent Meeting (one upstream call per
/// 100 records, paced to the enterprise's quota); concurrent requests for the same list share
/// that one fetch, and later ones are served from the cache while it is fresh. A meeting that
/// has ended stays fresh for an hour by default, a live one for 30 seconds. When the upstream
/// fails, a stale copy (up to 24 hours old by default) is served instead of the error, and
/// `Cache-Status` says so.
///
/// The same list as a CSV file for Excel (`Accept: text/csv` or `format=csv`: UTF-8 with a
/// byte-order mark, a header row, one row per record, times in ISO 8601 in the zone `tz`), and
/// only the people still in (`still_in=true`), are made from the cached list: no upstream call.
///
/// Rules the parameters' schemas cannot express, each answered `400` naming the parameter:
/// `start_time` may not be after `end_time`, and the window may span at most 372 days (past 31
/// days it is fetched as consecutive 31-day windows; a missing `end_time` is now, a missing
/// `start_time` 31 days ago, so one given alone must lie in the last 31 days, less 10 minutes);
/// `userid` and `operator_id` exclude each other; `operator_id` and `operator_id_type` go
/// together; a recurring meeting needs `sub_meeting_id` (the upstream refuses the call without
/// it). With none of `userid` and `operator_id`, the gateway's configured operator is used.
#[utoipa::path(
    get,
    path = "/meetings/{meeting_id}/participants",
    tag = "participants",
    operation_id = "listParticipants",
    params(
        MeetingPath,
        ParticipantsParams,
        ViewParams,
        ("Accept" = Option<String>, Header, description = "`text/csv` (preferred over `application/json`) for the CSV form; `format` overrides it."),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` from an earlier answer: `304` when the list is unchanged."),
        ("Cache-Control" = Option<String>, Header, description = "`no-cache` (or `max-age=0`) fetches the list anew from the upstream, joined with any fetch already running."),
    ),
    responses(
        (status = 200, description = "The whole list, or as much as the upstream serves (`complete` says which).",
            content(
                (ParticipantListResponse = "application/json", example = json!(crate::api::examples::seed_meeting())),
                (String = "text/csv", example = json!(crate::api::examples::seed_meeting_csv())),
            ),
            headers(
                ("ETag" = String, description = "Strong validator of this body (differs for its gzip form)."),
                ("Cache-Control" = String, description = "`private, max-age=N`: this copy's whole freshness lifetime in seconds; with `Age`, it is fresh for `N − Age` more seconds (RFC 9111)."),
                ("Age" = u64, description = "Seconds since the list was fetched from the upstream."),
                ("Cache-Status" = String, description = "RFC 9211, from `wemeet-gateway`: `hit` (fresh copy); `hit; detail=patched` (fresh copy changed since its fetch by Tencent's join and leave events); `hit; detail=stale-while-revalidate` (stale copy, refreshed in the background); `fwd=miss` (fetched now); `fwd=stale` (the copy held was too stale to serve at once, fetched now); `fwd=request` (refresh asked for); `fwd=stale; fwd-status=N; detail=stale-if-error` (the refresh failed, this time or the last time it ran, and a stale copy is served; `N` is the HTTP status the upstream itself answered, left out when it answered none, as on a timeout); `fwd=stale; detail=still-fetching` (a refresh outlasted the wait, the copy held is served). `stored` when the answer was stored, `collapsed` when the request joined a fetch already running, and `ttl`: the remaining freshness in seconds, negative when stale."),
                ("Vary" = String, description = "`Accept-Encoding, Accept`: the body is gzip-compressed when the caller accepts it, and CSV when `Accept` prefers it."),
                ("Content-Encoding" = String, description = "`gzip` when the body is compressed; absent otherwise."),
                ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"meeting-<id>-participants.csv\"`."),
            )),
        (status = 202, description = "The list is still being fetched (a large meeting takes a while within the upstream's quota); ask again after `Retry-After` seconds.", body = FetchInProgress,
            headers(
                ("Retry-After" = u64, description = "Seconds to wait before asking again."),
                ("Cache-Control" = String, description = "`no-store`."),
                ("Cache-Status" = String, description = "`fwd=miss; detail=fetching`."),
            )),
        (status = 304, description = "The list is unchanged since the `ETag` given in `If-None-Match`.",
            headers(
                ("ETag" = String, description = "The validator that matched."),
                ("Cache-Control" = String, description = "`private, max-age=N`."),
                ("Age" = u64, description = "Seconds since the list was fetched."),
                ("Cache-Status" = String, description = "As for `200`."),
                ("Vary" = String, description = "`Accept-Encoding, Accept`."),
            )),
        (status = 400, description = "A parameter is invalid (`parameter` names it), or the upstream refused one.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No API key, or one the gateway does not accept.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"wemeet-gateway\"`, with an `error` when a key was given."))),
        (status = 403, description = "The operator may not read this meeting (only its creator or an enterprise admin may).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The upstream knows no such meeting or sub-meeting. The gateway remembers that for 30 seconds: such an answer from memory carries the caching headers.", body = Problem, content_type = "application/problem+json",
            headers(
                ("Cache-Control" = String, description = "`private, max-age=N`, when answered from memory."),
                ("Age" = u64, description = "Seconds since the upstream said so, when answered from memory."),
                ("Cache-Status" = String, description = "As for `200`, when answered from memory."),
                ("Vary" = String, description = "`Accept-Encoding, Accept`, when answered from memory."),
            )),
        (status = 429, description = "This API key's requests a minute are spent (`key-rate-limited`).", body = Problem, content_type = "application/problem+json",
            headers(
                ("Retry-After" = u64, description = "Seconds until the key may ask again."),
                ("RateLimit-Policy" = String, description = "The key's limit (draft-ietf-httpapi-ratelimit-headers): `\"per-key\";q=<requests>;w=60`."),
                ("RateLimit" = String, description = "What is left of it: `\"per-key\";r=0;t=<seconds until the next request is allowed>`."),
            )),
        (status = 500, description = "The gateway failed; the cause is in its log.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The upstream failed after retries, answered something unusable, or rejected the gateway's own credentials (`gateway-misconfigured`: operators, see the log).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The enterprise's upstream quota is spent (per minute or per day), and no stale copy can be served; or the gateway holds as many requests as it takes at once (`overloaded`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the quota renews, or 1 when overloaded."))),
        (status = 504, description = "The list could not be fetched within the gateway's time limits.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn list_participants(
    _: Authorized,
    State(state): State<AppState>,
    meeting: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    views::serve(&state, meeting, raw.as_deref(), &headers, Of::Participants).await
}

/// Drop a meeting's cached lists
///
/// Forgets every cached list of a meeting (every operator, sub-meeting and time window), so that
/// the next request fetches it anew.
#[utoipa::path(
    delete,
    path = "/meetings/{meeting_id}/participants/cache",
    tag = "participants",
    operation_id = "dropCachedParticipants",
    params(
        MeetingPath,
    ),
    responses(
        (status = 204, description = "Dropped (also when nothing was cached)."),
        (status = 400, description = "The meeting id is invalid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No API key, or one the gateway does not accept.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"wemeet-gateway\"`."))),
        (status = 429, description = "This API key's requests a minute are spent (`key-rate-limited`).", body = Problem, content_type = "application/problem+json",
            headers(
                ("Retry-After" = u64, description = "Seconds until the key may ask again."),
                ("RateLimit-Policy" = String, description = "The key's limit: `\"per-key\";q=<requests>;w=60`."),
                ("RateLimit" = String, description = "`\"per-key\";r=0;t=<seconds>`."),
            )),
        (status = 503, description = "The gateway holds as many requests as it takes at once (`overloaded`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "1."))),
    ),
    security(("api_key" = [])),
)]
pub async fn drop_cached(
    _: Authorized,
    State(state): State<AppState>,
    meeting: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(id)) = meeting else {
        return Err(not_a_meeting_id().into());
    };
    state.cache().invalidate_meeting(&meeting_id(&id)?).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the renderer of one fetched list: each page's records are written and compressed as
/// they arrive, the head once the list is whole.
pub fn render() -> Box<dyn Renderer<StoredList>> {
    Box::new(ListRenderer(StoredListBuilder::default()))
}

struct ListRenderer(StoredListBuilder);

impl Renderer<StoredList> for ListRenderer {
    fn page(&mut self, records: Vec<Participant>) {
        self.0.push_chunk(&records, write_record);
    }

    fn finish(self: Box<Self>, head: &ListHead) -> StoredList {
        self.0.finish(head_json(head), LIST_TAIL)
    }
}

/// A stored list with records replaced (by their index in the list) and records appended, under
/// a new head; only the chunks they fall in are written again.
pub fn patch(
    stored: &StoredList,
    head: &ListHead,
    replaced: &[(usize, Participant)],
    appended: &[Participant],
) -> Result<StoredList, PatchError> {
    stored.patched(
        head_json(head),
        replaced,
        appended,
        PAGE_SIZE as usize,
        write_record,
    )
}

/// Applies joins (appended as provisional records) and leaves (closing open records, the
/// appended ones included) to a stored list; only the chunks touched are written again.
pub fn apply_events(stored: &StoredList, joined: &[Joined], left: &[Left]) -> Applied<StoredList> {
    let mut appended: Vec<Vec<u8>> = joined
        .iter()
        .map(|joined| {
            let mut json = Vec::with_capacity(512);
            let mut record = ParticipantResponse::from(&joined.record);
            record.provisional = true;
            serde_json::to_writer(&mut json, &record).expect("a record serializes");
            json
        })
        .collect();
    let mut replaced: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut unmatched = Vec::new();
    let open = |json: &[u8], leave: &Left| {
        serde_json::from_slice::<OpenRecord>(json).is_ok_and(|r| {
            r.left_time.is_none()
                && r.uuid.as_deref() == Some(leave.uuid.as_str())
                && r.instanceid == leave.instanceid
        })
    };
    for leave in left {
        // The latest open record: a joined-again person's new session, not an old one.
        if let Some(json) = appended.iter_mut().rev().find(|json| open(json, leave)) {
            *json = closed(json, leave.left_time);
        } else if let Some((_, json)) = replaced.iter_mut().rev().find(|(_, j)| open(j, leave)) {
            *json = closed(json, leave.left_time);
        } else if let Some((index, json)) = stored
            .records_from_last()
            .find(|(i, json)| !replaced.iter().any(|(r, _)| r == i) && open(json, leave))
        {
            replaced.push((index, closed(json, leave.left_time)));
        } else {
            unmatched.push(leave.clone());
        }
    }
    if appended.is_empty() && replaced.is_empty() {
        return Applied {
            list: None,
            unmatched,
        };
    }
    let list = stored
        .patched(
            stored.head().to_vec(),
            &replaced,
            &appended,
            PAGE_SIZE as usize,
            |json: &Vec<u8>, out: &mut Vec<u8>| out.extend_from_slice(json),
        )
        .expect("the records replaced were found in the list");
    Applied {
        list: Some(list),
        unmatched,
    }
}

/// What a leave needs to know of a stored record.
#[derive(Deserialize)]
struct OpenRecord<'a> {
    #[serde(borrow)]
    uuid: Option<super::records::Text<'a>>,
    instanceid: Option<i64>,
    left_time: Option<i64>,
}

/// A stored record's JSON with its `left_time` set. Inside a JSON string a quote is always
/// escaped, so `"left_time":null` can only be the field itself: the result is byte for byte
/// what writing the record with that `left_time` gives.
fn closed(json: &[u8], left_time: i64) -> Vec<u8> {
    const OPEN: &[u8] = b"\"left_time\":null";
    let at = json
        .windows(OPEN.len())
        .position(|w| w == OPEN)
        .expect("an open record has a null left_time");
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(&json[..at]);
    out.extend_from_slice(format!("\"left_time\":{left_time}").as_bytes());
    out.extend_from_slice(&json[at + OPEN.len()..]);
    out
}

/// How the document ends after its records.
const LIST_TAIL: &[u8] = b"]}";

/// The document up to its first record: the list's fields, then `"participants":[`, exactly as
/// the whole [`ParticipantListResponse`] starts.
fn head_json(head: &ListHead) -> Vec<u8> {
    let mut json = serde_json::to_vec(&ParticipantListResponse::new(head, Vec::new()))
        .expect("the response serializes");
    debug_assert!(json.ends_with(b"[]}"));
    json.truncate(json.len() - LIST_TAIL.len());
    json
}

fn write_record(record: &Participant, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &ParticipantResponse::from(record)).expect("a record serializes");
}

/// A meeting's participant list, merged from every upstream page. Field names are Tencent's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ParticipantList)]
pub struct ParticipantListResponse<'a> {
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
    /// Participation records the upstream counts (a person joining twice counts twice).
    pub total_count: Option<i64>,
    /// False when the list could not be fetched whole; `incomplete_reason` says why.
    pub complete: bool,
    /// Why the list is incomplete (the upstream serves at most 50,000 records of one list);
    /// null when it is complete.
    pub incomplete_reason: Option<String>,
    /// Upstream time windows the list took: 1, or more when `start_time`..`end_time` spans more
    /// than the upstream's 31 days (fetched one after another, merged in order, a record in two
    /// windows kept once).
    #[schema(example = 1)]
    pub upstream_windows: u32,
    /// One record per joining, in the upstream's order.
    pub participants: Vec<ParticipantResponse<'a>>,
}

/// One participation record: one person joining once. Fields the upstream leaves out are null.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Participant)]
pub struct ParticipantResponse<'a> {
    /// The enterprise's user id (empty for people outside the enterprise).
    pub userid: Option<&'a str>,
    /// A user id valid in this meeting only, for meeting-control calls.
    pub ms_open_id: Option<&'a str>,
    /// An identity id valid in this meeting only.
    pub uuid: Option<&'a str>,
    /// The user's open_id for OAuth 2.0 apps; empty otherwise.
    pub open_id: Option<&'a str>,
    /// The display name as text (bytes that are not UTF-8 replaced by U+FFFD); null when the
    /// upstream's value is not base64.
    pub user_name: Option<String>,
    /// The display name exactly as the upstream sent it (base64).
    pub user_name_base64: Option<&'a str>,
    /// True for members of the enterprise (with an empty `userid`: a former member).
    pub is_enterprise_user: Option<bool>,
    /// Hash of the phone number: SHA-256 of phone + "/" + the app's SecretId.
    pub phone: Option<&'a str>,
    /// When this person joined (unix seconds).
    pub join_time: i64,
    /// When this person left (unix seconds); null while still in the meeting.
    pub left_time: Option<i64>,
    /// Device: 0 PSTN, 1 PC, 2 Mac, 3 Android, 4 iOS, 5 Web, 6 iPad, 7 Android Pad, 8 mini
    /// program, 9 VoIP/SIP device (MRA), 10 Linux, 20 Rooms for Touch Windows, 21 Rooms for
    /// Touch macOS, 22 Rooms for Touch Android, 30 Controller for Touch Windows, 32 Controller for
    /// Touch Android, 33 Controller for Touch iOS/iPadOS.
    pub instanceid: Option<i64>,
    /// Role: 0 member, 1 creator, 2 host, 3 creator and host, 4 guest, 5 guest and host,
    /// 6 co-host, 7 creator and co-host.
    pub user_role: Option<i64>,
    /// Webinar role: 0 ordinary attendee, 1 internal guest, 2 external guest, 3 guest invited by
    /// link, 4 audience.
    pub webinar_member_role: Option<i64>,
    /// IP address; only while the person is in the meeting.
    #[serde(rename = "IP")]
    pub ip: Option<&'a str>,
    /// Location; only while the person is in the meeting.
    pub location: Option<&'a str>,
    /// Connection: `UDP`, `TCP` or `unknown`; only while the person is in the meeting.
    pub link_type: Option<&'a str>,
    /// How the person joined: 0 PSTN user (phone), 1 VoIP user, 2 attached screen-share VoIP,
    /// 3 Linux SDK for VoIP, 4 attached voice PSTN, 5 attached video PSTN, 6 Linux SDK for PSTN.
    pub join_type: Option<i64>,
    /// Network: `wired`, `WIFI`, `2G`, `3G`, `4G` or `unknown`; only while in the meeting.
    pub net: Option<&'a str>,
    /// Client version; only while the person is in the meeting.
    pub app_version: Option<&'a str>,
    /// Microphone on.
    pub audio_state: Option<bool>,
    /// Camera on.
    pub video_state: Option<bool>,
    /// Sharing the screen.
    pub screen_shared_state: Option<bool>,
    /// The person's own data, when they joined through a personal link.
    pub customer_data: Option<&'a str>,
    /// Present (true) on a record made from Tencent's join event, before the upstream's list
    /// has it: the next reconciliation replaces it with the upstream's record.
    #[serde(skip_serializing_if = "is_false")]
    #[schema(value_type = Option<bool>)]
    pub provisional: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl<'a> ParticipantListResponse<'a> {
    fn new(head: &'a ListHead, participants: Vec<ParticipantResponse<'a>>) -> Self {
        let (complete, incomplete_reason) = match head.completeness {
            Completeness::Complete => (true, None),
            Completeness::TruncatedAtRecordCap => (
                false,
                Some(format!(
                    "the upstream serves at most {} records of one list; it counts {}",
                    RECORD_CAP,
                    head.total_count
                        .map_or("more".to_owned(), |t| t.to_string())
                )),
            ),
        };
        Self {
            meeting_id: head.meeting_id.as_deref(),
            meeting_code: head.meeting_code.as_deref(),
            subject: head.subject.as_deref(),
            schedule_start_time: head.schedule_start_time,
            schedule_end_time: head.schedule_end_time,
            total_count: head.total_count,
            complete,
            incomplete_reason,
            upstream_windows: head.windows,
            participants,
        }
    }
}

/// Decodes a base64 display name to text; bytes that are not UTF-8 become U+FFFD. A value that
/// is not base64 at all has no text form (`None`); its original stays in `user_name_base64`.
fn decode_name(base64: &str) -> Option<String> {
    let bytes = BASE64.decode(base64.trim()).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

impl<'a> From<&'a Participant> for ParticipantResponse<'a> {
    fn from(p: &'a Participant) -> Self {
        Self {
            user_name: p.user_name.as_deref().and_then(decode_name),
            user_name_base64: p.user_name.as_deref(),
            userid: p.userid.as_deref(),
            ms_open_id: p.ms_open_id.as_deref(),
            uuid: p.uuid.as_deref(),
            open_id: p.open_id.as_deref(),
            is_enterprise_user: p.is_enterprise_user,
            phone: p.phone.as_deref(),
            join_time: p.join_time,
            left_time: p.left_time,
            instanceid: p.instanceid,
            user_role: p.user_role,
            webinar_member_role: p.webinar_member_role,
            ip: p.ip.as_deref(),
            location: p.location.as_deref(),
            link_type: p.link_type.as_deref(),
            join_type: p.join_type,
            net: p.net.as_deref(),
            app_version: p.app_version.as_deref(),
            audio_state: p.audio_state,
            video_state: p.video_state,
            screen_shared_state: p.screen_shared_state,
            customer_data: p.customer_data.as_deref(),
            provisional: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::demo::LIVE_MEETING;
    use crate::upstream::Completeness;

    /// The live demo meeting's records, as the client decodes them, and its head.
    fn live_meeting() -> (ListHead, Vec<Participant>) {
        let dataset = crate::simulator::demo_dataset();
        let meeting = &dataset.meetings[LIVE_MEETING];
        let records: Vec<Participant> = meeting
            .records(None)
            .expect("a single meeting")
            .iter()
            .map(|r| serde_json::from_str(r.json.get()).expect("a record"))
            .collect();
        let head = ListHead {
            meeting_id: Some(meeting.meeting_id.clone()),
            meeting_code: Some(meeting.meeting_code.clone()),
            subject: Some(meeting.subject.clone()),
            schedule_start_time: Some(meeting.schedule_start_time),
            schedule_end_time: Some(meeting.schedule_end_time),
            total_count: Some(records.len() as i64),
            completeness: Completeness::Complete,
            pages: records.len().div_ceil(100) as u32,
            records: records.len(),
            still_in: records.iter().filter(|r| r.left_time.is_none()).count(),
            windows: 1,
        };
        (head, records)
    }

    /// The whole list serialized at once: the reference every stored form must equal.
    fn full_render(head: &ListHead, records: &[Participant]) -> Vec<u8> {
        let response = ParticipantListResponse::new(head, records.iter().map(Into::into).collect());
        serde_json::to_vec(&response).expect("serializes")
    }

    fn stored(head: &ListHead, records: &[Participant]) -> StoredList {
        let mut renderer = render();
        for page in records.chunks(PAGE_SIZE as usize) {
            renderer.page(page.to_vec());
        }
        renderer.finish(head)
    }

    #[test]
    fn a_list_rendered_page_by_page_is_the_whole_list_byte_for_byte() {
        let (head, records) = live_meeting();
        let list = stored(&head, &records);
        let reference = full_render(&head, &records);
        assert_eq!(list.document(false), reference);
        assert_eq!(list.document(true), reference);
        let empty = ListHead {
            records: 0,
            still_in: 0,
            total_count: Some(0),
            ..head
        };
        assert_eq!(
            stored(&empty, &[]).document(false),
            full_render(&empty, &[])
        );
    }

    #[test]
    fn a_patched_list_is_the_patched_list_rendered_whole_byte_for_byte() {
        let (head, mut records) = live_meeting();
        let list = stored(&head, &records);
        // 100 records in the middle change (people leave), 100 join at the end.
        let replaced: Vec<(usize, Participant)> = (550..650)
            .map(|i| {
                let mut record = records[i].clone();
                record.left_time = Some(record.join_time + 600);
                record.user_name = Some("5byg5LyfMTI=".into());
                (i, record)
            })
            .collect();
        let appended: Vec<Participant> = records[..100]
            .iter()
            .map(|r| Participant {
                join_time: r.join_time + 3600,
                left_time: None,
                ..r.clone()
            })
            .collect();
        for (i, record) in &replaced {
            records[*i] = record.clone();
        }
        records.extend(appended.iter().cloned());
        let head = ListHead {
            total_count: Some(records.len() as i64),
            records: records.len(),
            ..head
        };
        let patched = patch(&list, &head, &replaced, &appended).expect("applies");
        let reference = full_render(&head, &records);
        assert_eq!(patched.document(false), reference);
        assert_eq!(patched.document(true), reference);
        assert_eq!(patched.etag(false), stored(&head, &records).etag(false));
    }

    #[test]
    fn events_patch_the_list_into_what_a_whole_render_of_it_gives() {
        let (head, records) = live_meeting();
        let list = stored(&head, &records);
        // An open record in the middle (a person still in), and its uuid and device.
        let still_in = records
            .iter()
            .position(|r| r.left_time.is_none() && r.uuid.is_some())
            .expect("someone is still in");
        let open = &records[still_in];
        let newcomer = Participant {
            userid: Some("u-new".into()),
            uuid: Some("WM-new".into()),
            user_name: Some(BASE64.encode("新人").into()),
            join_time: 1_700_000_100,
            instanceid: Some(5),
            ..Participant::default()
        };
        let joined = [
            Joined {
                record: newcomer.clone(),
            },
            Joined {
                record: Participant {
                    uuid: Some("WM-other".into()),
                    join_time: 1_700_000_200,
                    instanceid: Some(1),
                    ..Participant::default()
                },
            },
        ];
        let left = [
            Left {
                uuid: open.uuid.as_deref().unwrap().to_owned(),
                instanceid: open.instanceid,
                left_time: 1_700_000_300,
            },
            // The newcomer leaves in the same batch: their provisional record is closed.
            Left {
                uuid: "WM-new".into(),
                instanceid: Some(5),
                left_time: 1_700_000_400,
            },
            Left {
                uuid: "WM-nobody".into(),
                instanceid: Some(1),
                left_time: 1_700_000_500,
            },
        ];
        let applied = apply_events(&list, &joined, &left);
        assert_eq!(applied.unmatched, [left[2].clone()]);
        let patched = applied.list.expect("changed");

        // The same list written whole: the closed record, and the provisional ones at the end.
        let mut expected_records = records.clone();
        expected_records[still_in].left_time = Some(1_700_000_300);
        let mut whole = full_render(&head, &expected_records);
        whole.truncate(whole.len() - LIST_TAIL.len());
        for (record, left_time) in [(&newcomer, Some(1_700_000_400)), (&joined[1].record, None)] {
            let record = Participant {
                left_time,
                ..record.clone()
            };
            let mut response = ParticipantResponse::from(&record);
            response.provisional = true;
            whole.push(b',');
            whole.extend(serde_json::to_vec(&response).unwrap());
        }
        whole.extend_from_slice(LIST_TAIL);
        for gzip in [false, true] {
            assert_eq!(patched.document(gzip), whole, "gzip: {gzip}");
        }
        assert_ne!(patched.etag(false), list.etag(false));
        let text = String::from_utf8(whole).unwrap();
        assert_eq!(text.matches("\"provisional\":true").count(), 2);

        // Nothing to do: nothing made.
        assert!(apply_events(&list, &[], &left[2..]).list.is_none());
    }

    #[test]
    fn names_decode_to_text_and_bad_bytes_are_replaced_not_refused() {
        assert_eq!(decode_name("5byg5LyfMTI=").as_deref(), Some("张伟12"));
        assert_eq!(decode_name("dBVzdDE=").as_deref(), Some("t\u{15}st1"));
        assert_eq!(decode_name("dGvzdDI=").as_deref(), Some("tk\u{fffd}t2"));
        assert_eq!(decode_name("not base64!"), None);
    }
}
