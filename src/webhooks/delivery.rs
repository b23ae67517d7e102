//! Verifying and decoding one delivery.
//!
//! Tencent signs each delivery with `lowercase_hex(SHA1(a ‖ b ‖ c ‖ d))`, where a..d are the
//! subscription's token, the `timestamp` header, the `nonce` header and the data (`check_str`
//! for the URL check, the body's `data` for an event), sorted in byte order. The data is base64
//! (Tencent's example leaves the padding out); with an EncodingAESKey it is AES-256-CBC
//! ciphertext under the key `base64(EncodingAESKey + "=")`, the IV being the key's first 16
//! bytes, padded with PKCS#7.

use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt as _, KeyIvInit as _};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

/// Standard base64, with or without its padding, and with whatever bits end its last character
/// (as the decoders in Tencent's sample code take it).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The answer to an event delivery, byte for byte: Tencent retries anything else.
pub const EVENT_ANSWER: &str = "successfully received callback";

/// How far a delivery's `timestamp` may be from the gateway's clock.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// The subscription's secrets: the token every delivery is signed with, and the EncodingAESKey
/// when deliveries are encrypted.
#[derive(Clone)]
pub struct WebhookKeys {
    token: SecretString,
    aes_key: Option<[u8; 32]>,
}

impl fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("token", &"[redacted]")
            .field("aes_key", &self.aes_key.map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a subscription's secrets cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhookKeys {
    #[error("the token is empty")]
    EmptyToken,
    #[error("an EncodingAESKey is 43 characters of base64 (Tencent's console shows it)")]
    AesKey,
}

impl WebhookKeys {
    /// The token, and the EncodingAESKey as Tencent's console shows it (43 characters).
    pub fn new(
        token: SecretString,
        encoding_aes_key: Option<&SecretString>,
    ) -> Result<Self, InvalidWebhookKeys> {
        if token.expose_secret().is_empty() {
            return Err(InvalidWebhookKeys::EmptyToken);
        }
        let aes_key = encoding_aes_key
            .map(|key| {
                let key = key.expose_secret();
                if key.len() != 43 {
                    return Err(InvalidWebhookKeys::AesKey);
                }
                LENIENT
                    .decode(format!("{key}="))
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or(InvalidWebhookKeys::AesKey)
            })
            .transpose()?;
        Ok(Self { token, aes_key })
    }

    /// Whether `signature` is Tencent's for this delivery (compared in constant time).
    pub fn verify(&self, timestamp: &str, nonce: &str, data: &str, signature: &str) -> bool {
        let expected = signature_of(self.token.expose_secret(), timestamp, nonce, data);
        let given = signature.as_bytes();
        given.len() == expected.len() && bool::from(given.ct_eq(expected.as_bytes()))
    }

    /// The data of a delivery of `plaintext`, as Tencent sends it: encrypted when the keys have
    /// an EncodingAESKey, then base64.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        use aes::cipher::BlockModeEncrypt as _;
        let bytes = match &self.aes_key {
            None => plaintext.to_vec(),
            Some(key) => {
                let iv: [u8; 16] = key[..16].try_into().expect("a 32-byte key has 16 bytes");
                cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into())
                    .encrypt_padded_vec::<Pkcs7>(plaintext)
            }
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Tencent's signature of a delivery.
    pub fn sign(&self, timestamp: &str, nonce: &str, data: &str) -> String {
        signature_of(self.token.expose_secret(), timestamp, nonce, data)
    }

    /// The plaintext of a delivery's data: base64, decrypted when deliveries are encrypted.
    pub fn decode(&self, data: &str) -> Result<Vec<u8>, UndecodableData> {
        let bytes = LENIENT
            .decode(data.trim())
            .map_err(|_| UndecodableData::Base64)?;
        let Some(key) = &self.aes_key else {
            return Ok(bytes);
        };
        let iv: [u8; 16] = key[..16].try_into().expect("a 32-byte key has 16 bytes");
        cbc::Decryptor::<aes::Aes256>::new(key.into(), &iv.into())
            .decrypt_padded_vec::<Pkcs7>(&bytes)
            .map_err(|_| UndecodableData::Cipher)
    }
}

/// Why a delivery's data cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UndecodableData {
    #[error("the data is not base64")]
    Base64,
    #[error("the data does not decrypt with the configured EncodingAESKey")]
    Cipher,
}

/// `lowercase_hex(SHA1(the four strings sorted in byte order, joined))`.
pub fn signature_of(token: &str, timestamp: &str, nonce: &str, data: &str) -> String {
    let mut parts = [token, timestamp, nonce, data];
    parts.sort_unstable();
    let mut sha1 = Sha1::new();
    for part in parts {
        sha1.update(part.as_bytes());
    }
    hex::encode(sha1.finalize())
}

/// Whether a delivery's `timestamp` header (unix milliseconds, 13 digits) is within
/// [`MAX_SKEW_MS`] of `now_ms`.
pub fn is_current(timestamp: &str, now_ms: u64) -> bool {
    timestamp.len() == 13
        && timestamp.bytes().all(|b| b.is_ascii_digit())
        && timestamp
            .parse::<u64>()
            .is_ok_and(|at| at.abs_diff(now_ms) <= MAX_SKEW_MS)
}

/// `check_str` from a raw query string, percent-decoded without turning `+` into a space (it is
/// base64, where `+` is a digit).
pub fn check_str(raw_query: &str) -> Option<String> {
    let value = raw_query
        .split('&')
        .find_map(|pair| pair.strip_prefix("check_str="))?;
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|value| value.into_owned())
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose;

    use super::*;

    /// Tencent's documented example.
    const TOKEN: &str = "bVPU6F8Htxl5XkAbp3jGV2xWp";
    const TIMESTAMP: &str = "1609239040864";
    const NONCE: &str = "14964161";
    const SIGNATURE: &str = "b11e507817336a91d7df0c8536ee2aca18bbbae8";

    fn example_data() -> &'static str {
        include_str!("../../tests/fixtures/webhook_vector.txt").trim_end_matches('\n')
    }

    fn keys(aes: Option<&str>) -> WebhookKeys {
        WebhookKeys::new(TOKEN.into(), aes.map(SecretString::from).as_ref()).unwrap()
    }

    #[test]
    fn tencent_s_example_signature_verifies() {
        let data = example_data();
        assert_eq!(signature_of(TOKEN, TIMESTAMP, NONCE, data), SIGNATURE);
        let keys = keys(None);
        assert!(keys.verify(TIMESTAMP, NONCE, data, SIGNATURE));
        assert!(!keys.verify(TIMESTAMP, NONCE, data, &SIGNATURE.to_uppercase()));
        assert!(!keys.verify(TIMESTAMP, "14964162", data, SIGNATURE));
        assert!(!keys.verify(TIMESTAMP, NONCE, data, &SIGNATURE[..39]));
        assert!(!keys.verify(TIMESTAMP, NONCE, data, ""));
    }

    #[test]
    fn unpadded_base64_decodes() {
        let data = example_data();
        assert!(!data.ends_with('='), "the example is unpadded");
        let event = keys(None).decode(data).unwrap();
        let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(event["event"], "meeting.created");
        // Padded, the same.
        let padded = format!("{data}{}", "=".repeat((4 - data.len() % 4) % 4));
        assert_eq!(keys(None).decode(&padded), keys(None).decode(data));
        assert_eq!(
            keys(None).decode("not base64!"),
            Err(UndecodableData::Base64)
        );
    }

    #[test]
    fn aes_deliveries_decrypt_with_the_key_tencent_derives() {
        use aes::cipher::BlockModeEncrypt as _;
        // A fixed EncodingAESKey: 43 characters, base64 of 32 bytes without its "=".
        let encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let key: [u8; 32] = LENIENT
            .decode(format!("{encoding_aes_key}="))
            .unwrap()
            .try_into()
            .unwrap();
        let plaintext = br#"{"event":"meeting.participant-joined","trace_id":"t1","payload":[]}"#;
        let iv: [u8; 16] = key[..16].try_into().unwrap();
        let ciphertext = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded_vec::<Pkcs7>(plaintext);
        let data = general_purpose::STANDARD.encode(&ciphertext);
        let keys = keys(Some(encoding_aes_key));
        assert_eq!(keys.decode(&data).unwrap(), plaintext);
        // Damaged ciphertext (a cut block) is refused, not misread.
        let cut = general_purpose::STANDARD.encode(&ciphertext[..ciphertext.len() - 1]);
        assert_eq!(keys.decode(&cut), Err(UndecodableData::Cipher));
        assert_eq!(
            WebhookKeys::new(TOKEN.into(), Some(&"too-short".into())).unwrap_err(),
            InvalidWebhookKeys::AesKey
        );
    }

    #[test]
    fn the_url_check_answers_the_plaintext_byte_for_byte() {
        // Tencent sends check_str percent-encoded; `+` in it is base64's, not a space.
        let plaintext = "3r5+xMaj random check ?";
        let encoded = general_purpose::STANDARD.encode(plaintext);
        let query = format!(
            "check_str={}&other=1",
            percent_encoding::utf8_percent_encode(&encoded, percent_encoding::NON_ALPHANUMERIC)
        );
        let check = check_str(&query).unwrap();
        assert_eq!(check, encoded);
        let answer = keys(None).decode(&check).unwrap();
        assert_eq!(answer, plaintext.as_bytes());
        // A '+' left as it is stays a '+'.
        assert_eq!(check_str("check_str=ab+c%3D").unwrap(), "ab+c=");
        assert_eq!(check_str("other=1"), None);
    }

    #[test]
    fn what_is_sealed_and_signed_opens_and_verifies() {
        for aes in [None, Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")] {
            let keys = keys(aes);
            let data = keys.seal(b"{\"event\":\"meeting.end\"}");
            assert_eq!(keys.decode(&data).unwrap(), b"{\"event\":\"meeting.end\"}");
            let signature = keys.sign(TIMESTAMP, NONCE, &data);
            assert!(keys.verify(TIMESTAMP, NONCE, &data, &signature));
        }
    }

    #[test]
    fn the_event_answer_is_tencent_s_exact_text() {
        assert_eq!(EVENT_ANSWER.as_bytes(), b"successfully received callback");
    }

    #[test]
    fn timestamps_are_13_digits_within_five_minutes() {
        let now = 1_609_239_040_864;
        assert!(is_current("1609239040864", now));
        assert!(is_current("1609238740864", now));
        assert!(!is_current("1609238740863", now));
        assert!(!is_current("1609239340865", now));
        assert!(!is_current("1609239040", now * 1000));
        assert!(!is_current("+609239040864", now));
    }

    #[test]
    fn keys_never_show_in_debug() {
        let keys = keys(Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"));
        let debug = format!("{keys:?}");
        assert!(
            !debug.contains(TOKEN) && !debug.contains("abcdefghij"),
            "{debug}"
        );
    }
}
