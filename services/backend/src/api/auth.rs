//! The authenticated caller: a verified bearer token, then the caller's own rate limit.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum_extra::headers::HeaderMapExt as _;
use axum_extra::headers::authorization::{Authorization, Bearer};
use observability::Problem;

use super::ApiState;
use super::error::ApiError;
use super::rate_limit::too_many_requests;
use crate::domain::OwnerId;

/// The user a request acts for. Extracting it answers 401 (no or bad token) or 429 (user over quota).
#[derive(Debug, Clone)]
pub struct Caller(pub OwnerId);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let owner = state.verifier.verify(&token).map_err(|error| Problem::unauthorized(format!("{error}.")))?;
        if let Some(limiter) = &state.user_limiter {
            limiter.check(&owner).map_err(too_many_requests)?;
        }
        Ok(Self(owner))
    }
}

/// The `Authorization: Bearer <token>` credential (scheme case-insensitive, parsed by `headers`); 401 when it is
/// missing or is not a bearer token. Returns the token without the blanks RFC 6750 allows around it.
pub(super) fn bearer_token(parts: &Parts) -> Result<String, ApiError> {
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Err(Problem::unauthorized("Send `Authorization: Bearer <token>`.").into());
    }
    match parts.headers.typed_get::<Authorization<Bearer>>() {
        Some(Authorization(bearer)) if !bearer.token().trim().is_empty() => Ok(bearer.token().trim().to_owned()),
        _ => Err(Problem::unauthorized("The Authorization header must be `Bearer <token>`.").into()),
    }
}
