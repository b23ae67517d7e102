//! The upstream's JSON, decoded leniently.
//!
//! Strict about what the gateway's contract needs (a record's `join_time` must be a time), lenient
//! about everything else: numbers may arrive as numeric strings and strings as numbers, unknown
//! fields are ignored, a missing `participants` is an empty page, an empty `left_time` means the
//! person is still in the meeting.

use compact_str::CompactString;
use serde::Deserialize;

/// One page of `GET /v1/meetings/{id}/participants`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub meeting_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub meeting_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub schedule_start_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub schedule_end_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub participants: Vec<Participant>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub has_remaining: bool,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub next_pos: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub total_count: Option<i64>,
    /// Present when the upstream answered an error with status 200.
    #[serde(default)]
    pub error_info: Option<ErrorInfo>,
}

/// One participation record: one person joining once. Field names are the upstream's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Participant {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub userid: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ms_open_id: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub uuid: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub open_id: Option<CompactString>,
    /// Display name, base64 of bytes that need not be UTF-8.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_name: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub is_enterprise_user: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub phone: Option<CompactString>,
    /// Unix seconds; required.
    #[serde(deserialize_with = "lenient::int")]
    pub join_time: i64,
    /// Unix seconds; `None` while the person is still in the meeting.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub left_time: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub instanceid: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub user_role: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub webinar_member_role: Option<i64>,
    #[serde(default, rename = "IP", deserialize_with = "lenient::opt_string")]
    pub ip: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub location: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub link_type: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub join_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub net: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub app_version: Option<CompactString>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub audio_state: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub video_state: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub screen_shared_state: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub customer_data: Option<CompactString>,
}

/// `{"error_info": {...}}`, Tencent's error body.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error_info: ErrorInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorInfo {
    #[serde(deserialize_with = "lenient::int")]
    pub error_code: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub new_error_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub message: Option<String>,
}

/// Deserializers that accept what the upstream documents and what it is known to send instead.
mod lenient {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    /// An integer given as a JSON number or a numeric string.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        opt_int(d)?.ok_or_else(|| de::Error::custom("expected an integer, found an empty value"))
    }

    /// An integer, a numeric string, or empty (`""`, `null`) for none.
    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<i64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string of decimal digits")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(Some).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(Some(v as i64))
                } else {
                    Err(E::custom(format!("expected an integer, found {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let v = v.trim();
                if v.is_empty() {
                    return Ok(None);
                }
                v.parse()
                    .map(Some)
                    .map_err(|_| E::custom(format!("expected an integer, found {v:?}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V)
    }

    /// A string, or a number or boolean given where a string is documented. A record's texts
    /// are [`CompactString`]s: most ids, names and addresses fit in its 24 bytes, so decoding a
    /// record allocates only for its long texts.
    pub fn opt_string<'de, D, S>(d: D) -> Result<Option<S>, D::Error>
    where
        D: Deserializer<'de>,
        S: From<String> + for<'a> From<&'a str>,
    {
        struct V<S>(std::marker::PhantomData<S>);
        impl<S: From<String> + for<'a> From<&'a str>> Visitor<'_> for V<S> {
            type Value = Option<S>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(S::from(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(S::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(S::from(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(S::from(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Some(S::from(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(S::from(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }

    /// A boolean given as `true`/`false`, `0`/`1` or their string forms.
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(opt_flag(d)?.unwrap_or(false))
    }

    pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(v != 0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v.trim() {
                    "" => Ok(None),
                    "true" | "1" => Ok(Some(true)),
                    "false" | "0" => Ok(Some(false)),
                    other => Err(E::custom(format!("expected a boolean, found {other:?}"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V)
    }

    /// A list, or `null` for an empty one.
    pub fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // serde_json gives no size hint, and growing by doubling would move every
                // record six times on a full page of 100.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(100).min(100));
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(E::custom("expected a list, found a string"))
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_page_example_decodes() {
        let body = r#"{
          "meeting_id": "144115214488302892", "meeting_code": "746950080",
          "subject": "Test Meeting", "schedule_start_time": "1572085800",
          "schedule_end_time": "1572089400", "has_remaining": false,
          "participants": [
            {"userid": "test1", "user_name": "dBVzdDE=", "phone": "0A07C3D9...0C01",
             "join_time": "1572085800", "left_time": "1572089400", "instanceid": 1}
          ]
        }"#;
        let page: Page = serde_json::from_str(body).expect("decodes");
        assert_eq!(page.schedule_end_time, Some(1572089400));
        assert!(!page.has_remaining);
        let p = &page.participants[0];
        assert_eq!(p.userid.as_deref(), Some("test1"));
        assert_eq!((p.join_time, p.left_time), (1572085800, Some(1572089400)));
        assert_eq!(p.instanceid, Some(1));
    }

    #[test]
    fn numbers_and_strings_are_accepted_either_way() {
        let body = r#"{"participants": [{"userid": 42, "join_time": 1572085800,
            "left_time": "", "instanceid": "5", "audio_state": 1, "IP": "10.0.0.1",
            "is_enterprise_user": "true", "some_future_field": {"x": [1, 2]}}],
            "has_remaining": "true", "next_pos": "5678", "total_count": 3.0}"#;
        let page: Page = serde_json::from_str(body).expect("decodes");
        let p = &page.participants[0];
        assert_eq!(p.userid.as_deref(), Some("42"));
        assert_eq!(p.left_time, None, "empty left_time means still in");
        assert_eq!(p.instanceid, Some(5));
        assert_eq!(p.audio_state, Some(true));
        assert_eq!(p.is_enterprise_user, Some(true));
        assert_eq!(p.ip.as_deref(), Some("10.0.0.1"));
        assert!(page.has_remaining);
        assert_eq!((page.next_pos, page.total_count), (Some(5678), Some(3)));
    }

    #[test]
    fn a_missing_or_null_participants_list_is_empty() {
        for body in [r#"{"has_remaining": false}"#, r#"{"participants": null}"#] {
            let page: Page = serde_json::from_str(body).expect("decodes");
            assert!(page.participants.is_empty());
        }
    }

    #[test]
    fn what_the_contract_needs_is_strict() {
        for record in [
            r#"{}"#,
            r#"{"join_time": ""}"#,
            r#"{"join_time": "yesterday"}"#,
        ] {
            let body = format!(r#"{{"participants": [{record}]}}"#);
            assert!(serde_json::from_str::<Page>(&body).is_err(), "{record}");
        }
        assert!(serde_json::from_str::<Page>(r#"{"next_pos": 1.5}"#).is_err());
    }

    #[test]
    fn error_bodies_decode() {
        let body =
            r#"{"error_info":{"error_code":9003,"new_error_code":"9003","message":"会议不存在"}}"#;
        let err: ErrorBody = serde_json::from_str(body).expect("decodes");
        assert_eq!(err.error_info.error_code, 9003);
        assert_eq!(err.error_info.new_error_code, Some(9003));
    }
}

/// Properties of the wire decoder over generated pages: every value the upstream may spell
/// several ways decodes to the same record, and no body (garbage, huge numbers, names that are
/// not UTF-8) makes it panic or wrap a number.
#[cfg(test)]
mod properties {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::upstream::UpstreamError;
    use crate::upstream::client::decode;

    /// How a field is spelled on the wire: a value, or one of the spellings of "none".
    #[derive(Debug, Clone)]
    enum Spelling {
        Plain(Value),
        Absent,
    }

    /// An optional integer, spelled as a number, a numeric string (maybe padded with spaces),
    /// or a whole float; none as absent, `null` or `""`.
    fn int_field(value: Option<i64>, how: u8) -> Spelling {
        match value {
            None => match how % 3 {
                0 => Spelling::Absent,
                1 => Spelling::Plain(Value::Null),
                _ => Spelling::Plain(json!("")),
            },
            Some(v) => Spelling::Plain(match how % 4 {
                0 => json!(v),
                1 => json!(v.to_string()),
                2 => json!(format!(" {v} ")),
                _ if v.unsigned_abs() < 1 << 52 => json!(v as f64),
                _ => json!(v),
            }),
        }
    }

    fn flag_field(value: Option<bool>, how: u8) -> Spelling {
        match value {
            None => int_field(None, how),
            Some(v) => Spelling::Plain(match how % 4 {
                0 => json!(v),
                1 => json!(u8::from(v)),
                2 => json!(if v { "true" } else { "false" }),
                _ => json!(if v { "1" } else { "0" }),
            }),
        }
    }

    fn text_field(value: Option<&str>, how: u8) -> Spelling {
        match value {
            None => match how % 2 {
                0 => Spelling::Absent,
                _ => Spelling::Plain(Value::Null),
            },
            Some(v) => Spelling::Plain(json!(v)),
        }
    }

    fn put(object: &mut Map<String, Value>, key: &str, field: Spelling) {
        if let Spelling::Plain(value) = field {
            object.insert(key.to_owned(), value);
        }
    }

    fn text() -> impl Strategy<Value = Option<CompactString>> {
        proptest::option::of(any::<String>().prop_map(CompactString::from))
    }

    prop_compose! {
        /// A record as the upstream holds it; the name is base64 of any bytes, UTF-8 or not.
        fn record()(
            ids in (text(), text(), text(), text()),
            name in proptest::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            join_time in any::<i64>(),
            left_time in proptest::option::of(any::<i64>()),
            ints in (proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>()),
                     proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>())),
            flags in proptest::collection::vec(proptest::option::of(any::<bool>()), 4),
            more in (text(), text(), text(), text(), text(), text()),
        ) -> Participant {
            Participant {
                userid: ids.0,
                ms_open_id: ids.1,
                uuid: ids.2,
                open_id: ids.3,
                user_name: name.map(|bytes| CompactString::from(BASE64.encode(bytes))),
                is_enterprise_user: flags[0],
                phone: more.0,
                join_time,
                left_time,
                instanceid: ints.0,
                user_role: ints.1,
                webinar_member_role: ints.2,
                ip: more.1,
                location: more.2,
                link_type: more.3,
                join_type: ints.3,
                net: more.4,
                app_version: more.5,
                audio_state: flags[1],
                video_state: flags[2],
                screen_shared_state: flags[3],
                customer_data: None,
            }
        }
    }

    /// The record on the wire, each field spelled as `how` picks.
    fn spelled(p: &Participant, how: &[u8]) -> Value {
        let mut o = Map::new();
        let mut h = how.iter().copied().cycle();
        let mut next = move || h.next().unwrap_or(0);
        for (key, value) in [
            ("userid", &p.userid),
            ("ms_open_id", &p.ms_open_id),
            ("uuid", &p.uuid),
            ("open_id", &p.open_id),
            ("user_name", &p.user_name),
            ("phone", &p.phone),
            ("IP", &p.ip),
            ("location", &p.location),
            ("link_type", &p.link_type),
            ("net", &p.net),
            ("app_version", &p.app_version),
            ("customer_data", &p.customer_data),
        ] {
            put(&mut o, key, text_field(value.as_deref(), next()));
        }
        put(&mut o, "join_time", int_field(Some(p.join_time), next()));
        for (key, value) in [
            ("left_time", p.left_time),
            ("instanceid", p.instanceid),
            ("user_role", p.user_role),
            ("webinar_member_role", p.webinar_member_role),
            ("join_type", p.join_type),
        ] {
            put(&mut o, key, int_field(value, next()));
        }
        for (key, value) in [
            ("is_enterprise_user", p.is_enterprise_user),
            ("audio_state", p.audio_state),
            ("video_state", p.video_state),
            ("screen_shared_state", p.screen_shared_state),
        ] {
            put(&mut o, key, flag_field(value, next()));
        }
        o.insert("a_field_from_the_future".into(), json!({"x": [1, "2"]}));
        Value::Object(o)
    }

    /// A JSON number or string outside `i64`, in one of the ways a broken upstream could send it.
    fn out_of_range() -> impl Strategy<Value = String> {
        prop_oneof![
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(|v| v.to_string()),
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(|v| format!("\"{v}\"")),
            "-?[1-9][0-9]{19,40}",
            "\"-?[1-9][0-9]{19,40}\"",
            (9.0e15f64..1.0e300).prop_map(|v| format!("{v:e}")),
            "-?[0-9]{1,6}\\.[0-9]*[1-9]",
        ]
    }

    proptest! {
        #![proptest_config(Config::with_cases(10_000))]

        #[test]
        fn a_page_decodes_to_its_records_however_each_value_is_spelled(
            records in prop::collection::vec(record(), 0..4),
            how in prop::collection::vec(any::<u8>(), 1..64),
            has_remaining in any::<bool>(),
            next_pos in proptest::option::of(0..i64::MAX),
            total_count in proptest::option::of(0..i64::MAX),
        ) {
            let mut page = Map::new();
            page.insert("participants".into(), records.iter().map(|r| spelled(r, &how)).collect());
            put(&mut page, "has_remaining", flag_field(Some(has_remaining), how[0]));
            put(&mut page, "next_pos", int_field(next_pos, how[0]));
            put(&mut page, "total_count", int_field(total_count, how[how.len() / 2]));
            let body = serde_json::to_vec(&page).expect("serialises");
            let decoded = decode(200, &body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded.participants, records);
            prop_assert_eq!(decoded.has_remaining, has_remaining);
            prop_assert_eq!((decoded.next_pos, decoded.total_count), (next_pos, total_count));
        }

        #[test]
        fn a_number_outside_i64_is_an_undecodable_page_never_a_wrapped_value(
            field in prop::sample::select(vec!["join_time", "left_time", "instanceid", "user_role", "next_pos", "total_count"]),
            number in out_of_range(),
        ) {
            let record = if matches!(field, "next_pos" | "total_count") {
                format!(r#"{{"join_time": 1}}], "{field}": {number}, "x": [0"#)
            } else {
                format!(r#"{{"join_time": 1, "{field}": {number}}}"#)
            };
            let body = format!(r#"{{"participants": [{record}]}}"#);
            let outcome = decode(200, body.as_bytes());
            prop_assert!(
                matches!(outcome, Err(UpstreamError::Undecodable(_))),
                "{body}: {outcome:?}"
            );
        }

        #[test]
        fn any_body_with_any_status_is_a_page_or_a_classified_error(
            status in prop_oneof![Just(200u16), 100u16..600],
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                any::<String>().prop_map(String::into_bytes),
                "[{}\\[\\],:\"0-9a-z_ .e+-]{0,80}".prop_map(String::into_bytes),
                "[0-9a-z_]{0,12}".prop_map(|k| format!(r#"{{"participants":[{{"join_time":"1","{k}":[]}}],"error_info":{{"error_code":"{k}"}}}}"#).into_bytes()),
            ],
        ) {
            match decode(status, &body) {
                Ok(_) => prop_assert_eq!(status, 200),
                Err(UpstreamError::Undecodable(_)) => prop_assert_eq!(status, 200),
                Err(UpstreamError::Api { .. } | UpstreamError::Status(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
