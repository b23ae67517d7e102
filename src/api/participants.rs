//! `GET /meetings/{meeting_id}/participants`: the whole list, merged, decoded and typed.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use crate::app::{AppState, Authorized};
use crate::cache::wants_refresh;
use crate::error::ApiError;
use crate::upstream::{
    Completeness, InvalidParameter, Operator, Participant, ParticipantList, ParticipantsQuery,
};

pub async fn list_participants(
    _: Authorized,
    State(state): State<AppState>,
    meeting_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meeting_id = meeting_id.map_err(|_| invalid("meeting_id", "must be decimal digits"))?;
    let query = parse_query(&meeting_id, raw.as_deref(), state.default_operator())?;
    let served = state.cache().get(&query, wants_refresh(&headers)).await?;
    Ok(served.into_response(&headers))
}

/// `DELETE /meetings/{meeting_id}/participants/cache`: forgets every cached list of a meeting.
pub async fn drop_cached(
    _: Authorized,
    State(state): State<AppState>,
    meeting_id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let meeting_id = meeting_id.map_err(|_| invalid("meeting_id", "must be decimal digits"))?;
    let meeting_id = crate::upstream::query::meeting_id(&meeting_id)?;
    state.cache().invalidate_meeting(&meeting_id);
    Ok(StatusCode::NO_CONTENT)
}

/// The response body for a fetched list: rendered once per fetch, then served from the cache.
pub fn render(list: ParticipantList) -> Vec<u8> {
    serde_json::to_vec(&ParticipantListResponse::from(list)).expect("the response serializes")
}

fn invalid(parameter: &'static str, reason: &str) -> InvalidParameter {
    InvalidParameter::new(parameter, reason)
}

/// The query string, checked against every rule before any upstream call.
pub fn parse_query(
    meeting_id: &str,
    raw: Option<&str>,
    default_operator: Option<&Operator>,
) -> Result<ParticipantsQuery, InvalidParameter> {
    const KNOWN: [&str; 6] = [
        "sub_meeting_id",
        "start_time",
        "end_time",
        "userid",
        "operator_id",
        "operator_id_type",
    ];
    let mut values: [Option<String>; 6] = Default::default();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let Some(index) = KNOWN.iter().position(|k| *k == key) else {
            continue; // Unknown parameters (cache busters and the like) are ignored.
        };
        if values[index].replace(value.into_owned()).is_some() {
            return Err(invalid(KNOWN[index], "may be given only once"));
        }
    }
    let [
        sub_meeting_id,
        start_time,
        end_time,
        userid,
        operator_id,
        operator_id_type,
    ] = values;
    let time = |name: &'static str, value: Option<String>| {
        value
            .map(|v| {
                if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(name, "must be unix seconds (up to 12 digits)"));
                }
                v.parse::<i64>()
                    .map_err(|_| invalid(name, "must be unix seconds"))
            })
            .transpose()
    };
    let (start_time, end_time) = (time("start_time", start_time)?, time("end_time", end_time)?);
    let operator = match (userid, operator_id, operator_id_type) {
        (Some(_), Some(_), _) => {
            return Err(invalid(
                "operator_id",
                "give either userid or operator_id, not both",
            ));
        }
        (Some(_), None, Some(_)) => {
            return Err(invalid("operator_id_type", "goes only with operator_id"));
        }
        (Some(userid), None, None) => Operator::user_id(&userid)?,
        (None, Some(_), None) => {
            return Err(invalid(
                "operator_id_type",
                "is required with operator_id (3: rooms id)",
            ));
        }
        (None, None, Some(_)) => {
            return Err(invalid("operator_id", "is required with operator_id_type"));
        }
        (None, Some(id), Some(id_type)) => {
            let id_type = id_type
                .parse::<u8>()
                .map_err(|_| invalid("operator_id_type", "must be 3 (rooms id)"))?;
            Operator::operator_id(&id, id_type)?
        }
        (None, None, None) => default_operator.cloned().ok_or_else(|| {
            invalid(
                "userid",
                "is required: the gateway has no default operator configured",
            )
        })?,
    };
    let mut query =
        ParticipantsQuery::new(meeting_id, operator)?.with_window(start_time, end_time)?;
    if let Some(sub) = sub_meeting_id {
        query = query.with_sub_meeting(&sub)?;
    }
    Ok(query)
}

/// A meeting's participant list, merged from every upstream page. Field names are Tencent's.
#[derive(Debug, Serialize)]
pub struct ParticipantListResponse {
    pub meeting_id: Option<String>,
    pub meeting_code: Option<String>,
    pub subject: Option<String>,
    /// Unix seconds.
    pub schedule_start_time: Option<i64>,
    /// Unix seconds.
    pub schedule_end_time: Option<i64>,
    /// Participation records the upstream counts (a person joining twice counts twice).
    pub total_count: Option<i64>,
    /// False when the list could not be fetched whole; `incomplete_reason` says why.
    pub complete: bool,
    pub incomplete_reason: Option<String>,
    /// One record per joining, in the upstream's order.
    pub participants: Vec<ParticipantResponse>,
}

/// One participation record: one person joining once.
#[derive(Debug, Serialize)]
pub struct ParticipantResponse {
    pub userid: Option<String>,
    pub ms_open_id: Option<String>,
    pub uuid: Option<String>,
    pub open_id: Option<String>,
    /// The display name as text (bytes that are not UTF-8 replaced by U+FFFD).
    pub user_name: Option<String>,
    /// The display name exactly as the upstream sent it (base64).
    pub user_name_base64: Option<String>,
    pub is_enterprise_user: Option<bool>,
    pub phone: Option<String>,
    /// Unix seconds.
    pub join_time: i64,
    /// Unix seconds; null while the person is still in the meeting.
    pub left_time: Option<i64>,
    pub instanceid: Option<i64>,
    pub user_role: Option<i64>,
    pub webinar_member_role: Option<i64>,
    #[serde(rename = "IP")]
    pub ip: Option<String>,
    pub location: Option<String>,
    pub link_type: Option<String>,
    pub join_type: Option<i64>,
    pub net: Option<String>,
    pub app_version: Option<String>,
    pub audio_state: Option<bool>,
    pub video_state: Option<bool>,
    pub screen_shared_state: Option<bool>,
    pub customer_data: Option<String>,
}

impl From<ParticipantList> for ParticipantListResponse {
    fn from(list: ParticipantList) -> Self {
        let (complete, incomplete_reason) = match list.completeness {
            Completeness::Complete => (true, None),
            Completeness::TruncatedAtRecordCap => (
                false,
                Some(format!(
                    "the upstream serves at most {} records of one list; it counts {}",
                    crate::upstream::RECORD_CAP,
                    list.total_count
                        .map_or("more".to_owned(), |t| t.to_string())
                )),
            ),
        };
        Self {
            meeting_id: list.meeting_id,
            meeting_code: list.meeting_code,
            subject: list.subject,
            schedule_start_time: list.schedule_start_time,
            schedule_end_time: list.schedule_end_time,
            total_count: list.total_count,
            complete,
            incomplete_reason,
            participants: list.participants.into_iter().map(Into::into).collect(),
        }
    }
}

/// Decodes a base64 display name to text; bytes that are not UTF-8 become U+FFFD. A value that
/// is not base64 at all has no text form (`None`); its original stays in `user_name_base64`.
pub fn decode_name(base64: &str) -> Option<String> {
    let bytes = BASE64.decode(base64.trim()).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

impl From<Participant> for ParticipantResponse {
    fn from(p: Participant) -> Self {
        let text = |s: Option<Box<str>>| s.map(String::from);
        Self {
            user_name: p.user_name.as_deref().and_then(decode_name),
            user_name_base64: text(p.user_name),
            userid: text(p.userid),
            ms_open_id: text(p.ms_open_id),
            uuid: text(p.uuid),
            open_id: text(p.open_id),
            is_enterprise_user: p.is_enterprise_user,
            phone: text(p.phone),
            join_time: p.join_time,
            left_time: p.left_time,
            instanceid: p.instanceid,
            user_role: p.user_role,
            webinar_member_role: p.webinar_member_role,
            ip: text(p.ip),
            location: text(p.location),
            link_type: text(p.link_type),
            join_type: p.join_type,
            net: text(p.net),
            app_version: text(p.app_version),
            audio_state: p.audio_state,
            video_state: p.video_state,
            screen_shared_state: p.screen_shared_state,
            customer_data: text(p.customer_data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decode_to_text_and_bad_bytes_are_replaced_not_refused() {
        assert_eq!(decode_name("5byg5LyfMTI=").as_deref(), Some("张伟12"));
        assert_eq!(decode_name("dBVzdDE=").as_deref(), Some("t\u{15}st1"));
        assert_eq!(decode_name("dGvzdDI=").as_deref(), Some("tk\u{fffd}t2"));
        assert_eq!(decode_name("not base64!"), None);
    }

    fn parse(raw: &str) -> Result<ParticipantsQuery, InvalidParameter> {
        parse_query("100000000000000001", Some(raw), None)
    }

    #[test]
    fn every_rule_names_the_parameter_it_broke() {
        let cases = [
            ("userid=a&operator_id=b&operator_id_type=3", "operator_id"),
            ("operator_id=b", "operator_id_type"),
            ("operator_id_type=3", "operator_id"),
            ("userid=a&operator_id_type=3", "operator_id_type"),
            ("operator_id=b&operator_id_type=1", "operator_id_type"),
            ("userid=a&userid=b", "userid"),
            ("userid=a&start_time=20&end_time=10", "start_time"),
            ("userid=a&start_time=-1", "start_time"),
            ("userid=a&end_time=1e9", "end_time"),
            ("userid=a&sub_meeting_id=..%2F1", "sub_meeting_id"),
            ("userid=..%2Fadmin", "userid"),
            ("userid=a%26pos%3D5", "userid"),
            ("userid=a%23b", "userid"),
            ("userid=a%3Fb", "userid"),
            ("", "userid"),
        ];
        for (raw, parameter) in cases {
            assert_eq!(parse(raw).expect_err(raw).parameter, parameter, "{raw}");
        }
    }

    #[test]
    fn a_default_operator_applies_only_when_the_caller_names_none() {
        let admin = Operator::user_id("admin").unwrap();
        let q = parse_query("1", None, Some(&admin)).unwrap();
        assert_eq!(q.operator(), &admin);
        let q = parse_query("1", Some("userid=owner1&_=123"), Some(&admin)).unwrap();
        assert_eq!(q.operator(), &Operator::user_id("owner1").unwrap());
    }
}
