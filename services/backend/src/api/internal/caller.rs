//! The authenticated internal caller: another Taskwatch service presenting `INTERNAL_SERVICE_TOKEN`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use observability::Problem;

use super::super::ApiState;
use super::super::auth::bearer_token;
use super::super::error::ApiError;

/// Proof that the request carries the service credential. A user's JWT is not one; with no credential
/// configured, nothing is.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCaller;

impl FromRequestParts<ApiState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        match &state.service_token {
            Some(expected) if expected.matches(&token) => Ok(Self),
            _ => Err(Problem::unauthorized("The internal API needs the service credential.").into()),
        }
    }
}
