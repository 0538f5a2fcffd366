//! A shared-secret bearer credential, compared without revealing anything about the secret: the one the
//! Taskwatch services present on each other's internal APIs (`INTERNAL_SERVICE_TOKEN`, distinct from user tokens
//! so neither kind opens the other's routes), and the fault switch's admin token.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::config::Secret;

/// The shortest `INTERNAL_SERVICE_TOKEN` accepted: long enough that guessing it is hopeless.
pub const MIN_SERVICE_TOKEN_BYTES: usize = 32;

/// Reads the optional `INTERNAL_SERVICE_TOKEN` inside the caller's [`Env::load`](crate::config::Env::load),
/// reporting one shorter than [`MIN_SERVICE_TOKEN_BYTES`] as invalid.
pub fn internal_service_token(env: &mut crate::config::Env) -> Option<Secret> {
    let token = env.optional::<Secret>("INTERNAL_SERVICE_TOKEN");
    if token.as_ref().is_some_and(|token| token.expose().len() < MIN_SERVICE_TOKEN_BYTES) {
        env.invalid("INTERNAL_SERVICE_TOKEN", format!("must be at least {MIN_SERVICE_TOKEN_BYTES} bytes"));
    }
    token
}

/// `Authorization: Bearer <token>`, as the headers of a call to another service's internal API; marked
/// sensitive, so no client or log prints it.
pub fn bearer_headers(token: &Secret) -> Result<HeaderMap, crate::ClientError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| crate::ClientError::Config("the service token is not a valid header value".to_owned()))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// The expected service token, kept only as its SHA-256 digest.
///
/// Comparing digests of equal length in constant time reveals neither where a guess first differs nor how long
/// the real token is.
#[derive(Clone)]
pub struct ServiceToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceToken").finish_non_exhaustive()
    }
}

impl ServiceToken {
    /// Keeps the digest of `secret`, never the secret itself.
    pub fn new(secret: &Secret) -> Self {
        Self { digest: Sha256::digest(secret.expose().as_bytes()).into() }
    }

    /// Whether `presented` (a caller's bearer token) is exactly the expected token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.digest).into()
    }

    /// Whether `headers` carry `Authorization: Bearer <the expected token>`.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|presented| self.matches(presented.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_token() {
        let token = ServiceToken::new(&Secret::new("service-token-service-token-0123"));
        assert!(token.matches("service-token-service-token-0123"));
        assert!(!token.matches("service-token-service-token-012"));
        assert!(!token.matches("service-token-service-token-01234"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("service-token"));
        let mut headers = HeaderMap::new();
        assert!(!token.authorizes(&headers));
        headers.insert(AUTHORIZATION, "Bearer service-token-service-token-0123".parse().unwrap());
        assert!(token.authorizes(&headers));
        headers.insert(AUTHORIZATION, "Basic service-token-service-token-0123".parse().unwrap());
        assert!(!token.authorizes(&headers));
    }
}
