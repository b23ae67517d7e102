//! Upstream failures, classified where they arise.

use std::time::Duration;

/// What kind of failure the upstream reported: decides whether to retry, and how the gateway
/// answers its own caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The meeting (or sub-meeting) does not exist: 9003.
    NotFound,
    /// The operator may not read this meeting: 9042, 500014, 190001.
    Forbidden,
    /// The upstream refused a parameter: 190004.
    BadRequest,
    /// Our credentials or signature were refused: 200001, 200003, 190303.
    Credentials,
    /// Our clock is more than five minutes off the upstream's: 190300.
    ClockSkew,
    /// A timestamp and nonce pair was seen before: 190301. Retried with a fresh nonce.
    Replay,
    /// A per-minute quota is spent: 190310, 190313, 9061. Retried after the minute turns.
    MinuteLimit,
    /// The daily quota is spent: 190311.
    DailyLimit,
    /// Network or server trouble that may pass: 41, 960000, 10000, 5xx without a Tencent body,
    /// connection failures and page timeouts. Retried with backoff.
    Transient,
    /// The upstream answered something we cannot use: undecodable JSON, a repeated cursor,
    /// more pages than the record cap allows.
    Protocol,
    /// The whole list was not fetched within its deadline.
    Deadline,
    /// A Tencent error code we do not know.
    Unknown,
}

impl ErrorClass {
    /// The class of a Tencent `error_code`.
    pub fn of_code(code: i64) -> Self {
        match code {
            9003 => Self::NotFound,
            9042 | 500014 | 190001 => Self::Forbidden,
            190004 => Self::BadRequest,
            200001 | 200003 | 190303 => Self::Credentials,
            190300 => Self::ClockSkew,
            190301 => Self::Replay,
            190310 | 190313 | 9061 => Self::MinuteLimit,
            190311 => Self::DailyLimit,
            41 | 960000 | 10000 => Self::Transient,
            _ => Self::Unknown,
        }
    }

    /// Whether the upstream refused this request (the meeting is gone, the operator may not read
    /// it, a parameter is wrong) rather than failed to answer it. A refusal holds until the request
    /// changes, so a stale copy must not stand in for it; a failure may pass.
    pub fn is_refusal(self) -> bool {
        match self {
            Self::NotFound | Self::Forbidden | Self::BadRequest => true,
            Self::Credentials
            | Self::ClockSkew
            | Self::Replay
            | Self::MinuteLimit
            | Self::DailyLimit
            | Self::Transient
            | Self::Protocol
            | Self::Deadline
            | Self::Unknown => false,
        }
    }

    /// A stable lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::BadRequest => "bad_request",
            Self::Credentials => "credentials",
            Self::ClockSkew => "clock_skew",
            Self::Replay => "replay",
            Self::MinuteLimit => "minute_limit",
            Self::DailyLimit => "daily_limit",
            Self::Transient => "transient",
            Self::Protocol => "protocol",
            Self::Deadline => "deadline",
            Self::Unknown => "unknown",
        }
    }
}

/// A failed upstream call or list fetch. Messages never hold credentials or signatures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered with a Tencent error body.
    #[error("upstream error {code} (HTTP {status}): {message}")]
    Api {
        class: ErrorClass,
        status: u16,
        code: i64,
        new_code: Option<i64>,
        message: String,
    },
    /// The upstream could not be reached or did not answer within the page timeout.
    #[error("upstream unreachable: {0}")]
    Transport(String),
    /// The upstream answered an HTTP error without a Tencent body.
    #[error("upstream answered HTTP {0} without an error body")]
    Status(u16),
    /// The upstream's answer cannot be used.
    #[error("unusable upstream answer: {0}")]
    Protocol(String),
    /// A page answered with status 200 that does not decode (not UTF-8, not JSON: a proxy's
    /// HTML page, a cut connection). A protocol failure, but worth asking again: the same page
    /// usually comes whole the next time.
    #[error("undecodable upstream page: {0}")]
    Undecodable(String),
    /// Not asked: the upstream kept failing, and its cool-down has this long to run.
    #[error("the upstream keeps failing; it is asked again in {0:?}")]
    CircuitOpen(Duration),
    /// The list was not complete within the deadline.
    #[error("the list was not fetched within {0:?}")]
    Deadline(Duration),
    /// Not an upstream answer: the day's calls, counted across replicas, are spent.
    #[error("the enterprise's upstream calls for the day are spent (counted across replicas)")]
    DaySpent,
}

impl UpstreamError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { class, .. } => *class,
            Self::Transport(_) | Self::CircuitOpen(_) => ErrorClass::Transient,
            Self::Status(status) if *status >= 500 => ErrorClass::Transient,
            Self::Status(_) => ErrorClass::Protocol,
            Self::Protocol(_) | Self::Undecodable(_) => ErrorClass::Protocol,
            Self::Deadline(_) => ErrorClass::Deadline,
            Self::DaySpent => ErrorClass::DailyLimit,
        }
    }

    /// The HTTP status the upstream itself answered with, when it answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Status(status) => Some(*status),
            Self::Transport(_)
            | Self::CircuitOpen(_)
            | Self::Protocol(_)
            | Self::Undecodable(_)
            | Self::Deadline(_)
            | Self::DaySpent => None,
        }
    }

    /// The Tencent error code, when the upstream gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code documented on the API page and in the design, pinned to its class.
    #[test]
    fn every_known_code_maps_to_its_class() {
        use ErrorClass::*;
        let table = [
            (9003, NotFound),
            (9042, Forbidden),
            (500014, Forbidden),
            (190001, Forbidden),
            (190004, BadRequest),
            (200001, Credentials),
            (200003, Credentials),
            (190303, Credentials),
            (190300, ClockSkew),
            (190301, Replay),
            (190310, MinuteLimit),
            (190313, MinuteLimit),
            (9061, MinuteLimit),
            (190311, DailyLimit),
            (41, Transient),
            (960000, Transient),
            (10000, Transient),
            (123456, Unknown),
        ];
        for (code, class) in table {
            assert_eq!(ErrorClass::of_code(code), class, "code {code}");
        }
    }

    #[test]
    fn only_refusals_are_refusals() {
        use ErrorClass::*;
        let refusals = [NotFound, Forbidden, BadRequest];
        for class in [
            NotFound,
            Forbidden,
            BadRequest,
            Credentials,
            ClockSkew,
            Replay,
            MinuteLimit,
            DailyLimit,
            Transient,
            Protocol,
            Deadline,
            Unknown,
        ] {
            assert_eq!(class.is_refusal(), refusals.contains(&class), "{class:?}");
        }
    }

    #[test]
    fn failures_without_a_code_are_classified_by_what_happened() {
        assert_eq!(UpstreamError::Status(502).class(), ErrorClass::Transient);
        assert_eq!(UpstreamError::Status(404).class(), ErrorClass::Protocol);
        assert_eq!(
            UpstreamError::Transport("reset".into()).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            UpstreamError::Deadline(Duration::from_secs(1)).class(),
            ErrorClass::Deadline
        );
    }
}
