//! The authenticated caller: a verified bearer token, then the caller's own rate limit.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
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
        let owner = state.verifier.verify(token).map_err(|error| Problem::unauthorized(format!("{error}.")))?;
        if let Some(limiter) = &state.user_limiter {
            limiter.check(&owner).map_err(too_many_requests)?;
        }
        Ok(Self(owner))
    }
}

/// The token of an `Authorization: Bearer <token>` header; 401 when it is missing or uses another scheme.
pub(super) fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("Send `Authorization: Bearer <token>`."))?;
    let text = value.to_str().map_err(|_| Problem::unauthorized("The Authorization header is malformed."))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| Problem::unauthorized("The Authorization header must use the Bearer scheme."))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Problem::unauthorized("The Authorization header must use the Bearer scheme.").into());
    }
    Ok(token.trim())
}
