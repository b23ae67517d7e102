//! A stored list read back: its head and its records as the API wrote them, borrowed from the
//! stored bytes. The views (attendance, CSV, people still in) are made from these, so that they
//! answer exactly what the participants endpoint answers.

use std::borrow::Cow;

use serde::Deserialize;

use super::stored_list::StoredList;

/// Text read from the stored JSON: borrowed from it, owned only where the JSON escapes a
/// character. (serde borrows a `Cow` that is a field of its own, never one inside an `Option`,
/// which would make every string of every record a new allocation.)
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// A stored record, as [`super::participants::ParticipantResponse`] wrote it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub userid: Option<Text<'a>>,
    #[serde(borrow)]
    pub ms_open_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub uuid: Option<Text<'a>>,
    #[serde(borrow)]
    pub open_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub user_name: Option<Text<'a>>,
    #[serde(borrow)]
    pub user_name_base64: Option<Text<'a>>,
    pub is_enterprise_user: Option<bool>,
    #[serde(borrow)]
    pub phone: Option<Text<'a>>,
    pub join_time: i64,
    pub left_time: Option<i64>,
    pub instanceid: Option<i64>,
    pub user_role: Option<i64>,
    pub webinar_member_role: Option<i64>,
    #[serde(rename = "IP", borrow)]
    pub ip: Option<Text<'a>>,
    #[serde(borrow)]
    pub location: Option<Text<'a>>,
    #[serde(borrow)]
    pub link_type: Option<Text<'a>>,
    pub join_type: Option<i64>,
    #[serde(borrow)]
    pub net: Option<Text<'a>>,
    #[serde(borrow)]
    pub app_version: Option<Text<'a>>,
    pub audio_state: Option<bool>,
    pub video_state: Option<bool>,
    pub screen_shared_state: Option<bool>,
    #[serde(borrow)]
    pub customer_data: Option<Text<'a>>,
    #[serde(default)]
    pub provisional: bool,
}

/// A stored list's head: the meeting and the list's completeness.
#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    pub meeting_id: Option<String>,
    pub meeting_code: Option<String>,
    pub subject: Option<String>,
    pub schedule_start_time: Option<i64>,
    pub schedule_end_time: Option<i64>,
    pub complete: bool,
    pub incomplete_reason: Option<String>,
    #[serde(default = "one")]
    pub upstream_windows: u32,
}

fn one() -> u32 {
    1
}

/// The head of a stored list (its JSON up to the records, closed here).
pub fn head(list: &StoredList) -> Head {
    let mut json = list.head().to_vec();
    json.extend_from_slice(b"]}");
    serde_json::from_slice(&json).expect("the stored head is the API's own JSON")
}

impl<'a> Record<'a> {
    /// Reads a stored record. The API writes a record's fields in one order, every one of them
    /// ([`super::participants::ParticipantResponse`]; only `provisional` is left out when
    /// false), so this walks them in that order without looking keys up, several times faster
    /// than a general JSON reader. JSON in any other shape is read by serde_json.
    pub fn read(json: &'a [u8]) -> Self {
        std::str::from_utf8(json)
            .ok()
            .and_then(Self::walk)
            .unwrap_or_else(|| {
                serde_json::from_slice(json).expect("a stored record is the API's JSON")
            })
    }

    /// The record, if its JSON has the API's fields in the API's order.
    fn walk(json: &'a str) -> Option<Self> {
        let mut fields = Fields {
            rest: json.strip_prefix('{')?,
            first: true,
        };
        let f = &mut fields;
        let record = Self {
            userid: f.next("userid")?.text()?,
            ms_open_id: f.next("ms_open_id")?.text()?,
            uuid: f.next("uuid")?.text()?,
            open_id: f.next("open_id")?.text()?,
            user_name: f.next("user_name")?.text()?,
            user_name_base64: f.next("user_name_base64")?.text()?,
            is_enterprise_user: f.next("is_enterprise_user")?.boolean()?,
            phone: f.next("phone")?.text()?,
            join_time: f.next("join_time")?.number()??,
            left_time: f.next("left_time")?.number()?,
            instanceid: f.next("instanceid")?.number()?,
            user_role: f.next("user_role")?.number()?,
            webinar_member_role: f.next("webinar_member_role")?.number()?,
            ip: f.next("IP")?.text()?,
            location: f.next("location")?.text()?,
            link_type: f.next("link_type")?.text()?,
            join_type: f.next("join_type")?.number()?,
            net: f.next("net")?.text()?,
            app_version: f.next("app_version")?.text()?,
            audio_state: f.next("audio_state")?.boolean()?,
            video_state: f.next("video_state")?.boolean()?,
            screen_shared_state: f.next("screen_shared_state")?.boolean()?,
            customer_data: f.next("customer_data")?.text()?,
            provisional: match f.rest {
                "}" => false,
                _ => f.next("provisional")?.boolean()??,
            },
        };
        (fields.rest == "}").then_some(record)
    }
}

/// What the views need of a stored record, found once when its chunk is stored and kept beside
/// it (80 bytes a record, against about 550 of JSON), so that attendance and the people still
/// in never read the records' JSON again: where the five texts attendance shows lie in the
/// record's JSON, and the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brief {
    /// Each [`Field`]'s value as JSON (a string with its quotes, or `null`): its offset in the
    /// record's JSON and its length.
    texts: [(u32, u32); 5],
    /// Which texts hold an escape (a bit a [`Field`]): the others are their JSON's bytes.
    escapes: u8,
    join_time: i64,
    left_time: i64,
    instanceid: i64,
    user_role: i64,
    /// Which of the optional numbers are present, and `provisional`.
    flags: u8,
}

// Kept beside every cached record: its size is part of the memory budget per record.
const _: () = assert!(size_of::<Brief>() == 80);

const HAS_LEFT_TIME: u8 = 1;
const HAS_INSTANCEID: u8 = 2;
const HAS_USER_ROLE: u8 = 4;
const PROVISIONAL: u8 = 8;

/// The texts a [`Brief`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Userid,
    MsOpenId,
    Uuid,
    UserName,
    UserNameBase64,
}

impl Brief {
    /// The brief of a record's JSON, if it is in the API's shape (see [`Record::read`]): the
    /// fields up to `user_role` walked, and `provisional`, the only field ever left out, told
    /// by the record's end (a quote inside a string is always escaped, so `,"provisional":`
    /// there can only be the field itself).
    pub fn of(json: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(json).ok()?;
        let mut fields = Fields {
            rest: text.strip_prefix('{')?,
            first: true,
        };
        let f = &mut fields;
        let mut texts = [(0, 0); 5];
        let mut escapes = 0;
        let mut span = |field: Field, value: Value<'_>| -> Option<()> {
            let start = value.json.as_ptr() as usize - text.as_ptr() as usize;
            let len = value.json.len();
            if value.escapes {
                escapes |= 1 << field as u8;
            }
            value.text()?;
            texts[field as usize] = (u32::try_from(start).ok()?, u32::try_from(len).ok()?);
            Some(())
        };
        span(Field::Userid, f.next("userid")?)?;
        span(Field::MsOpenId, f.next("ms_open_id")?)?;
        span(Field::Uuid, f.next("uuid")?)?;
        f.next("open_id")?.text()?;
        span(Field::UserName, f.next("user_name")?)?;
        span(Field::UserNameBase64, f.next("user_name_base64")?)?;
        f.next("is_enterprise_user")?.boolean()?;
        f.next("phone")?.text()?;
        let join_time = f.next("join_time")?.number()??;
        let left_time = f.next("left_time")?.number()?;
        let instanceid = f.next("instanceid")?.number()?;
        let user_role = f.next("user_role")?.number()?;
        let provisional = fields.rest.ends_with(",\"provisional\":true}");
        if !fields.rest.starts_with(',') || !fields.rest.ends_with('}') {
            return None;
        }
        let flag = |present: bool, flag: u8| if present { flag } else { 0 };
        Some(Self {
            texts,
            escapes,
            join_time,
            left_time: left_time.unwrap_or_default(),
            instanceid: instanceid.unwrap_or_default(),
            user_role: user_role.unwrap_or_default(),
            flags: flag(left_time.is_some(), HAS_LEFT_TIME)
                | flag(instanceid.is_some(), HAS_INSTANCEID)
                | flag(user_role.is_some(), HAS_USER_ROLE)
                | flag(provisional, PROVISIONAL),
        })
    }

    fn number(&self, value: i64, flag: u8) -> Option<i64> {
        (self.flags & flag != 0).then_some(value)
    }

    /// When the record's session ended; `None` while it is open.
    pub fn left_time(&self) -> Option<i64> {
        self.number(self.left_time, HAS_LEFT_TIME)
    }
}

/// A stored record as attendance reads it: its JSON and its brief, 24 bytes; a text is read
/// only when it is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit<'a> {
    json: &'a [u8],
    brief: &'a Brief,
}

impl<'a> Visit<'a> {
    /// `brief` must be the brief of `json`.
    pub fn new(json: &'a [u8], brief: &'a Brief) -> Self {
        Self { json, brief }
    }

    /// A text's value as the JSON writes it: a string with its quotes, or `null`.
    pub fn json(&self, field: Field) -> &'a [u8] {
        let (start, len) = self.brief.texts[field as usize];
        &self.json[start as usize..][..len as usize]
    }

    /// A text; `None` for null.
    pub fn text(&self, field: Field) -> Option<Text<'a>> {
        // Checked when the brief was made: UTF-8 between ASCII quotes, or null.
        let json = std::str::from_utf8(self.json(field)).expect("a brief's text is UTF-8");
        let escapes = self.escapes(field);
        Value { json, escapes }
            .text()
            .expect("a brief's text is a JSON string or null")
    }

    /// A text's UTF-8 bytes; `None` for null. Borrowed from the JSON when it escapes nothing
    /// (most texts: serde_json writes other characters as they are), so that nothing is
    /// validated or decoded; they order as the texts do.
    pub fn text_bytes(&self, field: Field) -> Option<Cow<'a, [u8]>> {
        let escaped = self.escaped(field)?;
        if !self.escapes(field) {
            return Some(Cow::Borrowed(escaped));
        }
        self.text(field).map(|text| match text.0 {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        })
    }

    /// Whether a text holds an escape (noted in the brief when its end was found).
    fn escapes(&self, field: Field) -> bool {
        self.brief.escapes & (1 << field as u8) != 0
    }

    /// A text as the JSON writes it, between its quotes; `None` for null. The API's JSON
    /// writes each text one way, so two are equal exactly when the texts are.
    pub fn escaped(&self, field: Field) -> Option<&'a [u8]> {
        self.json(field)
            .strip_prefix(b"\"")
            .and_then(|s| s.strip_suffix(b"\""))
    }

    pub fn join_time(&self) -> i64 {
        self.brief.join_time
    }

    pub fn left_time(&self) -> Option<i64> {
        self.brief.left_time()
    }

    pub fn instanceid(&self) -> Option<i64> {
        self.brief.number(self.brief.instanceid, HAS_INSTANCEID)
    }

    pub fn user_role(&self) -> Option<i64> {
        self.brief.number(self.brief.user_role, HAS_USER_ROLE)
    }

    pub fn provisional(&self) -> bool {
        self.brief.flags & PROVISIONAL != 0
    }
}

/// The fields of a record's JSON object, read front to back.
struct Fields<'a> {
    /// What follows the last value read.
    rest: &'a str,
    first: bool,
}

impl<'a> Fields<'a> {
    /// The next field's value, if the next field is `name`. Inlined into each caller, where
    /// `name` is a constant: its comparison is then a few instructions, not a call to `memcmp`.
    #[inline(always)]
    fn next(&mut self, name: &str) -> Option<Value<'a>> {
        let rest = if self.first {
            self.first = false;
            self.rest
        } else {
            self.rest.strip_prefix(',')?
        };
        let rest = rest
            .strip_prefix('"')?
            .strip_prefix(name)?
            .strip_prefix("\":")?;
        let bytes = rest.as_bytes();
        let (len, escapes) = match bytes.first()? {
            b'"' => string_len(bytes)?,
            _ => (scalar_len(bytes)?, false),
        };
        // Quotes, commas and braces are ASCII: the split falls between characters.
        let (value, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(Value {
            json: value,
            escapes,
        })
    }
}

/// The length of the JSON string at the start of `json`, its quotes included, and whether a
/// backslash escapes something in it: a string ends at the first quote that no backslash
/// escapes. `None` if it does not end.
pub(super) fn string_len(json: &[u8]) -> Option<(usize, bool)> {
    let mut at = 1;
    let mut escapes = false;
    loop {
        at += memchr::memchr2(b'"', b'\\', json.get(at..)?)?;
        match json[at] {
            b'"' => return Some((at + 1, escapes)),
            _ => (at, escapes) = (at + 2, true),
        }
    }
}

/// The length of the number, `true`, `false` or `null` at the start of `json`: up to the next
/// field or the object's end. A few bytes, searched one at a time (a vector search's setup
/// costs more here).
#[inline(always)]
pub(super) fn scalar_len(json: &[u8]) -> Option<usize> {
    json.iter().position(|&b| b == b',' || b == b'}')
}

/// One field's value as JSON. Each reading gives `None` for JSON of another type (the record
/// is then read by serde_json) and `Some(None)` for `null`.
struct Value<'a> {
    json: &'a str,
    /// Whether a backslash escapes something in it (a string's, found as its end was).
    escapes: bool,
}

impl<'a> Value<'a> {
    fn text(self) -> Option<Option<Text<'a>>> {
        if self.json == "null" {
            return Some(None);
        }
        let inner = self.json.strip_prefix('"')?.strip_suffix('"')?;
        let text = if self.escapes {
            Cow::Owned(serde_json::from_str(self.json).ok()?)
        } else {
            Cow::Borrowed(inner)
        };
        Some(Some(Text(text)))
    }

    fn number(self) -> Option<Option<i64>> {
        match self.json {
            "null" => Some(None),
            digits => digits.parse().ok().map(Some),
        }
    }

    fn boolean(self) -> Option<Option<bool>> {
        match self.json {
            "null" => Some(None),
            "true" => Some(Some(true)),
            "false" => Some(Some(false)),
            _ => None,
        }
    }
}

/// Records at which work on a list is split over two threads: below it, one is quicker.
const PARALLEL_FROM: usize = 4_096;

/// `a` on this thread and `b` on another at once, when `parallel`; else one after the other.
pub fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        (a, b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

/// Whether work on `records` records is worth a second thread.
pub fn parallel(records: usize) -> bool {
    records >= PARALLEL_FROM
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;
    use crate::api::participants::ParticipantResponse;

    #[test]
    fn text_is_borrowed_unless_escaped() {
        let json = br#"{"userid":"alice","user_name":"a\"b","join_time":1}"#;
        let record: Record<'_> = serde_json::from_slice(json).unwrap();
        assert!(matches!(record.userid, Some(Text(Cow::Borrowed("alice")))));
        assert!(matches!(record.user_name, Some(Text(Cow::Owned(ref s))) if s == "a\"b"));
    }

    #[test]
    fn a_string_ends_at_its_first_unescaped_quote() {
        assert_eq!(string_len(br#""ab"c"#), Some((4, false)));
        assert_eq!(string_len(br#""a\"b","#), Some((6, true)));
        assert_eq!(string_len(br#""a\\"x"#), Some((5, true)));
        assert_eq!(string_len(br#""ab"#), None);
        assert_eq!(string_len(br#""ab\"#), None);
    }

    #[test]
    fn json_in_another_shape_is_read_by_serde() {
        let json = br#"{"join_time":5,"userid":"b","extra":[1]}"#;
        let record = Record::read(json);
        assert_eq!((record.join_time, record.userid.as_deref()), (5, Some("b")));
        assert_eq!(Record::walk(std::str::from_utf8(json).unwrap()), None);
    }

    /// A text as a record may hold it: anything, or mostly the characters that JSON escapes
    /// and CSV quotes or neutralises.
    fn any_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![".{0,12}", "[,=+@\"\\\\\r\n\t a-]{0,8}"])
    }

    /// The JSON of any record, as the API writes it: any text, quotes, backslashes, control
    /// characters, any number, any flag.
    pub(crate) fn any_record_json() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(any_text(), 12),
            proptest::collection::vec(proptest::option::of(any::<i64>()), 6),
            proptest::collection::vec(proptest::option::of(any::<bool>()), 4),
            any::<bool>(),
        )
            .prop_map(|(texts, numbers, flags, provisional)| {
                let text = |i: usize| texts[i].as_deref();
                let response = ParticipantResponse {
                    userid: text(0),
                    ms_open_id: text(1),
                    uuid: text(2),
                    open_id: text(3),
                    user_name: texts[4].clone(),
                    user_name_base64: text(5),
                    is_enterprise_user: flags[0],
                    phone: text(6),
                    join_time: numbers[0].unwrap_or_default(),
                    left_time: numbers[1],
                    instanceid: numbers[2],
                    user_role: numbers[3],
                    webinar_member_role: numbers[4],
                    ip: text(7),
                    location: text(8),
                    link_type: text(9),
                    join_type: numbers[5],
                    net: text(10),
                    app_version: text(11),
                    audio_state: flags[1],
                    video_state: flags[2],
                    screen_shared_state: flags[3],
                    customer_data: text(0),
                    provisional,
                };
                serde_json::to_string(&response).unwrap()
            })
    }

    proptest! {
        #![proptest_config(Config::with_cases(10_000))]

        /// Whatever a record holds, its JSON as the API writes it is walked, never left to
        /// serde, and the walk reads what serde_json reads.
        #[test]
        fn the_walk_reads_what_serde_reads_from_any_record(json in any_record_json()) {
            let walked = Record::walk(&json);
            prop_assert!(walked.is_some(), "not walked: {}", json);
            let read: Record<'_> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(walked.unwrap(), read.clone());
            // The brief finds the same texts and numbers.
            let brief = Brief::of(json.as_bytes());
            prop_assert!(brief.is_some(), "no brief: {}", json);
            let brief = brief.unwrap();
            let visit = Visit::new(json.as_bytes(), &brief);
            let fields = [Field::Userid, Field::MsOpenId, Field::Uuid, Field::UserName, Field::UserNameBase64];
            let texts = fields.map(|field| visit.text(field));
            let read_texts = [read.userid, read.ms_open_id, read.uuid, read.user_name, read.user_name_base64];
            prop_assert_eq!(&texts, &read_texts);
            // And their bytes, read without decoding where nothing is escaped.
            let bytes = fields.map(|field| visit.text_bytes(field));
            let read_bytes = read_texts.map(|text| text.map(|text| text.0.into_owned().into_bytes()));
            prop_assert_eq!(bytes.map(|b| b.map(Cow::into_owned)), read_bytes);
            prop_assert_eq!(
                (visit.join_time(), visit.left_time(), visit.instanceid(), visit.user_role()),
                (read.join_time, read.left_time, read.instanceid, read.user_role)
            );
            prop_assert_eq!(visit.provisional(), read.provisional);
            prop_assert_eq!(brief.left_time(), read.left_time);
            // Escaped texts are equal exactly when the texts are.
            for (a, b) in [(Field::Userid, Field::MsOpenId), (Field::Uuid, Field::UserName)] {
                prop_assert_eq!(visit.escaped(a) == visit.escaped(b), visit.text(a) == visit.text(b));
            }
        }
    }
}
