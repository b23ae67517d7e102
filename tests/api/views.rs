//! The views of a cached list: attendance per person, CSV, people still in, and lists whose
//! window spans several upstream windows. Attendance is computed here again, independently (a
//! different method: elementary time segments, counted), and compared field by field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wemeet_gateway::simulator::demo::{
    LIVE_MEETING, RECURRING_MEETING, SEED_MEETING, STANDING_MEETING, SUB_MEETINGS,
};

use crate::helpers::{TestGateway, problem, start_gateway};

async fn json(gateway: &TestGateway, path: &str) -> Value {
    let response = gateway.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// Who a record belongs to: its userid, else ms_open_id, else uuid; `None` for none.
fn person_of(record: &Value) -> Option<String> {
    ["userid", "ms_open_id", "uuid"]
        .iter()
        .filter_map(|field| text(&record[*field]))
        .find(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Attended seconds over elementary segments: every join and leave cuts time into pieces, and a
/// piece counts when any session of the person covers it.
fn covered_seconds(sessions: &[(i64, i64)]) -> i64 {
    let mut cuts: Vec<i64> = sessions.iter().flat_map(|(a, b)| [*a, *b]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .filter(|w| sessions.iter().any(|(a, b)| *a <= w[0] && w[1] <= *b))
        .map(|w| w[1] - w[0])
        .sum()
}

/// Checks an attendance answer against the participants list it was made from.
fn check_attendance(list: &Value, attendance: &Value) {
    let as_of = attendance["as_of"].as_i64().unwrap();
    let records = list["participants"].as_array().unwrap();
    for field in [
        "meeting_id",
        "meeting_code",
        "subject",
        "complete",
        "upstream_windows",
    ] {
        assert_eq!(list[field], attendance[field], "{field}");
    }
    // Group by person; records with no identity stand alone.
    let mut people: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut anonymous = Vec::new();
    for record in records {
        match person_of(record) {
            Some(person) => people.entry(person).or_default().push(record),
            None => anonymous.push(vec![record]),
        }
    }
    let rows = attendance["attendees"].as_array().unwrap();
    assert_eq!(rows.len(), people.len() + anonymous.len());
    let interval = |r: &Value| {
        let join = r["join_time"].as_i64().unwrap();
        let end = r["left_time"].as_i64().unwrap_or(as_of).max(join);
        (join, end)
    };
    let mut all_intervals: Vec<Vec<(i64, i64)>> = Vec::new();
    for row in rows {
        let person = row["person"].as_str().unwrap();
        let mut mine: Vec<&Value> = if person.is_empty() {
            anonymous.pop().expect("an anonymous record")
        } else {
            people[person].clone()
        };
        mine.sort_by_key(|r| r["join_time"].as_i64().unwrap());
        let latest = mine.last().unwrap();
        let sessions: Vec<(i64, i64)> = mine.iter().map(|r| interval(r)).collect();
        let open = mine.iter().any(|r| r["left_time"].is_null());
        let devices: BTreeSet<i64> = mine
            .iter()
            .filter_map(|r| r["instanceid"].as_i64())
            .collect();
        let expected = serde_json::json!({
            "person": person,
            "user_name": latest["user_name"],
            "user_name_base64": latest["user_name_base64"],
            "userid": latest["userid"],
            "ms_open_id": latest["ms_open_id"],
            "uuid": latest["uuid"],
            "user_role": latest["user_role"],
            "first_join_time": mine[0]["join_time"],
            "last_left_time": if open { Value::Null } else {
                mine.iter().filter_map(|r| r["left_time"].as_i64()).max().into()
            },
            "still_in": open,
            "attended_seconds": covered_seconds(&sessions),
            "session_count": mine.len(),
            "device_count": devices.len(),
            "sessions": mine.iter().map(|r| {
                let mut session = serde_json::json!({
                    "join_time": r["join_time"], "left_time": r["left_time"],
                    "instanceid": r["instanceid"],
                });
                if r["provisional"] == true {
                    session["provisional"] = true.into();
                }
                session
            }).collect::<Vec<_>>(),
        });
        assert_eq!(row, &expected, "person {person}");
        all_intervals.push(sessions);
    }
    // Rows by first join.
    let firsts: Vec<i64> = rows
        .iter()
        .map(|r| r["first_join_time"].as_i64().unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]));

    // The peak: people present at each start (a person counted once however many devices).
    let mut starts: Vec<i64> = all_intervals.iter().flatten().map(|(a, _)| *a).collect();
    starts.sort_unstable();
    let (mut peak, mut peak_at) = (0, Value::Null);
    for t in starts {
        let present = all_intervals
            .iter()
            .filter(|sessions| sessions.iter().any(|(a, b)| *a <= t && t < *b))
            .count();
        if present > peak {
            (peak, peak_at) = (present, t.into());
        }
    }
    let mut attended: Vec<i64> = rows
        .iter()
        .map(|r| r["attended_seconds"].as_i64().unwrap())
        .collect();
    attended.sort_unstable();
    let n = attended.len();
    let median = match n {
        0 => 0,
        _ if n % 2 == 1 => attended[n / 2],
        _ => (attended[n / 2 - 1] + attended[n / 2]) / 2,
    };
    let expected = serde_json::json!({
        "records": records.len(),
        "attendees": rows.len(),
        "still_in": rows.iter().filter(|r| r["still_in"] == true).count(),
        "peak_concurrent": peak,
        "peak_at": peak_at,
        "median_attended_seconds": median,
        "total_attended_seconds": attended.iter().sum::<i64>(),
    });
    assert_eq!(attendance["summary"], expected);
}

#[tokio::test]
async fn attendance_agrees_with_an_independent_count_on_every_demo_meeting() {
    let gateway = start_gateway().await;
    let sub = format!("?sub_meeting_id={}", SUB_MEETINGS[0]);
    let cases = [
        (SEED_MEETING, ""),
        (LIVE_MEETING, ""),
        (RECURRING_MEETING, sub.as_str()),
        (STANDING_MEETING, ""),
    ];
    for (meeting, query) in cases {
        let list = json(
            &gateway,
            &format!("/meetings/{meeting}/participants{query}"),
        )
        .await;
        let calls = gateway.upstream_calls();
        let attendance = json(&gateway, &format!("/meetings/{meeting}/attendance{query}")).await;
        assert_eq!(
            gateway.upstream_calls(),
            calls,
            "answered from the cached list"
        );
        check_attendance(&list, &attendance);
    }
    // The live meeting's data holds what makes attendance hard.
    let list = json(&gateway, &format!("/meetings/{LIVE_MEETING}/participants")).await;
    let attendance = json(&gateway, &format!("/meetings/{LIVE_MEETING}/attendance")).await;
    let rows = attendance["attendees"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["device_count"].as_u64() > Some(1)));
    assert!(rows.iter().any(|r| r["still_in"] == true));
    assert!(
        rows.iter()
            .any(|r| r["userid"] == "" && r["person"] == r["ms_open_id"])
    );
    assert!(
        rows.iter()
            .any(|r| r["ms_open_id"] == "" && r["person"] == r["uuid"])
    );
    assert!(rows.iter().any(|r| {
        r["user_name"]
            .as_str()
            .is_some_and(|name| name.contains('\u{fffd}'))
    }));
    let overlapping = rows.iter().any(|r| {
        let total: i64 = r["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let as_of = attendance["as_of"].as_i64().unwrap();
                s["left_time"].as_i64().unwrap_or(as_of) - s["join_time"].as_i64().unwrap()
            })
            .sum();
        total > r["attended_seconds"].as_i64().unwrap()
    });
    assert!(overlapping, "some person's sessions overlap");
    assert!(list["participants"].as_array().unwrap().len() > rows.len());

    // `still_in=true`: only those rows, the summary unchanged.
    let still = json(
        &gateway,
        &format!("/meetings/{LIVE_MEETING}/attendance?still_in=true"),
    )
    .await;
    let still_rows: Vec<&Value> = rows.iter().filter(|r| r["still_in"] == true).collect();
    assert_eq!(
        still["attendees"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        still_rows
    );
    assert_eq!(still["summary"], attendance["summary"]);
}

#[tokio::test]
async fn still_in_filters_the_participants_list_to_open_records() {
    let gateway = start_gateway().await;
    let path = format!("/meetings/{LIVE_MEETING}/participants");
    let whole = json(&gateway, &path).await;
    let still = json(&gateway, &format!("{path}?still_in=true")).await;
    let open: Vec<&Value> = whole["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["left_time"].is_null())
        .collect();
    assert!(!open.is_empty());
    assert_eq!(
        still["participants"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        open
    );
    assert_eq!(still["total_count"], whole["total_count"]);
    assert_eq!(gateway.upstream_calls(), 13, "one fetch for both");
}

/// A CSV body read by the `csv` crate: header and rows, after checking the byte-order mark.
fn read_csv(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let rest = body
        .strip_prefix("\u{feff}".as_bytes())
        .expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(rest);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A JSON value as the CSV writes it: text as is (a formula neutralised), times in ISO 8601 in
/// China's zone, null as empty.
fn as_cell(value: &Value, time: bool) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Value::String(s) => s.clone(),
        Value::Number(n) if time => {
            let at = jiff::Timestamp::from_second(n.as_i64().unwrap()).unwrap();
            at.to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        }
        other => other.to_string(),
    }
}

fn check_csv_matches(json_rows: &[Value], body: &[u8], skip: &[&str]) {
    let (header, rows) = read_csv(body);
    assert_eq!(rows.len(), json_rows.len());
    for (row, record) in rows.iter().zip(json_rows) {
        let object = record.as_object().unwrap();
        let expected_columns: Vec<&String> = object
            .keys()
            .filter(|k| !skip.contains(&k.as_str()))
            .collect();
        let mut columns: Vec<&String> = header.iter().collect();
        if !object.contains_key("provisional") {
            columns.retain(|c| *c != "provisional");
        }
        assert_eq!(columns, expected_columns);
        for (column, cell) in header.iter().zip(row) {
            let value = record.get(column).unwrap_or(&Value::Bool(false));
            let time = column.ends_with("_time");
            assert_eq!(cell, &as_cell(value, time), "{column}");
        }
    }
}

#[tokio::test]
async fn csv_answers_hold_the_json_s_rows_and_values_ready_for_excel() {
    let gateway = start_gateway().await;
    let base = format!("/meetings/{LIVE_MEETING}");
    let list = json(&gateway, &format!("{base}/participants")).await;
    let attendance = json(&gateway, &format!("{base}/attendance")).await;

    let by_accept = gateway
        .get_with(&format!("{base}/participants"), "accept", "text/csv")
        .await;
    assert_eq!(by_accept.status(), 200);
    let headers = by_accept.headers().clone();
    assert_eq!(
        headers["content-type"],
        "text/csv; charset=utf-8; header=present"
    );
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"meeting-{LIVE_MEETING}-participants.csv\"")
    );
    assert_eq!(headers["vary"], "Accept-Encoding, Accept");
    let body = by_accept.bytes().await.unwrap();
    check_csv_matches(list["participants"].as_array().unwrap(), &body, &[]);
    // A name that a spreadsheet would run arrives neutralised.
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("'=HYPERLINK(\"\"x\"\")"),
        "neutralised and quoted"
    );
    assert!(list.to_string().contains("\"=HYPERLINK(\\\"x\\\")"));

    let by_format = gateway
        .get(&format!("{base}/participants?format=csv"))
        .await;
    assert_eq!(by_format.headers()["etag"], headers["etag"]);
    assert_eq!(by_format.bytes().await.unwrap(), body);

    let people = gateway.get(&format!("{base}/attendance?format=csv")).await;
    assert_eq!(
        people.headers()["content-disposition"],
        format!("attachment; filename=\"meeting-{LIVE_MEETING}-attendance.csv\"")
    );
    let body = people.bytes().await.unwrap();
    check_csv_matches(
        attendance["attendees"].as_array().unwrap(),
        &body,
        &["sessions"],
    );

    // Another zone: the same instants, other clock times.
    let berlin = gateway
        .get(&format!("{base}/attendance?format=csv&tz=Europe/Berlin"))
        .await
        .bytes()
        .await
        .unwrap();
    let (header, rows) = read_csv(&berlin);
    let column = header.iter().position(|c| c == "first_join_time").unwrap();
    let first = jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%:z", &rows[0][column]).unwrap();
    assert_eq!(
        first.as_second(),
        attendance["attendees"][0]["first_join_time"]
            .as_i64()
            .unwrap()
    );
    assert!(!rows[0][column].ends_with("+08:00"));
    assert_eq!(gateway.upstream_calls(), 13, "every view from one fetch");
}

#[tokio::test]
async fn views_are_validated_gzipped_and_revalidated_like_the_list() {
    let gateway = start_gateway().await;
    let path = format!("/meetings/{LIVE_MEETING}/attendance?format=csv");
    let plain = gateway.get(&path).await;
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let body = plain.bytes().await.unwrap();
    let zipped = gateway.get_with(&path, "accept-encoding", "gzip").await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_ne!(zipped.headers()["etag"].to_str().unwrap(), etag);
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, body);
    let again = gateway.get_with(&path, "if-none-match", &etag).await;
    assert_eq!(again.status(), 304);
    // Each view has its own validator.
    let json = gateway
        .get(&format!("/meetings/{LIVE_MEETING}/attendance"))
        .await;
    assert_ne!(json.headers()["etag"].to_str().unwrap(), etag);
    assert!(
        json.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("hit"),
    );
    // Bad view parameters name themselves, before any upstream call.
    for (query, parameter) in [
        ("format=xml", "format"),
        ("still_in=yes", "still_in"),
        ("tz=Mars%2FOlympus", "tz"),
        ("tz=", "tz"),
    ] {
        let (status, body) = problem(
            gateway
                .get(&format!("/meetings/{SEED_MEETING}/attendance?{query}"))
                .await,
        )
        .await;
        assert_eq!((status, body["parameter"].as_str()), (400, Some(parameter)));
    }
    let (status, body) = problem(gateway.get("/meetings/12a/attendance").await).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("meeting_id"))
    );
    assert_eq!(gateway.upstream_calls(), 13);
}

#[tokio::test]
async fn a_62_day_window_takes_two_upstream_windows_and_keeps_each_record_once() {
    let gateway = start_gateway().await;
    let whole = json(
        &gateway,
        &format!("/meetings/{STANDING_MEETING}/participants"),
    )
    .await;
    let records = whole["participants"].as_array().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let (start, end) = (now - 62 * 86_400, now);
    let split = start + 31 * 86_400;
    // What each window holds, by the upstream's rule (a record whose time overlaps it).
    let in_window = |r: &&Value, from: i64, to: i64| {
        r["join_time"].as_i64().unwrap() <= to
            && r["left_time"].as_i64().is_none_or(|left| left >= from)
    };
    let first = records
        .iter()
        .filter(|r| in_window(r, start, split))
        .count();
    let second = records.iter().filter(|r| in_window(r, split, end)).count();
    let both = records
        .iter()
        .filter(|r| in_window(r, start, split) && in_window(r, split, end))
        .count();
    assert!(
        first > both && second > both && both > 0,
        "records on each side only, and across the split"
    );
    let calls = gateway.upstream_calls();
    let long = json(
        &gateway,
        &format!("/meetings/{STANDING_MEETING}/participants?start_time={start}&end_time={end}"),
    )
    .await;
    assert_eq!(long["upstream_windows"], 2);
    assert_eq!(long["complete"], true);
    assert_eq!(
        gateway.upstream_calls() - calls,
        (first.div_ceil(100) + second.div_ceil(100)) as u64,
        "exactly the calls the two windows need"
    );
    // Every record once, in order.
    assert_eq!(long["participants"], whole["participants"]);
    assert_eq!(long["total_count"], whole["total_count"]);
    // A window within 31 days is one.
    let short = json(
        &gateway,
        &format!("/meetings/{STANDING_MEETING}/participants?start_time={split}&end_time={end}"),
    )
    .await;
    assert_eq!(short["upstream_windows"], 1);

    // The upstream ignores a recurring meeting's window: each window brings the whole list,
    // and every record is still kept once.
    let sub = format!(
        "/meetings/{RECURRING_MEETING}/participants?sub_meeting_id={}",
        SUB_MEETINGS[1]
    );
    let whole = json(&gateway, &sub).await;
    let calls = gateway.upstream_calls();
    let long = json(
        &gateway,
        &format!("{sub}&start_time={start}&end_time={end}"),
    )
    .await;
    assert_eq!(long["upstream_windows"], 2);
    assert_eq!(long["participants"], whole["participants"]);
    assert_eq!(long["total_count"], whole["total_count"]);
    assert_eq!(
        gateway.upstream_calls() - calls,
        2,
        "80 records: a page per window"
    );
}
