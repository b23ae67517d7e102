//! Examples for the OpenAPI document, taken from the demo data. A test checks each against what
//! the demo gateway answers, so they cannot drift from the code.

use serde_json::{Value, json};

/// `GET /meetings/144115214488302892/participants` on the demo: the API page's two sample
/// records, one name holding a control character and one that is not UTF-8.
pub fn seed_meeting() -> Value {
    let person = |userid: &str, name: &str, base64: &str| {
        json!({
            "userid": userid, "ms_open_id": null, "uuid": null, "open_id": null,
            "user_name": name, "user_name_base64": base64, "is_enterprise_user": null,
            "phone": "0A07C3D9...0C01", "join_time": 1572085800, "left_time": 1572089400,
            "instanceid": 1, "user_role": null, "webinar_member_role": null, "IP": null,
            "location": null, "link_type": null, "join_type": null, "net": null,
            "app_version": null, "audio_state": null, "video_state": null,
            "screen_shared_state": null, "customer_data": null
        })
    };
    json!({
        "meeting_id": "144115214488302892",
        "meeting_code": "746950080",
        "subject": "Test Meeting",
        "schedule_start_time": 1572085800,
        "schedule_end_time": 1572089400,
        "total_count": 2,
        "complete": true,
        "incomplete_reason": null,
        "upstream_windows": 1,
        "participants": [
            person("test1", "t\u{15}st1", "dBVzdDE="),
            person("test2", "tk\u{fffd}t2", "dGvzdDI="),
        ]
    })
}

/// The seed page's sample meeting as CSV (times in China's zone): what a `format=csv` answer
/// holds.
pub fn seed_meeting_csv() -> Value {
    let header = "userid,ms_open_id,uuid,open_id,user_name,user_name_base64,is_enterprise_user,\
                  phone,join_time,left_time,instanceid,user_role,webinar_member_role,IP,location,\
                  link_type,join_type,net,app_version,audio_state,video_state,\
                  screen_shared_state,customer_data,provisional";
    let row = |userid: &str, name: &str, base64: &str| {
        format!(
            "{userid},,,,{name},{base64},,0A07C3D9...0C01,2019-10-26T18:30:00+08:00,\
             2019-10-26T19:30:00+08:00,1,,,,,,,,,,,,,false\r\n"
        )
    };
    Value::String(format!(
        "\u{feff}{header}\r\n{}{}",
        row("test1", "t\u{15}st1", "dBVzdDE="),
        row("test2", "tk\u{fffd}t2", "dGvzdDI="),
    ))
}

/// `GET /meetings/144115214488302892/attendance` on the demo (but `as_of`, the time the list
/// was fetched).
pub fn seed_attendance() -> Value {
    let person = |userid: &str, name: &str, base64: &str| {
        json!({
            "person": userid, "user_name": name, "user_name_base64": base64,
            "userid": userid, "ms_open_id": null, "uuid": null, "user_role": null,
            "first_join_time": 1572085800, "last_left_time": 1572089400, "still_in": false,
            "attended_seconds": 3600, "session_count": 1, "device_count": 1,
            "sessions": [{"join_time": 1572085800, "left_time": 1572089400, "instanceid": 1}]
        })
    };
    json!({
        "meeting_id": "144115214488302892",
        "meeting_code": "746950080",
        "subject": "Test Meeting",
        "schedule_start_time": 1572085800,
        "schedule_end_time": 1572089400,
        "as_of": 1764547200,
        "complete": true,
        "incomplete_reason": null,
        "upstream_windows": 1,
        "summary": {
            "records": 2, "attendees": 2, "still_in": 0, "peak_concurrent": 2,
            "peak_at": 1572085800, "median_attended_seconds": 3600,
            "total_attended_seconds": 7200
        },
        "attendees": [
            person("test1", "t\u{15}st1", "dBVzdDE="),
            person("test2", "tk\u{fffd}t2", "dGvzdDI="),
        ]
    })
}

/// The same as CSV: one row per person.
pub fn seed_attendance_csv() -> Value {
    let header = "person,user_name,user_name_base64,userid,ms_open_id,uuid,user_role,\
                  first_join_time,last_left_time,still_in,attended_seconds,session_count,\
                  device_count";
    let row = |userid: &str, name: &str, base64: &str| {
        format!(
            "{userid},{name},{base64},{userid},,,,2019-10-26T18:30:00+08:00,\
             2019-10-26T19:30:00+08:00,false,3600,1,1\r\n"
        )
    };
    Value::String(format!(
        "\u{feff}{header}\r\n{}{}",
        row("test1", "t\u{15}st1", "dBVzdDE="),
        row("test2", "tk\u{fffd}t2", "dGvzdDI="),
    ))
}
