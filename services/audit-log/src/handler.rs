//! One event from `task-events`, end to end: decode, record. Testable with plain values and a real database; the
//! Kafka side is its [`Handler`] impl, run by `runtime`.

use events::CloudEvent;
use events::task::{TaskChange, TaskEvent};
use messaging::{Failure, Handler, HandlerFailure, IncomingMessage};
use sqlx::PgPool;

use crate::metrics::{self, EventOutcome};
use crate::store::{self, Recorded, StoreError};

/// How an event was dealt with; every variant means "done, move on".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Recorded, or found already recorded.
    Recorded(Recorded),
    /// A type this service does not act on (including future `task.*` versions).
    IgnoredType,
}

/// Why an event is not done.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The database is unavailable: try the same event again later; it must not be committed meanwhile.
    #[error("cannot record the task event")]
    Store(#[from] StoreError),
    /// The event can never be applied: dead-letter it.
    #[error("unreadable task event")]
    Invalid(#[from] events::DecodeError),
}

/// A store error is retried in place (nothing is committed past it, so nothing is lost); an unreadable event is
/// dead-lettered.
impl HandlerFailure for HandleError {
    fn failure(&self) -> Failure {
        match self {
            Self::Store(_) => Failure::Transient,
            Self::Invalid(_) => Failure::Permanent,
        }
    }
}

/// Records task changes.
#[derive(Debug, Clone)]
pub struct TaskEventHandler {
    pool: PgPool,
}

impl TaskEventHandler {
    /// A handler writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Records one envelope exactly once (its event id is the record's key); counts the outcome.
    pub async fn handle(&self, event: CloudEvent<serde_json::Value>) -> Result<Handled, HandleError> {
        if TaskChange::from_event_type(&event.event_type).is_none() {
            metrics::task_event(EventOutcome::IgnoredType);
            return Ok(Handled::IgnoredType);
        }
        let event = event.into_typed::<TaskEvent>()?;
        let recorded = store::record(&self.pool, &event).await?;
        metrics::task_event(match recorded {
            Recorded::Applied => EventOutcome::Applied,
            Recorded::Duplicate => EventOutcome::Duplicate,
        });
        tracing::debug!(event_id = %event.id, task_id = %event.data.task.id, outcome = ?recorded, "task change recorded");
        Ok(Handled::Recorded(recorded))
    }
}

/// The Kafka side: an event's offset is stored only after its transaction committed.
impl Handler for TaskEventHandler {
    type Error = HandleError;

    async fn handle(&self, message: IncomingMessage) -> Result<(), HandleError> {
        TaskEventHandler::handle(self, message.event).await.map(drop)
    }
}
