//! The demo's 50,000-record list (the upstream's cap of its 60,000-record meeting), as the
//! client hands it to the renderer: shared by the in-process benchmarks.

use wemeet_gateway::simulator::demo::HUGE_MEETING;
use wemeet_gateway::simulator::demo_dataset;
use wemeet_gateway::upstream::{Completeness, ListHead, Participant, RECORD_CAP};

/// The list's head and records, and the meeting's scheduled end (unix seconds).
pub fn huge_list() -> (ListHead, Vec<Participant>, i64) {
    let dataset = demo_dataset();
    let meeting = &dataset.meetings[HUGE_MEETING];
    let records: Vec<Participant> = meeting.records(None).expect("the meeting has records")
        [..RECORD_CAP]
        .iter()
        .map(|r| serde_json::from_str(r.json.get()).expect("the simulator's records decode"))
        .collect();
    let head = ListHead {
        meeting_id: Some(meeting.meeting_id.clone()),
        meeting_code: Some(meeting.meeting_code.clone()),
        subject: Some(meeting.subject.clone()),
        schedule_start_time: Some(meeting.schedule_start_time),
        schedule_end_time: Some(meeting.schedule_end_time),
        total_count: Some(60_000),
        completeness: Completeness::TruncatedAtRecordCap,
        pages: 500,
        records: records.len(),
        still_in: records.iter().filter(|r| r.left_time.is_none()).count(),
        windows: 1,
    };
    (head, records, meeting.schedule_end_time)
}
