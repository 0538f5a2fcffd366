//! Applying one task event to `reminder.tasks` and `reminder.reminder_jobs`, in one transaction.

use chrono::{DateTime, Utc};
use events::task::{TaskEvent, TaskSnapshot};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::decision::{Action, AppliedTask, IgnoreReason, decide};
use crate::plan::PlannedJob;
use crate::trace_context::TraceContext;
use database::{Context as _, StoreError};

/// Namespace of the per-task advisory locks (the two-`int4` key space, apart from the single-`bigint` one other
/// components use): "rmnd".
const TASK_LOCK_CLASS: i32 = 0x726d_6e64;

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// This event id was applied before; nothing changed.
    Duplicate,
    /// Recorded as processed, nothing else changed.
    Ignored(IgnoreReason),
    /// The task's pending jobs are now the `planned` ones; `added` of them are new or revived.
    Scheduled {
        /// Jobs the task now asks for.
        planned: usize,
        /// How many of them were inserted or revived; above zero wakes the scheduler.
        added: u64,
    },
    /// The task was completed: `jobs` pending jobs cancelled.
    Cancelled {
        /// Pending jobs cancelled.
        jobs: u64,
    },
    /// The task was deleted: `jobs` pending jobs cancelled, the task remembered as deleted.
    Deleted {
        /// Pending jobs cancelled.
        jobs: u64,
    },
}

impl Applied {
    /// Whether pending jobs were added, so the scheduler should look again now rather than at its next tick.
    pub fn added_jobs(self) -> bool {
        matches!(self, Applied::Scheduled { added, .. } if added > 0)
    }
}

/// Applies the event `event_id` exactly once: a redelivery finds its id in `reminder.processed_events` and
/// changes nothing; an event older than what was applied for its task is recorded but changes nothing.
///
/// Concurrent events of one task (two replicas during a rebalance) are serialised by a per-task advisory lock.
pub async fn apply(
    pool: &PgPool,
    event_id: Uuid,
    event: &TaskEvent,
    trace: &TraceContext,
) -> Result<Applied, StoreError> {
    let mut tx = pool.begin().await.context("begin applying a task event")?;
    let first_time = sqlx::query("INSERT INTO reminder.processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .context("record processed event")?
        .rows_affected()
        == 1;
    if !first_time {
        // Nothing written; ending the transaction early releases the row lock the insert may have waited on.
        tx.rollback().await.context("end duplicate event")?;
        return Ok(Applied::Duplicate);
    }
    let task = &event.task;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(TASK_LOCK_CLASS)
        .bind(task.id)
        .execute(&mut *tx)
        .await
        .context("lock task")?;
    let applied = applied_task(&mut tx, task.id).await?;
    let outcome = match decide(applied, event) {
        Action::Ignore(reason) => Applied::Ignored(reason),
        Action::Schedule(jobs) => {
            save_task(&mut tx, task, false).await?;
            let added = replace_pending(&mut tx, task.id, &jobs, trace).await?;
            Applied::Scheduled { planned: jobs.len(), added }
        }
        Action::Cancel => {
            save_task(&mut tx, task, false).await?;
            Applied::Cancelled { jobs: cancel_pending(&mut tx, task.id).await? }
        }
        Action::Forget => {
            save_task(&mut tx, task, true).await?;
            Applied::Deleted { jobs: cancel_pending(&mut tx, task.id).await? }
        }
    };
    tx.commit().await.context("commit task event")?;
    Ok(outcome)
}

async fn applied_task(conn: &mut PgConnection, task_id: Uuid) -> Result<Option<AppliedTask>, StoreError> {
    let row: Option<(i64, bool)> = sqlx::query_as("SELECT version, deleted FROM reminder.tasks WHERE task_id = $1")
        .bind(task_id)
        .fetch_optional(conn)
        .await
        .context("read applied task")?;
    Ok(row.map(|(version, deleted)| AppliedTask { version, deleted }))
}

async fn save_task(conn: &mut PgConnection, task: &TaskSnapshot, deleted: bool) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO reminder.tasks (task_id, series_id, owner_id, title, due_at, time_zone, version, deleted) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (task_id) DO UPDATE SET series_id = EXCLUDED.series_id, owner_id = EXCLUDED.owner_id, \
             title = EXCLUDED.title, due_at = EXCLUDED.due_at, time_zone = EXCLUDED.time_zone, \
             version = EXCLUDED.version, deleted = EXCLUDED.deleted, updated_at = now()",
    )
    .bind(task.id)
    .bind(task.series_id)
    .bind(&task.owner_id)
    .bind(&task.title)
    .bind(task.due_at)
    .bind(&task.time_zone)
    .bind(task.version)
    .bind(deleted)
    .execute(conn)
    .await
    .context("save task")?;
    Ok(())
}

/// Makes `jobs` the task's pending jobs: pending jobs no longer planned are dropped (they were only plans);
/// planned jobs are inserted; one that already fired or was missed stays as it is (never fired twice); one that
/// was cancelled comes back only if its instant is still ahead (a reopened task gets its future reminders back,
/// not the ones that fell due while it was completed). Returns how many jobs became pending.
async fn replace_pending(
    conn: &mut PgConnection,
    task_id: Uuid,
    jobs: &[PlannedJob],
    trace: &TraceContext,
) -> Result<u64, StoreError> {
    let ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::now_v7()).collect();
    let keys: Vec<String> = jobs.iter().map(|job| job.key.to_string()).collect();
    let instants: Vec<DateTime<Utc>> = jobs.iter().map(|job| job.remind_at).collect();
    sqlx::query(
        "DELETE FROM reminder.reminder_jobs AS j WHERE j.task_id = $1 AND j.state = 'pending' \
         AND (j.reminder, j.remind_at) NOT IN (SELECT * FROM unnest($2::text[], $3::timestamptz[]))",
    )
    .bind(task_id)
    .bind(&keys)
    .bind(&instants)
    .execute(&mut *conn)
    .await
    .context("drop replaced jobs")?;
    let added = sqlx::query(
        "INSERT INTO reminder.reminder_jobs AS j (id, task_id, reminder, remind_at, trace_context) \
         SELECT planned.id, $2, planned.reminder, planned.remind_at, $5 \
         FROM unnest($1::uuid[], $3::text[], $4::timestamptz[]) AS planned (id, reminder, remind_at) \
         ON CONFLICT (task_id, reminder, remind_at) DO UPDATE \
             SET state = 'pending', settled_at = NULL, trace_context = EXCLUDED.trace_context \
             WHERE j.state = 'cancelled' AND j.remind_at > now()",
    )
    .bind(&ids)
    .bind(task_id)
    .bind(&keys)
    .bind(&instants)
    .bind(Json(trace.headers()))
    .execute(&mut *conn)
    .await
    .context("insert planned jobs")?
    .rows_affected();
    Ok(added)
}

async fn cancel_pending(conn: &mut PgConnection, task_id: Uuid) -> Result<u64, StoreError> {
    let cancelled = sqlx::query(
        "UPDATE reminder.reminder_jobs SET state = 'cancelled', settled_at = now() \
         WHERE task_id = $1 AND state = 'pending'",
    )
    .bind(task_id)
    .execute(conn)
    .await
    .context("cancel pending jobs")?
    .rows_affected();
    Ok(cancelled)
}
