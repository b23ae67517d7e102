//! The built-in demo dataset: fixed meeting ids, generated records.
//!
//! Records are generated from a fixed seed, with times relative to when the simulator starts, so
//! the "live" meeting is live whenever the demo runs. Names cover what real data holds: Chinese,
//! emoji, control characters and bytes that are not UTF-8; people join several times; some are
//! still in the meeting.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::dataset::{DatasetFile, MeetingFile, SubMeetingFile};

/// The seed page's sample meeting.
pub const SEED_MEETING: &str = "144115214488302892";
/// A live meeting of 1,234 records.
pub const LIVE_MEETING: &str = "100000000000000001";
/// An ended meeting of 60,000 records: past the upstream's 50,000-record cap.
pub const HUGE_MEETING: &str = "100000000000000002";
/// A recurring meeting with two sub-meetings.
pub const RECURRING_MEETING: &str = "100000000000000003";
/// Its sub-meetings.
pub const SUB_MEETINGS: [&str; 2] = ["1717000001", "1717000002"];
/// A meeting that has not started.
pub const NOT_STARTED_MEETING: &str = "100000000000000004";
/// A standing meeting room open for 60 days (it ended a day ago): longer than the upstream's
/// 31-day window, with sessions on both sides of any split and across it.
pub const STANDING_MEETING: &str = "100000000000000005";
/// Users who may read every demo meeting.
const READERS: [&str; 2] = ["owner1", "admin"];
/// A registered user who may read none of them.
pub const OUTSIDER: &str = "guest1";

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The demo dataset, with times relative to `now` (unix seconds).
pub fn dataset(now: i64) -> DatasetFile {
    let mut rng = SplitMix(0x005e_ed0f_de30);
    let readers: Vec<String> = READERS.iter().map(|s| s.to_string()).collect();
    let meeting = |id: &str, code: &str, subject: &str, start: i64, end: i64| MeetingFile {
        meeting_id: id.into(),
        meeting_code: code.into(),
        subject: subject.into(),
        schedule_start_time: start.to_string(),
        schedule_end_time: end.to_string(),
        readers: readers.clone(),
        started: true,
        participants: Vec::new(),
        sub_meetings: Vec::new(),
    };

    let mut seed = meeting(
        SEED_MEETING,
        "746950080",
        "Test Meeting",
        1572085800,
        1572089400,
    );
    seed.participants = vec![
        raw(
            r#"{"userid":"test1","user_name":"dBVzdDE=","phone":"0A07C3D9...0C01","join_time":"1572085800","left_time":"1572089400","instanceid":1}"#,
        ),
        raw(
            r#"{"userid":"test2","user_name":"dGvzdDI=","phone":"0A07C3D9...0C01","join_time":"1572085800","left_time":"1572089400","instanceid":1}"#,
        ),
    ];

    let live_start = now - 2 * HOUR;
    let mut live = meeting(
        LIVE_MEETING,
        "812345671",
        "全员大会 All-hands 🎤",
        live_start,
        now + HOUR,
    );
    live.participants = generate(&mut rng, 1_234, live_start, now, true);

    let huge_start = now - DAY - 3 * HOUR;
    let mut huge = meeting(
        HUGE_MEETING,
        "812345672",
        "Quarterly webinar",
        huge_start,
        now - DAY,
    );
    huge.participants = generate(&mut rng, 60_000, huge_start, now - DAY, false);

    let mut recurring = meeting(
        RECURRING_MEETING,
        "812345673",
        "周会 Weekly sync",
        now - 7 * DAY,
        now - DAY + HOUR,
    );
    recurring.sub_meetings = vec![
        SubMeetingFile {
            sub_meeting_id: SUB_MEETINGS[0].into(),
            participants: generate(&mut rng, 150, now - 7 * DAY, now - 7 * DAY + HOUR, false),
        },
        SubMeetingFile {
            sub_meeting_id: SUB_MEETINGS[1].into(),
            participants: generate(&mut rng, 80, now - DAY, now - DAY + HOUR, false),
        },
    ];

    let mut not_started = meeting(
        NOT_STARTED_MEETING,
        "812345674",
        "Planning (tomorrow)",
        now + DAY,
        now + DAY + HOUR,
    );
    not_started.started = false;

    let standing_start = now - 61 * DAY;
    let mut standing = meeting(
        STANDING_MEETING,
        "812345675",
        "常设会议室 Standing room",
        standing_start,
        now - DAY,
    );
    standing.participants = generate(&mut rng, 400, standing_start, now - DAY, false);

    DatasetFile {
        users: vec![OUTSIDER.to_string()],
        meetings: vec![seed, live, huge, recurring, not_started, standing],
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid demo JSON")
}

/// Display names as bytes: valid text of several scripts, and some that is not UTF-8 at all.
const NAMES: &[&[u8]] = &[
    "张伟".as_bytes(),
    "王芳".as_bytes(),
    "李娜".as_bytes(),
    "Alice".as_bytes(),
    "Émilie".as_bytes(),
    "Bob 🚀".as_bytes(),
    "🎉 派对".as_bytes(),
    "Tab\tand bell\u{7}".as_bytes(),
    b"t\x15st",
    b"tk\xf3t",
    b"\xe5\xbc",
    "黄晓明".as_bytes(),
    // What a spreadsheet would run as a formula: CSV answers neutralise it.
    b"=HYPERLINK(\"x\")",
];

#[derive(Serialize)]
struct DemoRecord {
    userid: String,
    uuid: String,
    ms_open_id: String,
    open_id: &'static str,
    user_name: String,
    is_enterprise_user: bool,
    phone: String,
    join_time: String,
    left_time: String,
    instanceid: i64,
    user_role: i64,
    webinar_member_role: i64,
    join_type: i64,
    audio_state: bool,
    video_state: bool,
    screen_shared_state: bool,
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_data: Option<String>,
}

/// `count` records of people joining between `start` and `end`; when `live`, the last tenth of
/// them are still in the meeting. A person keeps their `uuid` and `ms_open_id` across records;
/// some rejoin after dropping out, some join from a second device while still in on the first
/// (overlapping sessions); people outside the enterprise have no `userid`, and a few of them
/// no `ms_open_id` either.
fn generate(
    rng: &mut SplitMix,
    count: usize,
    start: i64,
    end: i64,
    live: bool,
) -> Vec<Box<RawValue>> {
    const DEVICES: [i64; 8] = [1, 2, 3, 4, 5, 6, 0, 8];
    let span = (end - start).max(1);
    let mut out = Vec::with_capacity(count);
    let mut person = 0usize;
    while out.len() < count {
        person += 1;
        // Most people join once; some rejoin after dropping out.
        let joins = match rng.below(100) {
            0..=79 => 1,
            80..=94 => 2,
            _ => 3,
        };
        let enterprise = rng.below(5) != 0;
        let mut name = NAMES[person % NAMES.len()].to_vec();
        name.extend_from_slice(person.to_string().as_bytes());
        let phone = Sha256::digest(format!("+86-1380000{person:04}/AKIDdemo"));
        let uuid = format!("WM{:016X}", rng.next());
        let ms_open_id = if enterprise || rng.below(10) != 0 {
            format!("{:016x}{:016x}", rng.next(), rng.next())
        } else {
            String::new()
        };
        let mut device = DEVICES[rng.below(DEVICES.len() as u64) as usize];
        for join_number in 0..joins {
            // A later join is from another device half the time.
            if join_number > 0 && rng.below(2) == 0 {
                device = DEVICES[rng.below(DEVICES.len() as u64) as usize];
            }
            if out.len() == count {
                break;
            }
            let index = out.len() as i64;
            let join = start + index * span / count as i64;
            let still_in = live && out.len() >= count - count / 10;
            let left = (!still_in).then(|| (join + 60 + rng.below(span as u64) as i64).min(end));
            let record = DemoRecord {
                userid: if enterprise {
                    format!("user{person:05}")
                } else {
                    String::new()
                },
                uuid: uuid.clone(),
                ms_open_id: ms_open_id.clone(),
                open_id: "",
                user_name: BASE64.encode(&name),
                is_enterprise_user: enterprise,
                phone: hex_upper(&phone),
                join_time: join.to_string(),
                left_time: left.map(|t| t.to_string()).unwrap_or_default(),
                instanceid: device,
                user_role: if person == 1 { 3 } else { 0 },
                webinar_member_role: 0,
                join_type: 1,
                audio_state: rng.below(2) == 0,
                video_state: rng.below(3) == 0,
                screen_shared_state: false,
                ip: still_in.then(|| {
                    format!(
                        "10.{}.{}.{}",
                        rng.below(256),
                        rng.below(256),
                        1 + rng.below(254)
                    )
                }),
                location: still_in.then_some("广东省深圳市"),
                link_type: still_in.then_some("UDP"),
                net: still_in.then_some("WIFI"),
                app_version: still_in.then_some("3.21.2.411"),
                customer_data: person
                    .is_multiple_of(50)
                    .then(|| format!("ticket-{person}")),
            };
            let json = serde_json::to_string(&record).expect("serializable");
            out.push(RawValue::from_string(json).expect("valid JSON"));
        }
    }
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A small deterministic generator (SplitMix64): the demo data is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}
