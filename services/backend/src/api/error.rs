//! Maps use-case errors to problem+json responses. Internal causes are logged here and never sent to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use observability::{ErrorChain, FieldError, Problem, ProblemType};

use crate::domain::{TransitionError, Violations};
use crate::service::TaskError;
use crate::service::settings::SettingsError;
use crate::store::StoreError;

/// The error of every handler and extractor: a problem document, boxed so `Result`s stay small on the happy
/// path.
#[derive(Debug)]
pub struct ApiError(Box<Problem>);

impl ApiError {
    #[cfg(test)]
    pub fn problem(&self) -> &Problem {
        &self.0
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(Box::new(problem))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (*self.0).into_response()
    }
}

impl From<TaskError> for ApiError {
    fn from(error: TaskError) -> Self {
        Problem::from(error).into()
    }
}

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> Self {
        Problem::from(error).into()
    }
}

pub fn validation(violations: Violations) -> Problem {
    Problem::validation(field_errors(violations))
}

pub fn field_errors(violations: Violations) -> Vec<FieldError> {
    violations.into_vec().into_iter().map(|v| FieldError::new(v.field, v.message)).collect()
}

/// 400 listing what is wrong with query parameters or headers (not the body, which gets 422).
pub fn bad_request_fields(detail: &str, violations: Violations) -> Problem {
    let errors = serde_json::to_value(field_errors(violations)).unwrap_or_default();
    Problem::bad_request(detail).with_extension("errors", errors)
}

pub fn task_not_found() -> Problem {
    Problem::not_found("No task with this id exists for the authenticated user.")
}

impl From<TaskError> for Problem {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::NotFound => task_not_found(),
            TaskError::Invalid(violations) => validation(violations),
            TaskError::PreconditionFailed { .. } => Problem::precondition_failed(
                "The task has changed since the version in If-Match; fetch it again and retry.",
            ),
            TaskError::Transition(TransitionError::AlreadyCompleted) => {
                Problem::conflict("The task is already completed.").with_type(ProblemType::AlreadyCompleted)
            }
            TaskError::Transition(TransitionError::AlreadyOpen) => {
                Problem::conflict("The task is already open.").with_type(ProblemType::AlreadyOpen)
            }
            TaskError::OccurrenceGone => Problem::new(StatusCode::GONE).with_detail(
                "This occurrence was created before and its task has since been deleted; it is not recreated.",
            ),
            TaskError::ReplayedTaskGone => Problem::new(StatusCode::GONE).with_detail(
                "A request with this Idempotency-Key succeeded before, and its task has since been deleted.",
            ),
            TaskError::IdempotencyKeyReused => Problem::of(ProblemType::IdempotencyKeyReused)
                .with_title("Idempotency-Key reused")
                .with_detail("This Idempotency-Key was already used for a different request; use a new key."),
            TaskError::Contended => Problem::conflict("The task is being changed concurrently; retry the request."),
            TaskError::Store(error) => store_failure(&error),
            TaskError::EventEncoding(error) => internal(&error),
            TaskError::StoredOutcome(error) => internal(&error),
        }
    }
}

impl From<SettingsError> for Problem {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Invalid(violations) => validation(violations),
            SettingsError::Store(error) => store_failure(&error),
        }
    }
}

/// An unreachable or saturated database is a 503 the client may retry; anything else is a 500.
fn store_failure(error: &StoreError) -> Problem {
    if let StoreError::Database { source, .. } = error
        && matches!(source, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)
    {
        tracing::error!(error = %ErrorChain(error), "database unavailable");
        observability::record_exception(&tracing::Span::current(), error);
        return Problem::service_unavailable("The database is unavailable; retry shortly.").with_retry_after(1);
    }
    internal(error)
}

/// A 500: logged with its causes and recorded on the request's span as an exception event.
fn internal<E: std::error::Error>(error: &E) -> Problem {
    tracing::error!(error = %ErrorChain(error), "request failed");
    observability::record_exception(&tracing::Span::current(), error);
    Problem::internal()
}
