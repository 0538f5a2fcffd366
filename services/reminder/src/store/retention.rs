//! Forgetting what is old enough to be of no further use, in bounded batches so a purge never holds locks long.
//!
//! Safe as long as the retention exceeds both the longest redelivery window of `task-events` and
//! `REMINDER_MAX_LATENESS` (checked at configuration): a re-planned job whose settled row was purged is by then
//! too late to fire and is marked missed, never sent twice.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use database::{Context as _, StoreError};

/// Rows deleted per statement.
const BATCH: i64 = 10_000;

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Processed-event ids deleted.
    pub processed_events: u64,
    /// Fired, missed and cancelled jobs deleted.
    pub settled_jobs: u64,
    /// Task rows deleted: unchanged since the cutoff and without jobs left.
    pub tasks: u64,
}

/// Deletes processed-event ids recorded before `cutoff`, jobs settled (fired, missed, cancelled) before it, and
/// tasks last changed before it that have no jobs left.
pub async fn purge_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<Purged, StoreError> {
    let processed_events = purge(
        pool,
        "DELETE FROM reminder.processed_events WHERE event_id IN ( \
             SELECT event_id FROM reminder.processed_events WHERE processed_at < $1 LIMIT $2)",
        cutoff,
        "purge processed events",
    )
    .await?;
    let settled_jobs = purge(
        pool,
        "DELETE FROM reminder.reminder_jobs WHERE id IN ( \
             SELECT id FROM reminder.reminder_jobs WHERE state <> 'pending' AND settled_at < $1 LIMIT $2)",
        cutoff,
        "purge settled jobs",
    )
    .await?;
    let tasks = purge(
        pool,
        "DELETE FROM reminder.tasks AS t WHERE t.task_id IN ( \
             SELECT task_id FROM reminder.tasks AS o WHERE o.updated_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM reminder.reminder_jobs AS j WHERE j.task_id = o.task_id) LIMIT $2)",
        cutoff,
        "purge tasks",
    )
    .await?;
    Ok(Purged { processed_events, settled_jobs, tasks })
}

async fn purge(
    pool: &PgPool,
    sql: &'static str,
    cutoff: DateTime<Utc>,
    operation: &'static str,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(sql).bind(cutoff).bind(BATCH).execute(pool).await.context(operation)?.rows_affected();
        total += deleted;
        if deleted < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            return Ok(total);
        }
    }
}
