//! What to fetch: the participants query's parameters as callers give them, every rule that
//! checks them, the validated query, and the exact request target sent for it.
//!
//! This is the query's one home: [`ParticipantsParams`] documents the parameters (the OpenAPI
//! document derives them from it) and [`ParticipantsParams::into_query`] applies every rule,
//! each refusal naming its parameter. Every value reaching the upstream passes through here: ids
//! are digits only, operator ids a small safe charset, and every query value is percent-encoded,
//! so no input can change the upstream path or add parameters.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use utoipa::IntoParams;

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
const MAX_ID_DIGITS: usize = 32;
/// Longest `userid` or `operator_id` accepted.
const MAX_OPERATOR_LEN: usize = 64;
/// Widest time window the upstream accepts, in seconds (31 days).
pub const MAX_WINDOW_SECS: i64 = 31 * 24 * 3600;
/// Most upstream windows one list may take: a caller's `start_time`..`end_time` spans at most
/// this many times 31 days (372 days), fetched a window after another.
pub const MAX_WINDOWS: i64 = 12;
/// How much younger than 31 days a lone `start_time` or `end_time` must be. The upstream fills
/// the missing bound from its own clock when each page is asked for, later than the gateway
/// checks: this covers a whole fetch (5 minutes by default) and some clock difference.
const LONE_BOUND_SLACK_SECS: i64 = 10 * 60;

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
        return Err(not_an_id(parameter));
    }
    Ok(value.to_owned())
}

fn not_an_id(parameter: &'static str) -> InvalidParameter {
    InvalidParameter::new(
        parameter,
        format!("must be 1 to {MAX_ID_DIGITS} decimal digits"),
    )
}

/// The refusal of a meeting id that breaks [`meeting_id`]'s rule, or does not even decode.
pub fn not_a_meeting_id() -> InvalidParameter {
    not_an_id("meeting_id")
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

/// The participants query's parameters, as a caller gives them in the query string: raw text,
/// no rule applied yet. The OpenAPI document's parameters come from this type, so their limits
/// are stated here, beside the checks in [`ParticipantsParams::into_query`] that they describe.
#[derive(Debug, Default, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParticipantsParams {
    /// The sub-meeting of a recurring meeting (`current_sub_meeting_id` in Tencent's meeting
    /// APIs). Required for recurring meetings.
    #[param(value_type = Option<String>, min_length = 1, max_length = 32, pattern = r"^[0-9]{1,32}$", example = "1717000001")]
    sub_meeting_id: Option<String>,
    /// Only participations from this time on (unix seconds). Not after `end_time`. With
    /// `end_time`, the window may span up to 372 days: past 31 days it is fetched as
    /// consecutive 31-day windows (`upstream_windows` in the answer says how many). Without
    /// `end_time` the window ends now, so `start_time` must be within the last 31 days (less 10
    /// minutes, for the time a fetch takes). The upstream ignores the window for recurring
    /// meetings.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 999_999_999_999_i64)]
    start_time: Option<String>,
    /// Only participations until this time (unix seconds). Not before `start_time`; see
    /// `start_time` for how long the window may be. Without `start_time` the window starts 31
    /// days ago, so `end_time` must be within the last 31 days (less 10 minutes).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 999_999_999_999_i64)]
    end_time: Option<String>,
    /// Read the list on behalf of this enterprise user (the meeting's creator or an enterprise
    /// admin), instead of the gateway's configured operator. Not with `operator_id`.
    #[param(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._@+-]{1,64}$", example = "owner1")]
    userid: Option<String>,
    /// Read the list on behalf of this operator instead; requires `operator_id_type`. Not with
    /// `userid`.
    #[param(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._@+-]{1,64}$")]
    operator_id: Option<String>,
    /// The kind of `operator_id`: 3 (a Rooms id) is the only one the upstream supports. Only
    /// with `operator_id`.
    #[param(value_type = Option<u8>, minimum = 3, maximum = 3)]
    operator_id_type: Option<String>,
}

/// Longest `start_time` or `end_time` accepted, in digits (the spec's maximum is 12 nines).
const MAX_TIME_DIGITS: usize = 12;

impl ParticipantsParams {
    /// Reads the known parameters from a raw query string (percent-decoded, `+` as a space, as
    /// HTML forms send them). Unknown parameters (cache busters and the like) are ignored; a
    /// known one given twice is refused.
    pub fn from_query_string(raw: &str) -> Result<Self, InvalidParameter> {
        let mut params = Self::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let (name, slot) = match &*key {
                "sub_meeting_id" => ("sub_meeting_id", &mut params.sub_meeting_id),
                "start_time" => ("start_time", &mut params.start_time),
                "end_time" => ("end_time", &mut params.end_time),
                "userid" => ("userid", &mut params.userid),
                "operator_id" => ("operator_id", &mut params.operator_id),
                "operator_id_type" => ("operator_id_type", &mut params.operator_id_type),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(InvalidParameter::new(name, "may be given only once"));
            }
        }
        Ok(params)
    }

    /// Applies every rule and builds the query for `meeting_id`, with `now` (unix seconds) as
    /// the current time for the window rules. `default_operator` is used when the caller names
    /// none. Each refusal names the parameter that broke a rule.
    pub fn into_query(
        self,
        meeting_id: &str,
        default_operator: Option<&Operator>,
        now: i64,
    ) -> Result<ParticipantsQuery, InvalidParameter> {
        let start_time = unix_seconds("start_time", self.start_time)?;
        let end_time = unix_seconds("end_time", self.end_time)?;
        let operator = match (self.userid, self.operator_id, self.operator_id_type) {
            (Some(_), Some(_), _) => {
                return Err(InvalidParameter::new(
                    "operator_id",
                    "give either userid or operator_id, not both",
                ));
            }
            (Some(_), None, Some(_)) => {
                return Err(InvalidParameter::new(
                    "operator_id_type",
                    "goes only with operator_id",
                ));
            }
            (Some(userid), None, None) => Operator::user_id(&userid)?,
            (None, Some(_), None) => {
                return Err(InvalidParameter::new(
                    "operator_id_type",
                    "is required with operator_id (3: rooms id)",
                ));
            }
            (None, None, Some(_)) => {
                return Err(InvalidParameter::new(
                    "operator_id",
                    "is required with operator_id_type",
                ));
            }
            (None, Some(id), Some(id_type)) => {
                let id_type = id_type.parse::<u8>().map_err(|_| {
                    InvalidParameter::new("operator_id_type", "must be 3 (rooms id)")
                })?;
                Operator::operator_id(&id, id_type)?
            }
            (None, None, None) => default_operator.cloned().ok_or_else(|| {
                InvalidParameter::new(
                    "userid",
                    "is required: the gateway has no default operator configured",
                )
            })?,
        };
        let mut query =
            ParticipantsQuery::new(meeting_id, operator)?.with_window(start_time, end_time, now)?;
        if let Some(sub) = self.sub_meeting_id {
            query = query.with_sub_meeting(&sub)?;
        }
        Ok(query)
    }
}

/// A time parameter: unix seconds, up to 12 digits.
fn unix_seconds(
    parameter: &'static str,
    value: Option<String>,
) -> Result<Option<i64>, InvalidParameter> {
    let Some(value) = value else {
        return Ok(None);
    };
    let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || value.len() > MAX_TIME_DIGITS {
        return Err(InvalidParameter::new(
            parameter,
            format!("must be unix seconds (up to {MAX_TIME_DIGITS} digits)"),
        ));
    }
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| InvalidParameter::new(parameter, "must be unix seconds"))
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
    /// start may not be after end. Both bounds given may span up to [`MAX_WINDOWS`] upstream
    /// windows of 31 days ([`ParticipantsQuery::windows`] splits them). A bound given alone
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
            (Some(start), Some(end)) if end - start > MAX_WINDOWS * MAX_WINDOW_SECS => {
                return Err(InvalidParameter::new(
                    "end_time",
                    format!(
                        "the window from start_time to end_time may span at most {} days ({MAX_WINDOWS} upstream windows of 31 days)",
                        MAX_WINDOWS * 31
                    ),
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

    /// The queries the upstream is asked, one after another, to make this list: the query itself
    /// when its window spans at most 31 days; otherwise consecutive 31-day windows, each
    /// starting at the second the one before ends (a record whose session spans that second is
    /// in both; the client keeps it once).
    pub fn windows(&self) -> Vec<ParticipantsQuery> {
        let (Some(start), Some(end)) = (self.start_time, self.end_time) else {
            return vec![self.clone()];
        };
        if end - start <= MAX_WINDOW_SECS {
            return vec![self.clone()];
        }
        let mut windows = Vec::new();
        let mut from = start;
        while from < end {
            let to = (from + MAX_WINDOW_SECS).min(end);
            windows.push(Self {
                start_time: Some(from),
                end_time: Some(to),
                ..self.clone()
            });
            from = to;
        }
        windows
    }

    /// Whether this list would hold a record of `sub_meeting_id` (an event's, if it names one)
    /// at `time` (unix seconds): the same sub-meeting, and the time inside its window. A list
    /// without an end is read up to now, so a later time is inside it.
    pub fn covers(&self, sub_meeting_id: Option<&str>, time: i64) -> bool {
        let sub_matches = sub_meeting_id.is_none_or(|sub| self.sub_meeting_id() == Some(sub));
        sub_matches
            && self.start_time.is_none_or(|start| start <= time)
            && self.end_time.is_none_or(|end| time <= end)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Percent-encodes one query value exactly as [`ParticipantsQuery::page_target`] does.
    fn encode_query_value(value: &str) -> String {
        utf8_percent_encode(value, QUERY_VALUE).to_string()
    }

    #[test]
    fn a_list_covers_the_events_of_its_sub_meeting_inside_its_window() {
        let op = Operator::user_id("owner1").expect("valid");
        let whole = ParticipantsQuery::new("100", op.clone()).expect("valid");
        assert!(whole.covers(None, 1_700_000_000));
        assert!(
            !whole.covers(Some("7"), 1_700_000_000),
            "another sub-meeting's list"
        );
        let sub = whole.clone().with_sub_meeting("7").expect("valid");
        assert!(sub.covers(Some("7"), 1_700_000_000));
        assert!(!sub.covers(Some("8"), 1_700_000_000));
        let now = 1_700_100_000;
        let window = whole
            .with_window(Some(1_700_000_000), Some(1_700_003_600), now)
            .expect("valid");
        assert!(window.covers(None, 1_700_000_000));
        assert!(window.covers(None, 1_700_003_600));
        assert!(
            !window.covers(None, 1_700_003_601),
            "after the window's end"
        );
        assert!(!window.covers(None, 1_699_999_999));
    }

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

    const NOW: i64 = 1_800_000_000;

    fn parse(raw: &str) -> Result<ParticipantsQuery, InvalidParameter> {
        parse_with("100000000000000001", raw, None)
    }

    fn parse_with(
        meeting_id: &str,
        raw: &str,
        default_operator: Option<&Operator>,
    ) -> Result<ParticipantsQuery, InvalidParameter> {
        ParticipantsParams::from_query_string(raw)?.into_query(meeting_id, default_operator, NOW)
    }

    #[test]
    fn every_rule_names_the_parameter_it_broke() {
        let cases = [
            ("userid=a&operator_id=b&operator_id_type=3", "operator_id"),
            ("operator_id=b", "operator_id_type"),
            ("operator_id_type=3", "operator_id"),
            ("userid=a&operator_id_type=3", "operator_id_type"),
            ("operator_id=b&operator_id_type=1", "operator_id_type"),
            ("operator_id=b&operator_id_type=x", "operator_id_type"),
            ("userid=a&userid=b", "userid"),
            ("userid=a&start_time=20&end_time=10", "start_time"),
            ("userid=a&start_time=-1", "start_time"),
            ("userid=a&start_time=", "start_time"),
            ("userid=a&end_time=1e9", "end_time"),
            ("userid=a&end_time=1000000000000", "end_time"),
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
        let bad_id = parse_with("12a", "userid=a", None).expect_err("id");
        assert_eq!(bad_id.parameter, "meeting_id");
    }

    #[test]
    fn a_valid_query_keeps_every_value_and_ignores_unknown_parameters() {
        let q = parse(&format!(
            "userid=zs%40corp%2B1&sub_meeting_id=1717000001&start_time={}&end_time={NOW}&_=9",
            NOW - 3600
        ))
        .expect("valid");
        assert_eq!(
            q.operator(),
            &Operator::user_id("zs@corp+1").expect("valid")
        );
        assert_eq!(q.sub_meeting_id(), Some("1717000001"));
        assert_eq!(q.window(), (Some(NOW - 3600), Some(NOW)));
        let rooms = parse("operator_id=room-1&operator_id_type=3").expect("valid");
        assert_eq!(
            rooms.operator(),
            &Operator::operator_id("room-1", 3).expect("valid")
        );
    }

    #[test]
    fn a_default_operator_applies_only_when_the_caller_names_none() {
        let admin = Operator::user_id("admin").expect("valid");
        let q = parse_with("1", "", Some(&admin)).expect("valid");
        assert_eq!(q.operator(), &admin);
        let q = parse_with("1", "userid=owner1&_=123", Some(&admin)).expect("valid");
        assert_eq!(q.operator(), &Operator::user_id("owner1").expect("valid"));
    }

    /// The OpenAPI document states the same limits as the checks above.
    #[test]
    fn the_documented_limits_are_the_checked_ones() {
        let params = serde_json::to_value(ParticipantsParams::into_params(|| None))
            .expect("params serialize");
        let schema = |name: &str| {
            params
                .as_array()
                .expect("a list")
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{name} is documented"))["schema"]
                .clone()
        };
        let id = schema("sub_meeting_id");
        assert_eq!(id["maxLength"], MAX_ID_DIGITS);
        assert_eq!(id["pattern"], format!("^[0-9]{{1,{MAX_ID_DIGITS}}}$"));
        for operator in ["userid", "operator_id"] {
            assert_eq!(schema(operator)["maxLength"], MAX_OPERATOR_LEN);
            assert_eq!(
                schema(operator)["pattern"],
                format!("^[A-Za-z0-9._@+-]{{1,{MAX_OPERATOR_LEN}}}$")
            );
        }
        for time in ["start_time", "end_time"] {
            let most = "9".repeat(MAX_TIME_DIGITS).parse::<i64>().expect("digits");
            assert_eq!(schema(time)["maximum"], most);
        }
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
        assert_eq!(refused(Some(0), Some(MAX_WINDOW_SECS + 1)), Ok(()));
        assert_eq!(
            refused(Some(0), Some(MAX_WINDOWS * MAX_WINDOW_SECS)),
            Ok(())
        );
        assert_eq!(
            refused(Some(0), Some(MAX_WINDOWS * MAX_WINDOW_SECS + 1)),
            Err("end_time")
        );
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
    fn a_long_window_is_split_into_31_day_windows_sharing_their_bounds() {
        let q = ParticipantsQuery::new("1", Operator::user_id("u").expect("valid")).expect("q");
        let now = 1_800_000_000;
        let windowed = |start, end| {
            q.clone()
                .with_window(start, end, now)
                .expect("valid")
                .windows()
                .iter()
                .map(ParticipantsQuery::window)
                .collect::<Vec<_>>()
        };
        let w = MAX_WINDOW_SECS;
        assert_eq!(windowed(None, None), [(None, None)]);
        assert_eq!(windowed(Some(now - 60), None), [(Some(now - 60), None)]);
        assert_eq!(windowed(Some(0), Some(w)), [(Some(0), Some(w))]);
        assert_eq!(
            windowed(Some(0), Some(2 * w)),
            [(Some(0), Some(w)), (Some(w), Some(2 * w))]
        );
        assert_eq!(
            windowed(Some(10), Some(w + 11)),
            [(Some(10), Some(w + 10)), (Some(w + 10), Some(w + 11))]
        );
        assert_eq!(windowed(Some(0), Some(MAX_WINDOWS * w)).len(), 12);
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

/// Properties of the query parser over generated input: it never panics, every refusal names a
/// known parameter, and whatever a caller may spell a valid query as reaches the upstream as the
/// same values, in the same order.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Text as a caller's query string may hold it: the parameter names, form syntax, escapes
    /// (valid and not) and any Unicode.
    fn raw_query() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            prop::sample::select(PARAMETERS.to_vec()).prop_map(str::to_owned),
            prop::sample::select(vec!["=", "&", "+", "%", "%2", "%FF", "%00", ";", "-1"])
                .prop_map(str::to_owned),
            "[0-9]{1,14}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// A value written the way some caller writes it: each character percent-encoded or not.
    fn spelled(value: &str, escape: &[bool]) -> String {
        let mut out = String::new();
        for (i, c) in value.chars().enumerate() {
            let literal = c.is_ascii_alphanumeric() || "-._~".contains(c);
            if literal && !escape.get(i).copied().unwrap_or(false) {
                out.push(c);
            } else {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        out
    }

    /// A valid window by the upstream's rules, as (start, end) around [`NOW`].
    fn window() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
        let recent = NOW - MAX_WINDOW_SECS + LONE_BOUND_SLACK_SECS..=NOW;
        prop_oneof![
            Just((None, None)),
            recent.clone().prop_map(|s| (Some(s), None)),
            recent.prop_map(|e| (None, Some(e))),
            (0..NOW, 0..=MAX_WINDOWS * MAX_WINDOW_SECS)
                .prop_map(|(s, len)| (Some(s), Some(s + len))),
        ]
    }

    proptest! {
        #![proptest_config(Config::with_cases(10_000))]

        #[test]
        fn any_query_string_is_a_query_or_a_refusal_naming_a_parameter(
            raw in raw_query(),
            meeting in prop_oneof!["[0-9]{1,40}", any::<String>()],
        ) {
            let fallback = Operator::user_id("owner1").expect("valid");
            let outcome = ParticipantsParams::from_query_string(&raw)
                .and_then(|params| params.into_query(&meeting, Some(&fallback), NOW));
            if let Err(refusal) = outcome {
                prop_assert!(
                    PARAMETERS.contains(&refusal.parameter),
                    "{} is not a parameter", refusal.parameter
                );
            }
        }

        #[test]
        fn a_valid_query_reaches_the_upstream_with_its_values_however_it_was_spelled(
            meeting in "[0-9]{1,32}",
            sub in proptest::option::of("[0-9]{1,32}"),
            userid in "[A-Za-z0-9._@+-]{1,64}",
            (start, end) in window(),
            escape in prop::collection::vec(any::<bool>(), 64),
            noise in proptest::option::of("[a-z_]{1,8}=[^&]{0,8}"),
            turn in any::<usize>(),
        ) {
            let mut pairs = vec![format!("userid={}", spelled(&userid, &escape))];
            if let Some(sub) = &sub {
                pairs.push(format!("sub_meeting_id={}", spelled(sub, &escape)));
            }
            if let Some(start) = start {
                pairs.push(format!("start_time={start}"));
            }
            if let Some(end) = end {
                pairs.push(format!("end_time={end}"));
            }
            // An unknown parameter (a cache buster) is ignored wherever it stands.
            pairs.extend(noise.filter(|n| !PARAMETERS.iter().any(|p| n.starts_with(&format!("{p}=")))));
            let turn = turn % pairs.len();
            pairs.rotate_left(turn);
            let raw = pairs.join("&");

            let query = ParticipantsParams::from_query_string(&raw)
                .and_then(|p| p.into_query(&meeting, None, NOW))
                .map_err(|e| TestCaseError::fail(format!("{raw}: {e:?}")))?;
            let target = query.page_target(7, 100);
            let (path, sent) = target.split_once('?').expect("a query");
            prop_assert_eq!(path, format!("/v1/meetings/{meeting}/participants"));
            let sent: Vec<(String, String)> =
                form_urlencoded::parse(sent.as_bytes()).into_owned().collect();
            let mut want: Vec<(String, String)> = Vec::new();
            let mut put = |k: &str, v: String| want.push((k.to_owned(), v));
            if let Some(sub) = sub {
                put("sub_meeting_id", sub);
            }
            put("userid", userid);
            if let Some(start) = start {
                put("start_time", start.to_string());
            }
            if let Some(end) = end {
                put("end_time", end.to_string());
            }
            put("pos", "7".into());
            put("size", "100".into());
            prop_assert_eq!(sent, want);
        }

        #[test]
        fn a_parameter_given_twice_is_refused_by_name(
            name in prop::sample::select(
                PARAMETERS.iter().copied().filter(|p| *p != "meeting_id").collect::<Vec<_>>()
            ),
            first in "[0-9a-z]{0,6}",
            second in "[0-9a-z]{0,6}",
        ) {
            let raw = format!("{name}={first}&x=1&{name}={second}");
            let refusal = ParticipantsParams::from_query_string(&raw).expect_err("twice");
            prop_assert_eq!(refusal.parameter, name);
        }

        #[test]
        fn an_operator_is_accepted_exactly_when_it_keeps_to_its_alphabet(text in any::<String>()) {
            let allowed = (1..=MAX_OPERATOR_LEN).contains(&text.len())
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@+".contains(&b));
            prop_assert_eq!(Operator::user_id(&text).is_ok(), allowed);
        }
    }
}
