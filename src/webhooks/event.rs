//! The events inside a delivery, decoded leniently: Tencent's examples give `operate_time` as
//! milliseconds or as a date, ids as strings or numbers, and older deliveries carry
//! `unique_sequence` where newer ones carry `trace_id`.

use serde::Deserialize;
use serde_json::Value;

/// One delivery's event: its kind, its id (for ignoring repeated deliveries) and what it is
/// about, one payload per meeting.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub event: String,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    unique_sequence: Option<String>,
    #[serde(default)]
    pub payload: Vec<Payload>,
}

impl Event {
    /// What identifies this delivery among Tencent's retries.
    pub fn id(&self) -> Option<&str> {
        self.trace_id
            .as_deref()
            .or(self.unique_sequence.as_deref())
            .filter(|id| !id.is_empty())
    }

    /// The kind of event, for the events that concern participant lists.
    pub fn kind(&self) -> Kind {
        match self.event.as_str() {
            "meeting.participant-joined" => Kind::Joined,
            "meeting.participant-left" => Kind::Left,
            "meeting.started" => Kind::Started,
            "meeting.end" => Kind::Ended,
            "meeting.updated" => Kind::Updated,
            "meeting.canceled" => Kind::Canceled,
            _ => Kind::Other,
        }
    }
}

/// The events that concern participant lists; the rest are acknowledged and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Joined,
    Left,
    Started,
    Ended,
    Updated,
    Canceled,
    Other,
}

impl Kind {
    /// A stable name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "participant_joined",
            Self::Left => "participant_left",
            Self::Started => "started",
            Self::Ended => "ended",
            Self::Updated => "updated",
            Self::Canceled => "canceled",
            Self::Other => "other",
        }
    }
}

/// What one event says about one meeting.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Payload {
    #[serde(default)]
    operate_time: Value,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub meeting_info: MeetingInfo,
}

impl Payload {
    /// When it happened, in unix milliseconds, when given as a number (or a string of digits).
    pub fn operate_time_ms(&self) -> Option<i64> {
        match &self.operate_time {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Who joined or left.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Operator {
    #[serde(default, deserialize_with = "text")]
    pub userid: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub open_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub uuid: Option<String>,
    /// The display name, as plain text.
    #[serde(default, deserialize_with = "text")]
    pub user_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub ms_open_id: Option<String>,
    /// The device's instance (a string in Tencent's events, a number in its lists).
    #[serde(default, deserialize_with = "text")]
    pub instance_id: Option<String>,
}

/// The meeting an event is about.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MeetingInfo {
    #[serde(default, deserialize_with = "text")]
    pub meeting_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub meeting_code: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub sub_meeting_id: Option<String>,
}

/// A string, or a number taken as its digits; anything else is absent.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tencent_s_example_event_decodes() {
        use base64::Engine as _;
        let data = include_str!("../../tests/fixtures/webhook_vector.txt").trim_end();
        let json = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(data)
            .unwrap();
        let event: Event = serde_json::from_slice(&json).unwrap();
        assert_eq!(event.kind(), Kind::Other);
        assert_eq!(event.id(), Some("f20096ee-8ac8-4df2-a7de-0574649f211b"));
        let payload = &event.payload[0];
        assert_eq!(
            payload.meeting_info.meeting_id.as_deref(),
            Some("6058890385480921052")
        );
        // "2020-12-29 17:41:06": a date, not milliseconds.
        assert_eq!(payload.operate_time_ms(), None);
    }

    #[test]
    fn a_join_event_gives_who_joined_and_when() {
        let event: Event = serde_json::from_str(
            r#"{"event":"meeting.participant-joined","trace_id":"tr-1","payload":[
                {"operate_time":1609239040864,
                 "operator":{"userid":"u1","uuid":"WM1","user_name":"张三","ms_open_id":"ms1",
                             "instance_id":"2"},
                 "meeting_info":{"meeting_id":"100000000000000001","meeting_type":0}}]}"#,
        )
        .unwrap();
        assert_eq!(event.kind(), Kind::Joined);
        assert_eq!(event.id(), Some("tr-1"));
        let payload = &event.payload[0];
        assert_eq!(payload.operate_time_ms(), Some(1_609_239_040_864));
        assert_eq!(payload.operator.user_name.as_deref(), Some("张三"));
        assert_eq!(payload.operator.instance_id.as_deref(), Some("2"));
        // Numbers where strings are expected are taken as their digits.
        let event: Event = serde_json::from_str(
            r#"{"event":"meeting.participant-left","payload":[{"operator":{"instance_id":5},
                "meeting_info":{"meeting_id":100000000000000001}}]}"#,
        )
        .unwrap();
        assert_eq!(event.kind(), Kind::Left);
        assert_eq!(event.id(), None);
        assert_eq!(event.payload[0].operator.instance_id.as_deref(), Some("5"));
        assert_eq!(
            event.payload[0].meeting_info.meeting_id.as_deref(),
            Some("100000000000000001")
        );
    }
}
