//! The `{id}` path segment: anything that is not a UUID names no task, so it is a 404 problem, never a 500 or
//! a plain-text rejection.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use uuid::Uuid;

use super::error::{ApiError, task_not_found};
use crate::domain::TaskId;

#[derive(Debug, Clone, Copy)]
pub struct TaskPath(pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| task_not_found())?;
        let id = Uuid::parse_str(&raw).map_err(|_| task_not_found())?;
        Ok(Self(TaskId::from_uuid(id)))
    }
}
