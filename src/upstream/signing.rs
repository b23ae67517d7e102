//! Tencent Meeting request signing.
//!
//! `X-TC-Signature = base64(lowercase_hex(HMAC-SHA256(SecretKey, S)))`, where
//! `S = METHOD \n X-TC-Key=<SecretId>&X-TC-Nonce=<nonce>&X-TC-Timestamp=<ts> \n TARGET \n BODY`
//! and TARGET is the path and query exactly as sent on the wire. Everything here is a pure
//! function of its inputs: the caller supplies the clock and the nonce, so the reference vectors
//! from Tencent's own SDK (`tests/fixtures/signing_vectors.json`) pin it byte for byte.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The enterprise application's credentials, checked when made: every value sent as a header is
/// non-empty visible ASCII, so the signed headers can always be built. The SecretKey is exposed
/// in exactly one place, [`signature`]; `Debug` never prints it nor the SecretId.
#[derive(Clone)]
pub struct Credentials {
    app_id: String,
    sdk_id: Option<String>,
    secret_id: String,
    secret_key: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("sdk_id", &self.sdk_id)
            .field("secret_id", &"[redacted]")
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

/// Which credential cannot be used: the values sent as HTTP headers must be non-empty visible
/// ASCII, and the SecretKey must not be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCredentials {
    #[error("AppId must be non-empty visible ASCII (it is sent as an HTTP header)")]
    AppId,
    #[error("SdkId must be non-empty visible ASCII (it is sent as an HTTP header)")]
    SdkId,
    #[error("SecretId must be non-empty visible ASCII (it is sent as an HTTP header)")]
    SecretId,
    #[error("SecretKey must not be empty")]
    SecretKey,
}

impl Credentials {
    /// Credentials for signing; `sdk_id` only when one was assigned.
    pub fn new(
        app_id: impl Into<String>,
        sdk_id: Option<String>,
        secret_id: impl Into<String>,
        secret_key: SecretString,
    ) -> Result<Self, InvalidCredentials> {
        let header_safe = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
        let (app_id, secret_id) = (app_id.into(), secret_id.into());
        if !header_safe(&app_id) {
            return Err(InvalidCredentials::AppId);
        }
        if !header_safe(&secret_id) {
            return Err(InvalidCredentials::SecretId);
        }
        if sdk_id.as_deref().is_some_and(|s| !header_safe(s)) {
            return Err(InvalidCredentials::SdkId);
        }
        if secret_key.expose_secret().is_empty() {
            return Err(InvalidCredentials::SecretKey);
        }
        Ok(Self {
            app_id,
            sdk_id,
            secret_id,
            secret_key,
        })
    }

    /// The enterprise's AppId, sent as the `AppId` header.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The SdkId, sent only when one was assigned.
    pub fn sdk_id(&self) -> Option<&str> {
        self.sdk_id.as_deref()
    }

    /// The SecretId, sent as `X-TC-Key`; the simulator compares it.
    pub(crate) fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The SecretKey, for [`signature`] alone (the simulator verifies with it).
    pub(crate) fn secret_key(&self) -> &SecretString {
        &self.secret_key
    }
}

/// Computes `X-TC-Signature` for one request.
///
/// `target` is the request target exactly as sent (path, `?`, query); `body` the exact body bytes
/// (empty for a GET). `timestamp` and `nonce` are the decimal strings sent in the headers.
pub fn signature(
    secret_id: &str,
    secret_key: &SecretString,
    method: &str,
    target: &str,
    body: &[u8],
    timestamp: &str,
    nonce: &str,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    for part in [
        method.as_bytes(),
        b"\nX-TC-Key=",
        secret_id.as_bytes(),
        b"&X-TC-Nonce=",
        nonce.as_bytes(),
        b"&X-TC-Timestamp=",
        timestamp.as_bytes(),
        b"\n",
        target.as_bytes(),
        b"\n",
        body,
    ] {
        mac.update(part);
    }
    let digest = mac.finalize().into_bytes();
    let mut hex = [0u8; 64];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    BASE64.encode(hex)
}

/// Builds every header Tencent requires for one request, signed with the given time and nonce
/// (which must be positive).
pub fn signed_headers(
    credentials: &Credentials,
    method: &str,
    target: &str,
    body: &[u8],
    timestamp: u64,
    nonce: u64,
) -> HeaderMap {
    let timestamp = timestamp.to_string();
    let nonce = nonce.to_string();
    let signature = signature(
        &credentials.secret_id,
        &credentials.secret_key,
        method,
        target,
        body,
        &timestamp,
        &nonce,
    );
    let mut headers = HeaderMap::with_capacity(8);
    let mut put = |name: &'static str, value: &str| {
        let value = HeaderValue::from_str(value).expect("Credentials::new checked every value");
        headers.insert(HeaderName::from_static(name), value);
    };
    put("x-tc-key", &credentials.secret_id);
    put("x-tc-timestamp", &timestamp);
    put("x-tc-nonce", &nonce);
    put("x-tc-signature", &signature);
    put("appid", &credentials.app_id);
    if let Some(sdk_id) = &credentials.sdk_id {
        put("sdkid", sdk_id);
    }
    put("x-tc-registered", "1");
    put("content-type", "application/json");
    if let Some(value) = headers.get_mut("x-tc-signature") {
        value.set_sensitive(true);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Fixture {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        method: String,
        target: String,
        body: String,
        app_id: String,
        sdk_id: Option<String>,
        secret_id: String,
        secret_key: String,
        timestamp: String,
        nonce: String,
        signature: String,
        headers: std::collections::BTreeMap<String, String>,
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../../tests/fixtures/signing_vectors.json");
        serde_json::from_str::<Fixture>(text)
            .expect("fixture parses")
            .vectors
    }

    #[test]
    fn signer_reproduces_every_official_sdk_vector() {
        let vectors = vectors();
        assert!(vectors.len() >= 12, "expected at least 12 vectors");
        for v in vectors {
            let credentials = Credentials::new(
                v.app_id,
                v.sdk_id,
                v.secret_id,
                SecretString::from(v.secret_key),
            )
            .expect("the SDK's credentials are valid");
            let headers = signed_headers(
                &credentials,
                &v.method,
                &v.target,
                v.body.as_bytes(),
                v.timestamp.parse().expect("timestamp"),
                v.nonce.parse().expect("nonce"),
            );
            let sent = |name: &str| headers.get(name).map(|h| h.to_str().expect("ascii"));
            assert_eq!(
                sent("x-tc-signature"),
                Some(v.signature.as_str()),
                "{}",
                v.name
            );
            // base64 of 64 hex digits
            assert_eq!(v.signature.len(), 88, "{}", v.name);
            // Every header the SDK sends, except its own Content-Type spelling and User-Agent,
            // is sent with the same value; and nothing else is sent.
            let expected: Vec<_> = v
                .headers
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "Content-Type" | "User-Agent"))
                .map(|(k, val)| (k.to_ascii_lowercase(), val.clone()))
                .collect();
            for (name, value) in &expected {
                assert_eq!(sent(name), Some(value.as_str()), "{}: {name}", v.name);
            }
            assert_eq!(headers.len(), expected.len() + 1, "{}", v.name);
        }
    }

    #[test]
    fn debug_output_hides_both_secrets() {
        let credentials = Credentials::new(
            "app",
            None,
            "AKIDvisible",
            SecretString::from("very-secret-key"),
        )
        .expect("valid");
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("very-secret-key"));
        assert!(!printed.contains("AKIDvisible"));
    }

    #[test]
    fn header_values_must_be_visible_ascii() {
        let make = |secret_id: &str, sdk_id: Option<&str>, key: &str| {
            Credentials::new(
                "app",
                sdk_id.map(str::to_owned),
                secret_id,
                SecretString::from(key),
            )
            .map(|_| ())
        };
        assert_eq!(make("id", Some("sdk"), "k"), Ok(()));
        assert_eq!(make("密钥", None, "k"), Err(InvalidCredentials::SecretId));
        assert_eq!(
            make("id", Some("has space"), "k"),
            Err(InvalidCredentials::SdkId)
        );
        assert_eq!(make("id", None, ""), Err(InvalidCredentials::SecretKey));
        assert_eq!(
            Credentials::new("", None, "id", SecretString::from("k")).map(|_| ()),
            Err(InvalidCredentials::AppId)
        );
    }
}
