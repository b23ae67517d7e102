//! Inbound authentication: `Authorization: Bearer <api key>`, checked against SHA-256 digests of
//! the accepted keys, so the gateway holds no usable key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::{ApiError, AuthFailure};

/// Inbound API keys, kept only as SHA-256 digests.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("digests", &self.digests.len())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

impl ApiKeys {
    pub fn new(digests: Vec<[u8; 32]>, allow_anonymous: bool) -> Self {
        Self {
            digests,
            allow_anonymous,
        }
    }

    fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthFailure> {
        let Some(value) = authorization else {
            return if self.allow_anonymous {
                Ok(())
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
        // Compare with every digest, in constant time, so timing reveals nothing.
        let matched = self
            .digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&digest).unwrap_u8());
        if matched == 1 {
            Ok(())
        } else {
            Err(AuthFailure::Rejected)
        }
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
        state
            .keys()
            .check(parts.headers.get(header::AUTHORIZATION))
            .map(|()| Authorized)
            .map_err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_against_their_digests() {
        let keys = ApiKeys::new(vec![Sha256::digest(b"right").into()], false);
        let header = |v: &'static str| HeaderValue::from_static(v);
        assert_eq!(keys.check(Some(&header("Bearer right"))), Ok(()));
        assert_eq!(keys.check(Some(&header("bearer right"))), Ok(()));
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
        assert_eq!(ApiKeys::new(Vec::new(), true).check(None), Ok(()));
    }
}
