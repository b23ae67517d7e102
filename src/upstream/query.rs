//! What to fetch: a validated participants query, and the exact request target sent for it.
//!
//! Every value reaching the upstream passes through here: ids are digits only, operator ids a
//! small safe charset, and every query value is percent-encoded, so no input can change the
//! upstream path or add parameters.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a query value: RFC 3986 unreserved, as Python's
/// `urllib.parse.quote_plus` (and so Tencent's SDK) leaves them.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The parameters a caller may give, as the upstream names them; a name that contains another
/// comes before it.
pub const PARAMETERS: [&str; 7] = [
    "sub_meeting_id",
    "meeting_id",
    "operator_id_type",
    "operator_id",
    "userid",
    "start_time",
    "end_time",
];

/// Longest meeting or sub-meeting id accepted.
pub const MAX_ID_DIGITS: usize = 32;
/// Longest `userid` or `operator_id` accepted.
pub const MAX_OPERATOR_LEN: usize = 64;
/// Widest time window the upstream accepts, in seconds (31 days).
pub const MAX_WINDOW_SECS: i64 = 31 * 24 * 3600;
/// How much younger than 31 days a lone `start_time` or `end_time` must be. The upstream fills
/// the missing bound from its own clock when each page is asked for, later than the gateway
/// checks: this covers a whole fetch (5 minutes by default) and some clock difference.
pub const LONE_BOUND_SLACK_SECS: i64 = 10 * 60;

/// Why a query value was refused; `parameter` names the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{parameter}`: {reason}")]
pub struct InvalidParameter {
    /// The parameter's public name.
    pub parameter: &'static str,
    /// What is wrong with it, safe to show to the caller.
    pub reason: String,
}

impl InvalidParameter {
    pub fn new(parameter: &'static str, reason: impl Into<String>) -> Self {
        Self {
            parameter,
            reason: reason.into(),
        }
    }
}

fn digits(parameter: &'static str, value: &str) -> Result<String, InvalidParameter> {
    if value.is_empty() || value.len() > MAX_ID_DIGITS || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(InvalidParameter::new(
            parameter,
            format!("must be 1 to {MAX_ID_DIGITS} decimal digits"),
        ));
    }
    Ok(value.to_owned())
}

/// A meeting id as the upstream takes it: 1 to 32 decimal digits.
pub fn meeting_id(value: &str) -> Result<String, InvalidParameter> {
    digits("meeting_id", value)
}

/// Who the upstream call is made on behalf of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    /// An enterprise user id (`userid`).
    UserId(String),
    /// An `operator_id` with its `operator_id_type` (3 = rooms id, the only type Tencent supports).
    OperatorId { id: String, id_type: u8 },
}

impl Operator {
    /// A `userid`: ASCII letters, digits and `-_.@+`, at most 64 characters.
    pub fn user_id(value: &str) -> Result<Self, InvalidParameter> {
        Ok(Self::UserId(operator_text("userid", value)?))
    }

    /// An `operator_id` of the given type; only type 3 (rooms id) is accepted.
    pub fn operator_id(value: &str, id_type: u8) -> Result<Self, InvalidParameter> {
        if id_type != 3 {
            return Err(InvalidParameter::new(
                "operator_id_type",
                "must be 3 (rooms id), the only type the upstream supports",
            ));
        }
        Ok(Self::OperatorId {
            id: operator_text("operator_id", value)?,
            id_type,
        })
    }
}

fn operator_text(parameter: &'static str, value: &str) -> Result<String, InvalidParameter> {
    // Tencent's user ids are ASCII ("Chinese not supported", says its create-user API), and an
    // ASCII class means the same in ECMA-262 (the OpenAPI dialect) as here, so the spec's
    // pattern states exactly this check.
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+');
    if value.is_empty() || value.len() > MAX_OPERATOR_LEN || !value.bytes().all(allowed) {
        return Err(InvalidParameter::new(
            parameter,
            format!("must be 1 to {MAX_OPERATOR_LEN} ASCII letters, digits or `-_.@+`"),
        ));
    }
    Ok(value.to_owned())
}

/// One participant list to fetch, every part validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParticipantsQuery {
    meeting_id: String,
    sub_meeting_id: Option<String>,
    operator: Operator,
    start_time: Option<i64>,
    end_time: Option<i64>,
}

impl ParticipantsQuery {
    /// A query for a meeting's whole list, on behalf of `operator`.
    pub fn new(meeting_id: &str, operator: Operator) -> Result<Self, InvalidParameter> {
        Ok(Self {
            meeting_id: self::meeting_id(meeting_id)?,
            sub_meeting_id: None,
            operator,
            start_time: None,
            end_time: None,
        })
    }

    /// Restricts the query to one sub-meeting of a recurring meeting.
    pub fn with_sub_meeting(mut self, sub_meeting_id: &str) -> Result<Self, InvalidParameter> {
        self.sub_meeting_id = Some(digits("sub_meeting_id", sub_meeting_id)?);
        Ok(self)
    }

    /// Restricts the query to a time window (unix seconds), checked by the upstream's rules with
    /// `now` as the current time: a missing end is now, a missing start is 31 days before now;
    /// start may not be after end, and the window may span at most 31 days. A bound given alone
    /// must be [`LONE_BOUND_SLACK_SECS`] younger than 31 days, so that the upstream still accepts
    /// it on the fetch's last page. The values are sent as given.
    pub fn with_window(
        mut self,
        start_time: Option<i64>,
        end_time: Option<i64>,
        now: i64,
    ) -> Result<Self, InvalidParameter> {
        for (name, value) in [("start_time", start_time), ("end_time", end_time)] {
            if value.is_some_and(|t| t < 0) {
                return Err(InvalidParameter::new(name, "must not be negative"));
            }
        }
        let within_last_31_days =
            |t: i64| (now - MAX_WINDOW_SECS + LONE_BOUND_SLACK_SECS..=now).contains(&t);
        match (start_time, end_time) {
            (Some(start), Some(end)) if start > end => {
                return Err(InvalidParameter::new(
                    "start_time",
                    "must not be after end_time",
                ));
            }
            (Some(start), Some(end)) if end - start > MAX_WINDOW_SECS => {
                return Err(InvalidParameter::new(
                    "end_time",
                    "the window from start_time to end_time may span at most 31 days",
                ));
            }
            (Some(start), None) if !within_last_31_days(start) => {
                return Err(InvalidParameter::new(
                    "start_time",
                    "without end_time the window ends now, so start_time must be within the last 31 days (less 10 minutes)",
                ));
            }
            (None, Some(end)) if !within_last_31_days(end) => {
                return Err(InvalidParameter::new(
                    "end_time",
                    "without start_time the window starts 31 days ago, so end_time must be within the last 31 days (less 10 minutes)",
                ));
            }
            _ => {}
        }
        self.start_time = start_time;
        self.end_time = end_time;
        Ok(self)
    }

    pub fn meeting_id(&self) -> &str {
        &self.meeting_id
    }

    pub fn sub_meeting_id(&self) -> Option<&str> {
        self.sub_meeting_id.as_deref()
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    pub fn window(&self) -> (Option<i64>, Option<i64>) {
        (self.start_time, self.end_time)
    }

    /// The request target for one page: path, then the query with every value percent-encoded,
    /// in a fixed order. These are the bytes that are signed and sent.
    pub fn page_target(&self, pos: i64, size: u32) -> String {
        let mut target = String::with_capacity(160);
        // The id is digits only, so it needs no encoding and cannot form a `..` segment.
        let _ = write!(target, "/v1/meetings/{}/participants?", self.meeting_id);
        let mut pair = |key: &str, value: &str| {
            if !target.ends_with('?') {
                target.push('&');
            }
            target.push_str(key);
            target.push('=');
            target.extend(utf8_percent_encode(value, QUERY_VALUE));
        };
        if let Some(sub) = &self.sub_meeting_id {
            pair("sub_meeting_id", sub);
        }
        match &self.operator {
            Operator::UserId(user) => pair("userid", user),
            Operator::OperatorId { id, id_type } => {
                pair("operator_id", id);
                pair("operator_id_type", &id_type.to_string());
            }
        }
        if let Some(start) = self.start_time {
            pair("start_time", &start.to_string());
        }
        if let Some(end) = self.end_time {
            pair("end_time", &end.to_string());
        }
        pair("pos", &pos.to_string());
        pair("size", &size.to_string());
        target
    }
}

/// Percent-encodes one query value exactly as [`ParticipantsQuery::page_target`] does.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_digits_of_bounded_length() {
        let op = || Operator::user_id("owner1").expect("valid");
        assert!(ParticipantsQuery::new("144115214488302892", op()).is_ok());
        for bad in [
            "",
            "12a",
            "../1",
            "1%2F2",
            "1?x=1",
            "1#",
            &"9".repeat(33),
            "１２",
        ] {
            let err = ParticipantsQuery::new(bad, op()).expect_err(bad);
            assert_eq!(err.parameter, "meeting_id");
        }
        let err = ParticipantsQuery::new("1", op())
            .and_then(|q| q.with_sub_meeting("1&pos=9"))
            .expect_err("sub");
        assert_eq!(err.parameter, "sub_meeting_id");
    }

    #[test]
    fn operator_values_are_a_safe_charset() {
        assert!(Operator::user_id("zhang.san-01@corp+1_x").is_ok());
        for bad in [
            "",
            "张三",
            "é",
            "a/b",
            "a b",
            "a&b",
            "a?b",
            "a#b",
            "a%2Fb",
            &"x".repeat(65),
        ] {
            assert_eq!(Operator::user_id(bad).expect_err(bad).parameter, "userid");
        }
        assert_eq!(
            Operator::operator_id("room", 1)
                .expect_err("type")
                .parameter,
            "operator_id_type"
        );
    }

    #[test]
    fn windows_follow_the_upstream_rules() {
        let q = ParticipantsQuery::new("1", Operator::user_id("u").expect("valid")).expect("q");
        let now = 1_800_000_000;
        let refused = |start, end| {
            q.clone()
                .with_window(start, end, now)
                .map(|_| ())
                .map_err(|e| e.parameter)
        };
        assert_eq!(refused(Some(10), Some(10)), Ok(()));
        assert_eq!(refused(Some(0), Some(MAX_WINDOW_SECS)), Ok(()));
        assert_eq!(refused(Some(11), Some(10)), Err("start_time"));
        assert_eq!(refused(Some(0), Some(MAX_WINDOW_SECS + 1)), Err("end_time"));
        assert_eq!(refused(Some(-1), None), Err("start_time"));
        assert_eq!(refused(None, Some(-1)), Err("end_time"));
        // A missing end is now; a missing start is 31 days before now; with slack for the time
        // a fetch takes.
        let oldest = now - MAX_WINDOW_SECS + LONE_BOUND_SLACK_SECS;
        assert_eq!(refused(Some(oldest), None), Ok(()));
        assert_eq!(refused(Some(now), None), Ok(()));
        assert_eq!(refused(Some(oldest - 1), None), Err("start_time"));
        assert_eq!(refused(Some(now + 1), None), Err("start_time"));
        assert_eq!(refused(None, Some(oldest)), Ok(()));
        assert_eq!(refused(None, Some(oldest - 1)), Err("end_time"));
        assert_eq!(refused(None, Some(now + 1)), Err("end_time"));
    }

    #[test]
    fn targets_encode_every_value_and_keep_a_fixed_order() {
        let q = ParticipantsQuery::new(
            "100000000000000003",
            Operator::user_id("zs@corp+1").expect("ok"),
        )
        .and_then(|q| q.with_sub_meeting("1717000001"))
        .and_then(|q| q.with_window(Some(1700000000), Some(1700086400), 1700086400))
        .expect("valid");
        assert_eq!(
            q.page_target(5678, 100),
            "/v1/meetings/100000000000000003/participants?sub_meeting_id=1717000001\
             &userid=zs%40corp%2B1&start_time=1700000000&end_time=1700086400&pos=5678&size=100"
        );
        assert_eq!(
            encode_query_value("a/b?c&d=e#f%g"),
            "a%2Fb%3Fc%26d%3De%23f%25g"
        );
    }

    /// Every value the SDK's vectors carry is encoded by us exactly as Tencent's SDK encodes it.
    #[test]
    fn query_values_are_encoded_as_the_official_sdk_encodes_them() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/signing_vectors.json"))
                .expect("fixture");
        let mut checked = 0;
        for v in fixture["vectors"].as_array().expect("vectors") {
            let target = v["target"].as_str().expect("target");
            let Some((_, query)) = target.split_once('?') else {
                continue;
            };
            let pairs = v["query"].as_array().expect("query");
            if pairs.is_empty() {
                continue;
            }
            let ours: Vec<String> = pairs
                .iter()
                .map(|p| {
                    let key = p[0].as_str().expect("key");
                    format!(
                        "{key}={}",
                        encode_query_value(p[1].as_str().expect("value"))
                    )
                })
                .collect();
            assert_eq!(ours.join("&"), query);
            checked += 1;
        }
        assert!(checked >= 8);
    }
}
