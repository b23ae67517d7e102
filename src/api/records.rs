//! A stored list read back: its head and its records as the API wrote them, borrowed from the
//! stored bytes. The views (attendance, CSV, people still in) are made from these, so that they
//! answer exactly what the participants endpoint answers.

use std::borrow::Cow;

use serde::Deserialize;

use super::stored_list::StoredList;

/// A stored record, as [`super::participants::ParticipantResponse`] wrote it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub userid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub ms_open_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub open_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_name_base64: Option<Cow<'a, str>>,
    pub is_enterprise_user: Option<bool>,
    #[serde(borrow)]
    pub phone: Option<Cow<'a, str>>,
    pub join_time: i64,
    pub left_time: Option<i64>,
    pub instanceid: Option<i64>,
    pub user_role: Option<i64>,
    pub webinar_member_role: Option<i64>,
    #[serde(rename = "IP", borrow)]
    pub ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub link_type: Option<Cow<'a, str>>,
    pub join_type: Option<i64>,
    #[serde(borrow)]
    pub net: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub app_version: Option<Cow<'a, str>>,
    pub audio_state: Option<bool>,
    pub video_state: Option<bool>,
    pub screen_shared_state: Option<bool>,
    #[serde(borrow)]
    pub customer_data: Option<Cow<'a, str>>,
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

fn read<'a, R: Deserialize<'a>>(slices: &[&'a [u8]]) -> Vec<R> {
    slices
        .iter()
        .map(|json| serde_json::from_slice(json).expect("a stored record is the API's JSON"))
        .collect()
}

/// Records at which reading is split over two threads: below it, one is quicker.
const PARALLEL_FROM: usize = 4_096;

/// Every record of a stored list, in order, read on two threads when the list is long, as `R`:
/// a [`Record`], or a type with fewer of its fields (the others are skipped, not kept).
pub fn records<'a, R: Deserialize<'a> + Send>(list: &'a StoredList) -> Vec<R> {
    let slices: Vec<&[u8]> = list.each_record().collect();
    if slices.len() < PARALLEL_FROM {
        return read(&slices);
    }
    let (front, back) = slices.split_at(slices.len() / 2);
    std::thread::scope(|scope| {
        let back = scope.spawn(|| read(back));
        let mut records = read(front);
        records.extend(back.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        records
    })
}
