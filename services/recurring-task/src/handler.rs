//! One event from `task-events`, end to end: decode, decide, ask the backend. Transport-neutral, so the Kafka
//! consumer glue stays a thin mapping and this is testable with plain values and real HTTP.

use messaging::{Failure, Handler, HandlerFailure, IncomingMessage};
use std::time::Instant;

use events::CloudEvent;
use events::task::{TaskChange, TaskEvent};

use crate::backend::{BackendClient, CreateError, CreateOutcome, CreatedOccurrence};
use crate::decision::{self, Decision, SkipReason};
use crate::metrics::{self, FailureReason};

/// How an event was dealt with; every variant means "done, move on".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The event asks for no occurrence, for the reason given.
    Skipped(SkipReason),
    /// A type this service does not act on (including future `task.*` versions).
    IgnoredType,
    /// The backend confirmed the next occurrence (created now, or by an earlier delivery).
    Created(CreatedOccurrence),
    /// The occurrence had been created and deleted since; it stays deleted.
    DeletedSince,
}

/// Why an event is not done.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Try the same event again later; it must not be committed meanwhile.
    #[error("{reason}: {message}", reason = .reason.as_str())]
    Transient {
        /// Why, as the failure metric counts it.
        reason: FailureReason,
        /// The underlying error, rendered for the log.
        message: String,
    },
    /// The event can never succeed: dead-letter it with this reason.
    #[error("{reason}: {message}", reason = .reason.as_str())]
    Permanent {
        /// Why, as the failure metric counts it and the dead-letter reason says.
        reason: FailureReason,
        /// The underlying error, rendered for the log.
        message: String,
    },
}

impl HandleError {
    fn permanent(reason: FailureReason, error: &dyn std::error::Error) -> Self {
        Self::Permanent { reason, message: error.to_string() }
    }

    /// The failure metric's `reason` label, whether the event is retried or dead-lettered.
    pub fn reason(&self) -> FailureReason {
        match self {
            HandleError::Transient { reason, .. } | HandleError::Permanent { reason, .. } => *reason,
        }
    }
}

impl HandlerFailure for HandleError {
    fn failure(&self) -> Failure {
        match self {
            Self::Transient { .. } => Failure::Transient,
            Self::Permanent { .. } => Failure::Permanent,
        }
    }
}

/// Turns `task.completed` events of recurring tasks into next occurrences.
#[derive(Debug, Clone)]
pub struct CompletionHandler {
    backend: BackendClient,
}

impl CompletionHandler {
    /// A handler that creates occurrences through `backend`.
    pub fn new(backend: BackendClient) -> Self {
        Self { backend }
    }

    /// The backend client, e.g. to read its breaker state.
    pub fn backend(&self) -> &BackendClient {
        &self.backend
    }

    /// Handles one envelope; counts failures by reason. Idempotent: the backend deduplicates on the event id.
    pub async fn handle(&self, event: CloudEvent<serde_json::Value>) -> Result<Handled, HandleError> {
        let outcome = self.handle_uncounted(event).await;
        if let Err(error) = &outcome {
            metrics::failed(error.reason());
        }
        outcome
    }

    async fn handle_uncounted(&self, event: CloudEvent<serde_json::Value>) -> Result<Handled, HandleError> {
        // Only the completion needs the payload decoded; everything else is passed over cheaply.
        if TaskChange::from_event_type(&event.event_type) != Some(TaskChange::Completed) {
            return Ok(Handled::IgnoredType);
        }
        let event_id = event.id;
        let event = event
            .into_typed::<TaskEvent>()
            .map_err(|error| HandleError::permanent(FailureReason::InvalidEvent, &error))?;
        let started = Instant::now();
        let decided = decision::decide(event_id, &event.data);
        metrics::calculation_took(started.elapsed());
        let request = match decided {
            Ok(Decision::Create(request)) => request,
            Ok(Decision::Skip(reason)) => {
                tracing::debug!(%event_id, task_id = %event.data.task.id, reason = reason.as_str(), "no next occurrence");
                return Ok(Handled::Skipped(reason));
            }
            Err(error) => return Err(HandleError::permanent(error.reason(), &error)),
        };
        match self.backend.create_occurrence(&request).await {
            Ok(CreateOutcome::Confirmed(created)) => {
                metrics::occurrence_created();
                tracing::info!(
                    %event_id,
                    series_id = %request.series_id,
                    previous_task_id = %request.previous_task_id,
                    task_id = %created.id,
                    due_at = %request.due_at,
                    "next occurrence confirmed"
                );
                Ok(Handled::Created(created))
            }
            Ok(CreateOutcome::DeletedSince) => {
                tracing::info!(%event_id, series_id = %request.series_id, "next occurrence was deleted since; not recreated");
                Ok(Handled::DeletedSince)
            }
            Err(error) => Err(backend_error(&error)),
        }
    }
}

fn backend_error(error: &CreateError) -> HandleError {
    let (reason, message) = (error.reason(), error.to_string());
    if error.is_transient() {
        HandleError::Transient { reason, message }
    } else {
        HandleError::Permanent { reason, message }
    }
}

/// The Kafka side: every outcome but an error is done.
impl Handler for CompletionHandler {
    type Error = HandleError;

    async fn handle(&self, message: IncomingMessage) -> Result<(), HandleError> {
        CompletionHandler::handle(self, message.event).await.map(drop)
    }
}
