//! The backend's internal API, as far as this service uses it: creating the next occurrence of a series.

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use observability::service_token::bearer_headers;
use observability::{ClientError, Secret, ServiceClient};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decision::OccurrenceRequest;
use crate::metrics::FailureReason;

/// `POST /internal/v1/series/{series_id}/occurrences` body (the backend denies unknown fields).
#[derive(Debug, Serialize)]
struct CreateOccurrenceBody {
    previous_task_id: Uuid,
    due_at: DateTime<Utc>,
}

/// The part of the backend's answer this service reads; other fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedOccurrence {
    /// The occurrence's task id: created by this request or, for a repeated one, by an earlier request.
    pub id: Uuid,
    /// When the occurrence is due, as the backend stored it; always set for an occurrence (a task's
    /// `due_at` is optional in general).
    pub due_at: Option<DateTime<Utc>>,
}

/// What became of a request the backend did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The occurrence exists: created now, replayed for this key, or created before by another request.
    Confirmed(CreatedOccurrence),
    /// It was created once and its task deleted since (410): deliberately not recreated.
    DeletedSince,
}

/// Why the occurrence could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The backend is down, slow, overloaded, or not accepting our credential: retry the event later.
    #[error("backend unavailable: {0}")]
    Unavailable(#[source] ClientError),
    /// The breaker is open: no call was made; retry the event later.
    #[error("backend circuit open: {0}")]
    CircuitOpen(#[source] ClientError),
    /// The backend refused this request for good (e.g. the series is gone or no longer recurring).
    #[error("backend refused the occurrence: {0}")]
    Rejected(#[source] ClientError),
}

impl CreateError {
    /// Whether trying the same event again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, CreateError::Rejected(_))
    }

    /// The failure metric's `reason` label for this error.
    pub fn reason(&self) -> FailureReason {
        match self {
            CreateError::Unavailable(_) => FailureReason::BackendUnavailable,
            CreateError::CircuitOpen(_) => FailureReason::CircuitOpen,
            CreateError::Rejected(_) => FailureReason::BackendRejected,
        }
    }
}

/// The circuit-broken client for the backend's internal API, authenticated with the service credential.
#[derive(Debug, Clone)]
pub struct BackendClient {
    client: ServiceClient,
    service_token: Secret,
}

impl BackendClient {
    /// A client for the backend `client` points at, sending `service_token` as the bearer credential on
    /// every call.
    pub fn new(client: ServiceClient, service_token: Secret) -> Self {
        Self { client, service_token }
    }

    /// The underlying client, e.g. for the breaker state in readiness details.
    pub fn service_client(&self) -> &ServiceClient {
        &self.client
    }

    /// Creates the next occurrence, idempotently: the request carries `Idempotency-Key` = the completion
    /// event's id, so it is safe to repeat after any failure.
    pub async fn create_occurrence(&self, request: &OccurrenceRequest) -> Result<CreateOutcome, CreateError> {
        let path = format!("/internal/v1/series/{}/occurrences", request.series_id);
        let body = CreateOccurrenceBody { previous_task_id: request.previous_task_id, due_at: request.due_at };
        let key = request.idempotency_key.to_string();
        let result = self.client.post_json::<_, CreatedOccurrence>(&path, &body, self.headers()?, Some(&key)).await;
        match result {
            Ok(created) => Ok(CreateOutcome::Confirmed(created)),
            Err(ClientError::Status { status: StatusCode::GONE, .. }) => Ok(CreateOutcome::DeletedSince),
            Err(error) => Err(classify(error)),
        }
    }

    fn headers(&self) -> Result<HeaderMap, CreateError> {
        bearer_headers(&self.service_token).map_err(CreateError::Rejected)
    }
}

fn classify(error: ClientError) -> CreateError {
    match &error {
        ClientError::CircuitOpen { .. } => CreateError::CircuitOpen(error),
        _ if error.is_downstream_failure() => CreateError::Unavailable(error),
        // A wrong or missing credential and rate limiting are deployment states, not properties of the event:
        // waiting keeps the event until they are fixed instead of dead-lettering every completion meanwhile.
        ClientError::Status { status, .. }
            if matches!(*status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS) =>
        {
            CreateError::Unavailable(error)
        }
        _ => CreateError::Rejected(error),
    }
}
