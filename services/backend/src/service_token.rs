//! The credential other Taskwatch services present on the internal API: a shared secret
//! (`INTERNAL_SERVICE_TOKEN`), distinct from user tokens so neither kind opens the other's routes.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use observability::config::Secret;

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
    /// Keeps the digest of `secret` (`INTERNAL_SERVICE_TOKEN`), never the secret itself.
    pub fn new(secret: &Secret) -> Self {
        Self { digest: Sha256::digest(secret.expose().as_bytes()).into() }
    }

    /// Whether `presented` (a caller's bearer token) is exactly the expected token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.digest).into()
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
    }
}
