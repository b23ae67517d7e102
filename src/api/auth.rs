//! Inbound authentication: `Authorization: Bearer <api key>`, checked against SHA-256 digests of
//! the accepted keys, so the gateway holds no usable key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::{ApiError, AuthFailure};
use crate::upstream::pacer::Pacer;

/// Inbound API keys, kept only as SHA-256 digests, each with its rate limit.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    /// Each key's limit (requests a minute) and pacer, by the digest's index; `None`: unlimited.
    limits: Vec<Option<(u32, Pacer)>>,
    allow_anonymous: bool,
    /// The limit shared by callers without a key, when anonymous access is on.
    anonymous: Option<(u32, Pacer)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("digests", &self.digests.len())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

/// A key's rate limit: at most this many requests in any minute (0: none).
fn limiter(per_minute: u32) -> Option<(u32, Pacer)> {
    (per_minute > 0).then(|| (per_minute, Pacer::per_minute(per_minute)))
}

impl ApiKeys {
    /// Keys by digest, each allowed `per_minute[i]` requests a minute (a key without an entry:
    /// `default_per_minute`; 0: unlimited). Callers without a key, when allowed, share
    /// `default_per_minute`.
    pub fn new(
        digests: Vec<[u8; 32]>,
        per_minute: &[Option<u32>],
        default_per_minute: u32,
        allow_anonymous: bool,
    ) -> Self {
        let limits = (0..digests.len())
            .map(|i| {
                limiter(
                    per_minute
                        .get(i)
                        .copied()
                        .flatten()
                        .unwrap_or(default_per_minute),
                )
            })
            .collect();
        Self {
            digests,
            limits,
            allow_anonymous,
            anonymous: allow_anonymous
                .then(|| limiter(default_per_minute))
                .flatten(),
        }
    }

    /// Which caller this is (the index of its key's digest; `None` for an anonymous one).
    pub(super) fn check(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Option<usize>, AuthFailure> {
        let Some(value) = authorization else {
            return if self.allow_anonymous {
                Ok(None)
            } else {
                Err(AuthFailure::Missing)
            };
        };
        // The scheme is case-insensitive (RFC 9110 11.1).
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .filter(|k| !k.is_empty() && !k.contains(' '))
            .ok_or(AuthFailure::Malformed)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Compare with every digest, in constant time, so timing reveals nothing; the digests
        // are distinct, so at most one matches.
        let matched = self
            .digests
            .iter()
            .enumerate()
            .fold(0usize, |found, (i, d)| {
                found | (usize::from(d.ct_eq(&digest).unwrap_u8()) * (i + 1))
            });
        match matched {
            0 => Err(AuthFailure::Rejected),
            index => Ok(Some(index - 1)),
        }
    }

    /// Takes one request from the caller's rate limit: `Err` with the limit and the seconds
    /// until the next request is allowed, when it is spent.
    pub(super) fn take(&self, caller: Option<usize>) -> Result<(), ApiError> {
        let limit = match caller {
            Some(index) => self.limits.get(index).and_then(Option::as_ref),
            None => self.anonymous.as_ref(),
        };
        let Some((per_minute, pacer)) = limit else {
            return Ok(());
        };
        pacer.try_now().map_err(|wait| ApiError::KeyRateLimited {
            per_minute: *per_minute,
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

/// Proof that a request carried an accepted API key (or that anonymous access is on). Every
/// protected handler takes it as its first extractor, so the key is checked before anything
/// else about the request.
#[derive(Debug)]
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let keys = state.keys();
        let caller = keys
            .check(parts.headers.get(header::AUTHORIZATION))
            .map_err(ApiError::Unauthorized)?;
        keys.take(caller)?;
        Ok(Authorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_against_their_digests() {
        let digests = vec![
            Sha256::digest(b"other").into(),
            Sha256::digest(b"right").into(),
        ];
        let keys = ApiKeys::new(digests, &[], 0, false);
        let header = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(keys.check(Some(&header("Bearer right"))), Ok(Some(1)));
        assert_eq!(keys.check(Some(&header("bearer right"))), Ok(Some(1)));
        assert_eq!(keys.check(Some(&header("Bearer other"))), Ok(Some(0)));
        assert_eq!(
            keys.check(Some(&header("Bearer wrong"))),
            Err(AuthFailure::Rejected)
        );
        assert_eq!(
            keys.check(Some(&header("Basic right"))),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(keys.check(None), Err(AuthFailure::Missing));
        assert!(!format!("{keys:?}").contains("right"));
        assert_eq!(ApiKeys::new(Vec::new(), &[], 0, true).check(None), Ok(None));
    }
}
