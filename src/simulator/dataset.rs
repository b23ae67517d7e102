//! The simulator's data: meetings and their participation records, from a JSON file or the
//! built-in demo set, and the paging over them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::limits::RECORD_CAP;

/// Every meeting the simulator knows, and the users it knows.
#[derive(Debug)]
pub struct Dataset {
    /// Registered users: an unknown `userid` is Tencent's 190001.
    pub users: HashSet<String>,
    pub meetings: HashMap<String, Meeting>,
}

#[derive(Debug)]
pub struct Meeting {
    pub meeting_id: String,
    pub meeting_code: String,
    pub subject: String,
    pub schedule_start_time: i64,
    pub schedule_end_time: i64,
    /// Users (or rooms ids) allowed to read the list: its creator and the enterprise admins.
    pub readers: HashSet<String>,
    /// A meeting that has not started answers an empty list with no `participants` key.
    pub started: bool,
    pub listing: Listing,
}

#[derive(Debug)]
pub enum Listing {
    Single(Vec<Record>),
    /// A recurring meeting: one list per sub-meeting; `sub_meeting_id` is required.
    Recurring(Vec<(String, Vec<Record>)>),
}

/// One participation record, kept as the exact JSON the simulator sends.
#[derive(Debug, Clone)]
pub struct Record {
    pub join_time: i64,
    pub left_time: Option<i64>,
    pub json: Box<RawValue>,
}

/// The dataset file format: the wire format of each record, plus who may read what.
#[derive(Debug, Serialize, Deserialize)]
pub struct DatasetFile {
    #[serde(default)]
    pub users: Vec<String>,
    pub meetings: Vec<MeetingFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MeetingFile {
    pub meeting_id: String,
    pub meeting_code: String,
    pub subject: String,
    pub schedule_start_time: String,
    pub schedule_end_time: String,
    pub readers: Vec<String>,
    #[serde(default = "yes")]
    pub started: bool,
    #[serde(default)]
    pub participants: Vec<Box<RawValue>>,
    #[serde(default)]
    pub sub_meetings: Vec<SubMeetingFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubMeetingFile {
    pub sub_meeting_id: String,
    pub participants: Vec<Box<RawValue>>,
}

fn yes() -> bool {
    true
}

/// Why a dataset file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid dataset: {0}")]
    Invalid(String),
}

impl Dataset {
    /// Loads a dataset file (format: [`DatasetFile`]).
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let file: DatasetFile =
            serde_json::from_str(&text).map_err(|e| DatasetError::Invalid(e.to_string()))?;
        Self::from_file(file)
    }

    pub fn from_file(file: DatasetFile) -> Result<Self, DatasetError> {
        let mut users: HashSet<String> = file.users.into_iter().collect();
        let mut meetings = HashMap::new();
        for m in file.meetings {
            let time = |name: &str, value: &str| {
                value.parse::<i64>().map_err(|_| {
                    DatasetError::Invalid(format!("meeting {}: {name} {value:?}", m.meeting_id))
                })
            };
            let schedule_start_time = time("schedule_start_time", &m.schedule_start_time)?;
            let schedule_end_time = time("schedule_end_time", &m.schedule_end_time)?;
            let listing = if m.sub_meetings.is_empty() {
                Listing::Single(records(&m.meeting_id, m.participants)?)
            } else {
                let mut subs = Vec::new();
                for sub in m.sub_meetings {
                    subs.push((
                        sub.sub_meeting_id,
                        records(&m.meeting_id, sub.participants)?,
                    ));
                }
                Listing::Recurring(subs)
            };
            users.extend(m.readers.iter().cloned());
            let meeting = Meeting {
                meeting_id: m.meeting_id.clone(),
                meeting_code: m.meeting_code,
                subject: m.subject,
                schedule_start_time,
                schedule_end_time,
                readers: m.readers.into_iter().collect(),
                started: m.started,
                listing,
            };
            if meetings.insert(m.meeting_id.clone(), meeting).is_some() {
                return Err(DatasetError::Invalid(format!(
                    "meeting {} appears twice",
                    m.meeting_id
                )));
            }
        }
        Ok(Self { users, meetings })
    }
}

fn records(meeting_id: &str, raw: Vec<Box<RawValue>>) -> Result<Vec<Record>, DatasetError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, json)| {
            let parsed: RecordTimes = serde_json::from_str(json.get()).map_err(|e| {
                DatasetError::Invalid(format!("meeting {meeting_id}, record {i}: {e}"))
            })?;
            let bad = |field: &str| {
                DatasetError::Invalid(format!(
                    "meeting {meeting_id}, record {i}: {field} is not unix seconds"
                ))
            };
            let join_time = parsed.join_time.seconds().ok_or_else(|| bad("join_time"))?;
            let left_time = match parsed.left_time {
                None => None,
                Some(left) if left.is_empty() => None,
                Some(left) => Some(left.seconds().ok_or_else(|| bad("left_time"))?),
            };
            Ok(Record {
                join_time,
                left_time,
                json,
            })
        })
        .collect()
}

/// The two times of a record that the simulator reads, as Tencent writes them: strings of unix
/// seconds, `left_time` empty while the person is still in. (Numbers are taken too, for dataset
/// files written by hand.)
#[derive(Debug, Deserialize)]
struct RecordTimes {
    join_time: UnixTime,
    left_time: Option<UnixTime>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UnixTime {
    Number(i64),
    Text(String),
}

impl UnixTime {
    fn seconds(&self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(t) => t.trim().parse().ok(),
        }
    }

    /// Tencent's "still in the meeting".
    fn is_empty(&self) -> bool {
        matches!(self, Self::Text(t) if t.trim().is_empty())
    }
}

impl Meeting {
    /// The records of the meeting, or of one sub-meeting of a recurring meeting.
    pub fn records(&self, sub_meeting_id: Option<&str>) -> Result<&[Record], ListingError> {
        match (&self.listing, sub_meeting_id) {
            (Listing::Single(records), _) => Ok(records),
            (Listing::Recurring(_), None) => Err(ListingError::SubMeetingRequired),
            (Listing::Recurring(subs), Some(id)) => subs
                .iter()
                .find(|(sub, _)| sub == id)
                .map(|(_, records)| records.as_slice())
                .ok_or(ListingError::UnknownSubMeeting),
        }
    }

    pub fn is_recurring(&self) -> bool {
        matches!(self.listing, Listing::Recurring(_))
    }

    /// A salt that makes this meeting's cursors opaque and checkable.
    fn cursor_salt(&self, sub_meeting_id: Option<&str>) -> i64 {
        // FNV-1a over the ids: stable across runs, unlike the std hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self
            .meeting_id
            .bytes()
            .chain(sub_meeting_id.unwrap_or("").bytes())
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        1 + (hash % (CURSOR_STRIDE as u64 - 1)) as i64
    }

    /// Encodes a record offset as an opaque cursor.
    pub fn cursor(&self, sub_meeting_id: Option<&str>, offset: usize) -> i64 {
        offset as i64 * CURSOR_STRIDE + self.cursor_salt(sub_meeting_id)
    }

    /// Decodes a cursor this meeting handed out; `pos = 0` is the start.
    pub fn offset(&self, sub_meeting_id: Option<&str>, pos: i64) -> Option<usize> {
        if pos == 0 {
            return Some(0);
        }
        let rest = pos.checked_sub(self.cursor_salt(sub_meeting_id))?;
        (rest >= 0 && rest % CURSOR_STRIDE == 0).then_some((rest / CURSOR_STRIDE) as usize)
    }
}

const CURSOR_STRIDE: i64 = 7919;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingError {
    SubMeetingRequired,
    UnknownSubMeeting,
}

/// The records a query can see: those overlapping the time window, at most [`RECORD_CAP`].
#[derive(Debug)]
pub struct View<'a> {
    records: &'a [Record],
    window: Option<(i64, i64)>,
}

impl<'a> View<'a> {
    pub fn new(records: &'a [Record], window: Option<(i64, i64)>) -> Self {
        Self { records, window }
    }

    fn visible(&self, record: &Record) -> bool {
        self.window.is_none_or(|(start, end)| {
            record.join_time <= end && record.left_time.is_none_or(|left| left >= start)
        })
    }

    /// How many records match, before the cap: the upstream's `total_count`.
    pub fn total(&self) -> usize {
        match self.window {
            None => self.records.len(),
            Some(_) => self.records.iter().filter(|r| self.visible(r)).count(),
        }
    }

    /// Records `offset..offset + size` of the capped view.
    pub fn page(&self, offset: usize, size: usize) -> Vec<&'a Record> {
        let end = (offset + size).min(RECORD_CAP);
        let take = end.saturating_sub(offset);
        match self.window {
            None => self.records.iter().skip(offset).take(take).collect(),
            Some(_) => self
                .records
                .iter()
                .filter(|r| self.visible(r))
                .skip(offset)
                .take(take)
                .collect(),
        }
    }
}
