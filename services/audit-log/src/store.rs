//! Postgres, schema `audit_log`: every task change once, as an append-only record, and the last state seen of
//! each task. Migrations are in `services/audit-log/migrations`; nothing outside the schema is touched.

use chrono::{DateTime, Utc};
pub use database::StoreError;
use database::{Context as _, Schema};
use events::CloudEvent;
use events::task::{TaskChange, TaskEvent};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::diff::changed_fields;

/// The schema this service owns: its tables and the migration bookkeeping (`audit_log._sqlx_migrations`).
pub const SCHEMA: Schema = Schema::new("audit_log");

/// Every migration in `services/audit-log/migrations`; `database::migrate` points it at [`SCHEMA`].
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First time this event id was seen: one record was appended.
    Applied,
    /// This event id was recorded before; nothing changed.
    Duplicate,
}

/// Appends the record of `change` exactly once: its event id is the record's key, so a redelivery (or a crash
/// before the offset commit) adds nothing; its `time` is when the change was made. The fields it changed are
/// found by comparing the task with the last state seen of it, which the same transaction then moves on.
pub async fn record(pool: &PgPool, change: &CloudEvent<TaskEvent>) -> Result<Recorded, StoreError> {
    let task = &change.data.task;
    let snapshot = serde_json::to_value(task).map_err(|error| StoreError {
        operation: "serialise task snapshot",
        source: sqlx::Error::Encode(Box::new(error)),
    })?;
    let mut tx = pool.begin().await.context("begin recording a task change")?;
    // Locks the task's state row, so two changes of one task are recorded one after the other.
    let previous: Option<(i64, Value)> =
        sqlx::query_as("SELECT version, snapshot FROM audit_log.task_states WHERE task_id = $1 FOR UPDATE")
            .bind(task.id)
            .fetch_optional(&mut *tx)
            .await
            .context("read the task's last state")?;
    let (before, after, before_known) = match change.data.change {
        TaskChange::Created => (None, Some(&snapshot), true),
        // A deletion carries the task as it was.
        TaskChange::Deleted => (Some(&snapshot), None, true),
        _ => match &previous {
            Some((version, last)) if *version < task.version => (Some(last), Some(&snapshot), true),
            // Never seen before (recorded before this service ran, or forgotten), or an older change arriving
            // late: what it changed cannot be told, so every field is given as it is after the change.
            _ => (None, Some(&snapshot), false),
        },
    };
    let fields = serde_json::to_value(changed_fields(before, after)).unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO audit_log.task_changes \
             (event_id, task_id, owner_id, change, task_version, actor, occurred_at, before_known, fields) \
         VALUES ($1, $2, $3, $4, $5, $3, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(change.id)
    .bind(task.id)
    .bind(&task.owner_id)
    .bind(change.data.change.name())
    .bind(task.version)
    .bind(change.time)
    .bind(before_known)
    .bind(&fields)
    .execute(&mut *tx)
    .await
    .context("append the change record")?;
    if inserted.rows_affected() == 0 {
        // Nothing written; ending early releases the row lock.
        tx.rollback().await.context("end duplicate event")?;
        return Ok(Recorded::Duplicate);
    }
    if change.data.change == TaskChange::Deleted {
        sqlx::query("DELETE FROM audit_log.task_states WHERE task_id = $1")
            .bind(task.id)
            .execute(&mut *tx)
            .await
            .context("forget a deleted task's state")?;
    } else {
        sqlx::query(
            "INSERT INTO audit_log.task_states (task_id, version, snapshot) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id) DO UPDATE SET version = EXCLUDED.version, snapshot = EXCLUDED.snapshot \
             WHERE audit_log.task_states.version < EXCLUDED.version",
        )
        .bind(task.id)
        .bind(task.version)
        .bind(&snapshot)
        .execute(&mut *tx)
        .await
        .context("move the task's state on")?;
    }
    tx.commit().await.context("commit task change record")?;
    Ok(Recorded::Applied)
}

/// One record of a task's history, as the internal API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct HistoryEntry {
    /// The change's CloudEvent id.
    pub event_id: Uuid,
    /// `created`, `updated`, `completed`, `reopened` or `deleted`.
    pub change: String,
    /// The task's version after the change.
    pub task_version: i64,
    /// Who made the change: the owner's user id.
    pub actor: String,
    /// When the change was made.
    pub occurred_at: DateTime<Utc>,
    /// Whether `fields` has the values before the change; false when this service never saw the earlier state.
    pub before_known: bool,
    /// Each changed field: `{"before": …, "after": …}`.
    pub fields: Value,
}

/// The most history one call returns: far more changes than one task sees in practice.
pub const HISTORY_LIMIT: i64 = 1000;

/// `owner`'s records of task `task_id`, oldest first, at most [`HISTORY_LIMIT`]; empty when there are none or
/// the task is another user's.
pub async fn history(pool: &PgPool, owner: &str, task_id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
    sqlx::query_as(
        "SELECT event_id, change, task_version, actor, occurred_at, before_known, fields \
         FROM audit_log.task_changes WHERE task_id = $1 AND owner_id = $2 \
         ORDER BY occurred_at, event_id LIMIT $3",
    )
    .bind(task_id)
    .bind(owner)
    .bind(HISTORY_LIMIT)
    .fetch_all(pool)
    .await
    .context("read a task's history")
}

/// Deletes up to `batch` records made before `cutoff`; returns how many went.
pub async fn expire(pool: &PgPool, cutoff: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM audit_log.task_changes WHERE event_id IN \
             (SELECT event_id FROM audit_log.task_changes WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(pool)
    .await
    .context("delete expired records")?;
    Ok(deleted.rows_affected())
}
