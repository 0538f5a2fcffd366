//! One event from `task-events`, end to end: decode, apply to the job store, wake the scheduler. Transport-neutral,
//! testable with plain values and a real database; the Kafka side is its [`Handler`] impl, run by `runtime`.

use std::sync::Arc;

use events::CloudEvent;
use events::task::{TaskChange, TaskEvent};
use messaging::{Failure, Handler, HandlerFailure, IncomingMessage};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::metrics::{self, EventOutcome};
use crate::store::StoreError;
use crate::store::tasks::{self, Applied};
use crate::trace_context::TraceContext;

/// How an event was dealt with; every variant means "done, move on".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The event reached the job store (duplicates and ignored events included); says what it changed.
    Applied(Applied),
    /// A type this service does not act on (including future `task.*` versions).
    IgnoredType,
}

/// Why an event is not done.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The database is unavailable: try the same event again later; it must not be committed meanwhile.
    #[error("cannot apply the task event")]
    Store(#[from] StoreError),
    /// The event can never be applied: dead-letter it.
    #[error("unreadable task event")]
    Invalid(#[from] events::DecodeError),
}

impl HandlerFailure for HandleError {
    fn failure(&self) -> Failure {
        match self {
            Self::Store(_) => Failure::Transient,
            Self::Invalid(_) => Failure::Permanent,
        }
    }
}

/// Wakes the scheduler when jobs were added, so a job due now fires now rather than at the next poll.
/// Cheap to clone; a wake-up given while the scheduler is busy is kept for its next wait.
#[derive(Debug, Clone, Default)]
pub struct SchedulerWake(Arc<Notify>);

impl SchedulerWake {
    /// A wake-up with none pending; clone it for the scheduler and the handler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the scheduler to look for due jobs now; wake-ups given before it next waits collapse into one.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Completes at the next [`wake`](Self::wake), or at once if one came since the last wait.
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Applies task events to the reminder jobs.
#[derive(Debug, Clone)]
pub struct TaskEventHandler {
    pool: PgPool,
    wake: SchedulerWake,
}

impl TaskEventHandler {
    /// A handler applying events to the job store in `pool` and waking the scheduler through `wake` whenever
    /// an event adds jobs.
    pub fn new(pool: PgPool, wake: SchedulerWake) -> Self {
        Self { pool, wake }
    }

    /// Applies one envelope exactly once (dedupe on the event id, stale snapshots ignored); counts the outcome.
    /// `trace` travels with any job the event plans.
    pub async fn handle(
        &self,
        event: CloudEvent<serde_json::Value>,
        trace: &TraceContext,
    ) -> Result<Handled, HandleError> {
        if TaskChange::from_event_type(&event.event_type).is_none() {
            metrics::task_event(EventOutcome::IgnoredType);
            return Ok(Handled::IgnoredType);
        }
        let event_id = event.id;
        let event = event.into_typed::<TaskEvent>()?;
        let applied = tasks::apply(&self.pool, event_id, &event.data, trace).await?;
        metrics::task_event(EventOutcome::of(applied));
        tracing::debug!(%event_id, task_id = %event.data.task.id, outcome = ?applied, "task event applied");
        if applied.added_jobs() {
            self.wake.wake();
        }
        Ok(Handled::Applied(applied))
    }
}

/// The Kafka side: the trace of the message (taken inside the consumer span, so the jobs continue it) travels
/// with the event.
impl Handler for TaskEventHandler {
    type Error = HandleError;

    async fn handle(&self, message: IncomingMessage) -> Result<(), HandleError> {
        let trace = TraceContext::current_or(&message.headers);
        TaskEventHandler::handle(self, message.event, &trace).await.map(drop)
    }
}
