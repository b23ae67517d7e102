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
        "participants": [
            person("test1", "t\u{15}st1", "dBVzdDE="),
            person("test2", "tk\u{fffd}t2", "dGvzdDI="),
        ]
    })
}
