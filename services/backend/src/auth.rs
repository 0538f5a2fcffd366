//! Bearer tokens: HS256 JWTs whose `sub` is the user id. Verification for the API, minting for development.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::domain::OwnerId;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Why a token was refused. The messages are safe to show to the client: they never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The signature is good but `exp` has passed (by more than the 5-second leeway).
    #[error("the token has expired")]
    Expired,
    /// `AUTH_JWT_ISSUER` or `AUTH_JWT_AUDIENCE` is set and the token's `iss` or `aud` is missing or different.
    #[error("the token's issuer or audience is not accepted")]
    WrongIssuerOrAudience,
    /// The token is valid but its `sub` is not a valid [`OwnerId`] (empty, too long, or with control characters).
    #[error("the token's subject is not a valid user id")]
    BadSubject,
    /// Anything else: not a JWT, not HS256, a bad signature, or no `exp` or `sub` claim.
    #[error("the token is malformed, unsigned, or signed with another key")]
    Invalid,
}

/// Checks signature, expiry and (when configured) issuer and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("validation", &self.validation).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Accepts HS256 tokens signed with `AUTH_JWT_SECRET` that carry `exp` and `sub`, and the configured `iss`
    /// and `aud` when those are set (an unconfigured one is not checked).
    pub fn new(config: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        // Small leeway: clocks of token issuer and server differ by seconds, not minutes.
        validation.leeway = 5;
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience, a token's `aud` is not checked (the library would reject any).
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self { key: DecodingKey::from_secret(config.jwt_secret.expose().as_bytes()), validation }
    }

    /// The owner a bearer token (without the `Bearer ` prefix) stands for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<OwnerId, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuerOrAudience,
                ErrorKind::MissingRequiredClaim(claim) if claim == "iss" || claim == "aud" => {
                    TokenError::WrongIssuerOrAudience
                }
                _ => TokenError::Invalid,
            })?;
        OwnerId::parse(&data.claims.sub).map_err(|_| TokenError::BadSubject)
    }
}

/// Mints a token for `subject` valid for `ttl`, carrying the configured issuer and audience.
pub fn mint(config: &AuthConfig, subject: &str, ttl: Duration) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let claims = Claims {
        sub: subject.to_owned(),
        exp: now.saturating_add(ttl.as_secs()),
        iat: now,
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use observability::config::Secret;

    fn config(issuer: Option<&str>, audience: Option<&str>) -> AuthConfig {
        AuthConfig {
            jwt_secret: Secret::new("0123456789abcdef0123456789abcdef"),
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
        }
    }

    #[test]
    fn minted_token_verifies() {
        let config = config(None, None);
        let token = mint(&config, "alice", Duration::from_secs(60)).expect("mints");
        assert_eq!(TokenVerifier::new(&config).verify(&token).map(|o| o.as_str().to_owned()), Ok("alice".to_owned()));
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let config = config(None, None);
        let verifier = TokenVerifier::new(&config);
        let expired = {
            let claims = Claims { sub: "alice".into(), exp: 1_000, iat: 900, iss: None, aud: None };
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
            )
            .expect("encodes")
        };
        assert_eq!(verifier.verify(&expired), Err(TokenError::Expired));
        let other_key = AuthConfig { jwt_secret: Secret::new("another-secret-another-secret-xx"), ..config.clone() };
        let foreign = mint(&other_key, "alice", Duration::from_secs(60)).expect("mints");
        assert_eq!(verifier.verify(&foreign), Err(TokenError::Invalid));
        assert_eq!(verifier.verify("not.a.jwt"), Err(TokenError::Invalid));
    }

    #[test]
    fn issuer_and_audience_are_enforced_when_configured() {
        let strict = config(Some("taskwatch"), Some("taskwatch-api"));
        let verifier = TokenVerifier::new(&strict);
        let good = mint(&strict, "alice", Duration::from_secs(60)).expect("mints");
        assert!(verifier.verify(&good).is_ok());
        let bare = mint(&config(None, None), "alice", Duration::from_secs(60)).expect("mints");
        assert_eq!(verifier.verify(&bare), Err(TokenError::WrongIssuerOrAudience));
        let wrong = mint(&config(Some("someone-else"), Some("taskwatch-api")), "alice", Duration::from_secs(60))
            .expect("mints");
        assert_eq!(verifier.verify(&wrong), Err(TokenError::WrongIssuerOrAudience));
    }
}
