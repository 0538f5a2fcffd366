//! Internal use cases on tasks: the next occurrence of a recurring series, and reading any user's task.
//!
//! Creating an occurrence is idempotent twice over: by `Idempotency-Key` (a retried request replays its first
//! answer) and by `(series, instant)` in the schema (a request with another key for an occurrence that already
//! exists gets that task), so the occurrence exists exactly once however often it is requested.

use chrono::{DateTime, Utc};
use events::task::TaskChange;
use uuid::Uuid;

use super::error::TaskError;
use super::events::outbox_message;
use super::now;
use super::tasks::{commit, record_outcome, rollback};
use crate::domain::{Task, TaskId, next_occurrence};
use crate::idempotency::IdempotentRequest;
use crate::metrics;
use crate::service::TaskService;
use crate::store::{occurrences, outbox, tasks};

/// What the caller asks for: the occurrence of `series_id` due at `due_at`, following `previous_task_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOccurrence {
    /// The series in the request path; the previous task must belong to it.
    pub series_id: Uuid,
    /// The occurrence the new one follows and repeats.
    pub previous_task_id: TaskId,
    /// When the new occurrence is due; strictly after the previous one's `due_at`.
    pub due_at: DateTime<Utc>,
}

/// How a request for an occurrence was met: created (201), replayed (201 with `Idempotent-Replayed`) or
/// already there (200).
#[derive(Debug, Clone, PartialEq)]
pub enum OccurrenceOutcome {
    /// This request created the occurrence.
    Created(Task),
    /// A request with the same `Idempotency-Key` created it; this is the task as that request left it.
    Replayed(Task),
    /// Another request (with another key) created this occurrence; this is its current state.
    AlreadyExisted(Task),
}

impl OccurrenceOutcome {
    /// The occurrence's task, however it was obtained.
    pub fn task(&self) -> &Task {
        match self {
            OccurrenceOutcome::Created(task)
            | OccurrenceOutcome::Replayed(task)
            | OccurrenceOutcome::AlreadyExisted(task) => task,
        }
    }
}

impl TaskService {
    /// Any user's task, for the internal API.
    pub async fn get_any(&self, id: TaskId) -> Result<Task, TaskError> {
        let mut conn = self.acquire().await?;
        tasks::find_any(&mut conn, id).await?.ok_or(TaskError::NotFound)
    }

    /// Creates the next occurrence of a series, in one transaction with its `task.created.v1` event.
    pub async fn create_occurrence(
        &self,
        request: &NextOccurrence,
        idempotency: &IdempotentRequest,
    ) -> Result<OccurrenceOutcome, TaskError> {
        let previous = self.get_any(request.previous_task_id).await?;
        // A task of another series is, for this series, no task at all.
        if previous.series_id != request.series_id {
            return Err(TaskError::NotFound);
        }
        let owner = previous.owner.clone();
        if let Some(replay) = self.find_replay(&owner, idempotency).await? {
            return Ok(OccurrenceOutcome::Replayed(replay.into_task()));
        }
        let task = next_occurrence(&previous, request.due_at, now())?;
        let occurs_at = task.spec.due_at.unwrap_or(request.due_at);
        let message = outbox_message(TaskChange::Created, &task).map_err(TaskError::EventEncoding)?;

        let mut tx = self.begin().await?;
        // Claimed first: a concurrent request for the same occurrence waits here until this one ends.
        if !occurrences::insert(&mut tx, task.series_id, occurs_at, task.id.as_uuid()).await? {
            rollback(tx).await;
            return self.existing_occurrence(task.series_id, occurs_at).await;
        }
        tasks::insert(&mut tx, &task).await?;
        outbox::insert(&mut tx, &message).await?;
        if !record_outcome(&mut tx, &owner, idempotency, &task).await? {
            rollback(tx).await;
            return self
                .replay_after_race(&owner, idempotency)
                .await
                .map(|o| OccurrenceOutcome::Replayed(o.into_task()));
        }
        commit(tx).await?;

        metrics::task_created();
        metrics::outbox_event_written(TaskChange::Created.event_type());
        Ok(OccurrenceOutcome::Created(task))
    }

    /// The task another request created for this occurrence; gone if the user deleted it since.
    async fn existing_occurrence(
        &self,
        series_id: Uuid,
        occurs_at: DateTime<Utc>,
    ) -> Result<OccurrenceOutcome, TaskError> {
        let mut conn = self.acquire().await?;
        // The conflicting row was committed before our insert returned, so it is visible now.
        let task_id = occurrences::find(&mut conn, series_id, occurs_at).await?.ok_or(TaskError::Contended)?;
        match tasks::find_any(&mut conn, TaskId::from_uuid(task_id)).await? {
            Some(task) => Ok(OccurrenceOutcome::AlreadyExisted(task)),
            None => Err(TaskError::OccurrenceGone),
        }
    }
}
