//! Task use cases. Every change writes the task row and its outbox event in one transaction, so an event exists
//! exactly when its change does.

use chrono::{DateTime, Utc};
use events::task::TaskChange;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::error::TaskError;
use super::events::outbox_message;
use super::now;
use super::precondition::Precondition;
use crate::domain::{ListQuery, OwnerId, Position, Task, TaskId, TaskPatch, TaskSpec, TaskSpecInput};
use crate::idempotency::IdempotentRequest;
use crate::metrics;
use crate::snapshot::{from_snapshot, to_snapshot};
use crate::store::error::Context;
use crate::store::{idempotency, outbox, tasks};

/// How often an unconditional change re-reads and retries after losing a race to a concurrent writer.
const MAX_ATTEMPTS: usize = 3;

/// The result of a use case that honours `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This request did the work.
    Fresh(Task),
    /// An earlier request with the same key did; this is the task as that request left it.
    Replayed(Task),
}

impl Outcome {
    /// The task, fresh or replayed.
    pub fn task(&self) -> &Task {
        match self {
            Outcome::Fresh(task) | Outcome::Replayed(task) => task,
        }
    }

    /// The task, fresh or replayed, by value.
    pub fn into_task(self) -> Task {
        match self {
            Outcome::Fresh(task) | Outcome::Replayed(task) => task,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// At most the requested page size of tasks, in listing order.
    pub tasks: Vec<Task>,
    /// Where the next page starts, if there is one.
    pub next: Option<Position>,
}

/// What a change decided to do with the current task.
enum Decision {
    Save { task: Box<Task>, change: TaskChange },
    Delete,
    Unchanged,
}

/// The task use cases over a Postgres pool: one transaction per change, with its outbox event.
#[derive(Debug, Clone)]
pub struct TaskService {
    pool: PgPool,
}

impl TaskService {
    /// Use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates a task for `owner` with its `task.created.v1` event; with `idempotency`, a retry of the same request
    /// gets the first outcome replayed.
    pub async fn create(
        &self,
        owner: &OwnerId,
        input: &TaskSpecInput,
        idempotency: Option<&IdempotentRequest>,
    ) -> Result<Outcome, TaskError> {
        if let Some(request) = idempotency
            && let Some(replay) = self.find_replay(owner, request).await?
        {
            return Ok(replay);
        }
        let spec = TaskSpec::parse(input)?;
        spec.check_room_for_next_occurrence()?;
        // A new task starts its own series; later occurrences join it through the internal API.
        let task = Task::create(owner.clone(), spec, None, now())?;
        let message = outbox_message(TaskChange::Created, &task).map_err(TaskError::EventEncoding)?;

        let mut tx = self.begin().await?;
        tasks::insert(&mut tx, &task).await?;
        outbox::insert(&mut tx, &message).await?;
        if let Some(request) = idempotency
            && !record_outcome(&mut tx, owner, request, &task).await?
        {
            rollback(tx).await;
            return self.replay_after_race(owner, request).await;
        }
        commit(tx).await?;

        metrics::task_created();
        metrics::outbox_event_written(TaskChange::Created.event_type());
        Ok(Outcome::Fresh(task))
    }

    /// The owner's task; [`TaskError::NotFound`] for a missing task and for another user's alike.
    pub async fn get(&self, owner: &OwnerId, id: TaskId) -> Result<Task, TaskError> {
        let mut conn = self.acquire().await?;
        tasks::find(&mut conn, owner, id).await?.ok_or(TaskError::NotFound)
    }

    /// One page of the owner's tasks matching `query`, and where the next page starts if there is one.
    pub async fn list(&self, owner: &OwnerId, query: &ListQuery) -> Result<Page, TaskError> {
        let mut conn = self.acquire().await?;
        let mut tasks = tasks::list(&mut conn, owner, query).await?;
        let page_size = usize::try_from(query.page_size.get()).unwrap_or(usize::MAX);
        let next = if tasks.len() > page_size {
            tasks.truncate(page_size);
            tasks.last().map(|last| Position { due_at: last.spec.due_at, id: last.id })
        } else {
            None
        };
        Ok(Page { tasks, next })
    }

    /// Applies `patch`; the merged task is validated as a whole. A patch that changes nothing is not a change:
    /// no new version, no event.
    pub async fn update(
        &self,
        owner: &OwnerId,
        id: TaskId,
        precondition: &Precondition,
        patch: TaskPatch,
    ) -> Result<Task, TaskError> {
        let outcome = self
            .change(owner, id, precondition, None, |current, now| {
                let spec = current.spec.patched(patch.clone())?;
                if spec == current.spec {
                    return Ok(Decision::Unchanged);
                }
                spec.check_room_for_next_occurrence()?;
                Ok(Decision::Save { task: Box::new(current.revise(spec, now)), change: TaskChange::Updated })
            })
            .await?;
        Ok(outcome.into_task())
    }

    /// Completes the task with its `task.completed.v1` event; with `idempotency`, a retry gets the first outcome
    /// replayed rather than a 409.
    pub async fn complete(
        &self,
        owner: &OwnerId,
        id: TaskId,
        precondition: &Precondition,
        idempotency: Option<&IdempotentRequest>,
    ) -> Result<Outcome, TaskError> {
        if let Some(request) = idempotency
            && let Some(replay) = self.find_replay(owner, request).await?
        {
            return Ok(replay);
        }
        let result = self
            .change(owner, id, precondition, idempotency, |current, now| {
                Ok(Decision::Save { task: Box::new(current.complete(now)?), change: TaskChange::Completed })
            })
            .await;
        match (result, idempotency) {
            // A concurrent request with the same key may have completed the task after our first look: if so,
            // this is a retry of that request and gets its outcome, not a conflict.
            (Err(error @ (TaskError::Transition(_) | TaskError::PreconditionFailed { .. })), Some(request)) => {
                self.find_replay(owner, request).await?.ok_or(error)
            }
            (result, _) => result,
        }
    }

    /// Reopens a completed task with its `task.reopened.v1` event.
    pub async fn reopen(&self, owner: &OwnerId, id: TaskId, precondition: &Precondition) -> Result<Task, TaskError> {
        let outcome = self
            .change(owner, id, precondition, None, |current, now| {
                Ok(Decision::Save { task: Box::new(current.reopen(now)?), change: TaskChange::Reopened })
            })
            .await?;
        Ok(outcome.into_task())
    }

    /// Deletes the task with its `task.deleted.v1` event.
    pub async fn delete(&self, owner: &OwnerId, id: TaskId, precondition: &Precondition) -> Result<(), TaskError> {
        self.change(owner, id, precondition, None, |_, _| Ok(Decision::Delete)).await.map(|_| ())
    }

    /// Reads the task, checks the precondition, lets `decide` compute the change, and writes it only if nobody
    /// changed the task in between (`UPDATE … WHERE version = n`). A conditional request that loses that race
    /// gets 412; an unconditional one re-reads and tries again.
    async fn change(
        &self,
        owner: &OwnerId,
        id: TaskId,
        precondition: &Precondition,
        idempotency: Option<&IdempotentRequest>,
        decide: impl Fn(&Task, DateTime<Utc>) -> Result<Decision, TaskError>,
    ) -> Result<Outcome, TaskError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.begin().await?;
            let current = tasks::find(&mut tx, owner, id).await?.ok_or(TaskError::NotFound)?;
            if !precondition.holds_for(current.version) {
                // A body invalid whatever the version (an unknown time zone, say) is answered as such (422), not
                // with the stale precondition (412): fetching the task again would not make it valid.
                if let Err(invalid @ TaskError::Invalid(_)) = decide(&current, now()) {
                    return Err(invalid);
                }
                return Err(TaskError::PreconditionFailed { current: Some(current.version) });
            }
            let (written, change, event_subject) = match decide(&current, now())? {
                Decision::Unchanged => return Ok(Outcome::Fresh(current)),
                Decision::Save { task, change } => {
                    let written = tasks::update(&mut tx, current.version, &task).await?;
                    (written, change, *task)
                }
                Decision::Delete => {
                    let written = tasks::delete(&mut tx, owner, id, current.version).await?;
                    (written, TaskChange::Deleted, current)
                }
            };
            if !written {
                rollback(tx).await;
                if precondition.is_conditional() {
                    return Err(TaskError::PreconditionFailed { current: None });
                }
                continue;
            }
            let message = outbox_message(change, &event_subject).map_err(TaskError::EventEncoding)?;
            outbox::insert(&mut tx, &message).await?;
            if let Some(request) = idempotency
                && !record_outcome(&mut tx, owner, request, &event_subject).await?
            {
                rollback(tx).await;
                return self.replay_after_race(owner, request).await;
            }
            commit(tx).await?;

            if change == TaskChange::Completed {
                metrics::task_completed();
            }
            metrics::outbox_event_written(change.event_type());
            return Ok(Outcome::Fresh(event_subject));
        }
        Err(TaskError::Contended)
    }

    /// The stored outcome for this key, if any; an error if the key was used for a different request.
    pub(super) async fn find_replay(
        &self,
        owner: &OwnerId,
        request: &IdempotentRequest,
    ) -> Result<Option<Outcome>, TaskError> {
        let mut conn = self.acquire().await?;
        let Some(stored) = idempotency::find(&mut conn, owner, &request.key).await? else {
            return Ok(None);
        };
        if stored.operation != request.operation.as_str() || stored.fingerprint != request.fingerprint {
            return Err(TaskError::IdempotencyKeyReused);
        }
        let replayed = from_snapshot(stored.task)?;
        // The first answer, as it was; but not for a task that no longer exists.
        if tasks::find_any(&mut conn, replayed.id).await?.is_none() {
            return Err(TaskError::ReplayedTaskGone);
        }
        Ok(Some(Outcome::Replayed(replayed)))
    }

    /// A concurrent request with the same key committed first: answer with its outcome.
    pub(super) async fn replay_after_race(
        &self,
        owner: &OwnerId,
        request: &IdempotentRequest,
    ) -> Result<Outcome, TaskError> {
        // The conflicting row was committed before our insert returned, so it is visible now.
        self.find_replay(owner, request).await?.ok_or(TaskError::Contended)
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, TaskError> {
        Ok(self.pool.begin().await.context("begin transaction")?)
    }

    pub(super) async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, TaskError> {
        Ok(self.pool.acquire().await.context("acquire connection")?)
    }
}

pub(super) async fn record_outcome(
    conn: &mut PgConnection,
    owner: &OwnerId,
    request: &IdempotentRequest,
    task: &Task,
) -> Result<bool, TaskError> {
    Ok(idempotency::insert(conn, owner, &request.key, request.operation, &request.fingerprint, &to_snapshot(task))
        .await?)
}

pub(super) async fn commit(tx: Transaction<'static, Postgres>) -> Result<(), TaskError> {
    Ok(tx.commit().await.context("commit transaction")?)
}

/// Rolling back is also what dropping the transaction does; doing it explicitly returns the connection clean
/// sooner. A failure here leaves nothing to undo, so it is only logged.
pub(super) async fn rollback(tx: Transaction<'static, Postgres>) {
    if let Err(error) = tx.rollback().await {
        tracing::warn!(%error, "rollback failed; the connection is discarded");
    }
}
