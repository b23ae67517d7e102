//! Request verification exactly as Tencent does it: headers present, credentials known, clock
//! within five minutes, signature over the raw target and body, and no (timestamp, nonce) pair
//! twice within five minutes.

use std::time::Duration;

use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::TencentError;
use crate::upstream::signing::{Credentials, signature};

/// How far a request's timestamp may be from the simulator's clock, and how long a nonce is
/// remembered.
const CLOCK_TOLERANCE_SECS: i64 = 300;

/// Remembers (SecretId, timestamp, nonce) triples for five minutes.
#[derive(Debug)]
pub struct ReplayGuard(moka::sync::Cache<(String, String, String), ()>);

impl ReplayGuard {
    pub fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(CLOCK_TOLERANCE_SECS as u64))
                .build(),
        )
    }

    /// True the first time a triple is seen.
    fn first_use(&self, key: (String, String, String)) -> bool {
        self.0.entry(key).or_insert(()).is_fresh()
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, TencentError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TencentError::new(200001, format!("missing or malformed header {name}")))
}

/// Verifies one request; `now` is the simulator's unix time in seconds.
pub fn verify(
    headers: &HeaderMap,
    method: &str,
    target: &str,
    body: &[u8],
    accepted: &Credentials,
    now: i64,
    replay: &ReplayGuard,
) -> Result<(), TencentError> {
    let key = header(headers, "x-tc-key")?;
    let timestamp = header(headers, "x-tc-timestamp")?;
    let nonce = header(headers, "x-tc-nonce")?;
    let sent_signature = header(headers, "x-tc-signature")?;
    let app_id = header(headers, "appid")?;
    let positive = nonce.parse::<u64>().is_ok_and(|n| n > 0);
    if !nonce.bytes().all(|b| b.is_ascii_digit()) || !positive {
        return Err(TencentError::new(
            200001,
            "X-TC-Nonce must be a positive integer",
        ));
    }

    let sdk_id = headers
        .get("sdkid")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let sdk_ok = match (sdk_id, accepted.sdk_id()) {
        (None, _) => true,
        (Some(sent), Some(assigned)) => sent == assigned,
        (Some(_), None) => false,
    };
    if key != accepted.secret_id() || app_id != accepted.app_id() || !sdk_ok {
        return Err(TencentError::new(
            190303,
            "unknown AppId, SdkId or SecretId",
        ));
    }

    let skew_ok = timestamp
        .parse::<i64>()
        .is_ok_and(|ts| now.abs_diff(ts) <= CLOCK_TOLERANCE_SECS as u64);
    if !skew_ok {
        return Err(TencentError::new(
            190300,
            "X-TC-Timestamp is more than 5 minutes off the server's time",
        ));
    }

    let expected = signature(
        key,
        accepted.secret_key(),
        method,
        target,
        body,
        timestamp,
        nonce,
    );
    if !bool::from(expected.as_bytes().ct_eq(sent_signature.as_bytes())) {
        return Err(TencentError::new(200003, "signature verification failed"));
    }

    if !replay.first_use((key.to_owned(), timestamp.to_owned(), nonce.to_owned())) {
        return Err(TencentError::new(
            190301,
            "replayed request: this X-TC-Timestamp and X-TC-Nonce were used before",
        ));
    }
    Ok(())
}
