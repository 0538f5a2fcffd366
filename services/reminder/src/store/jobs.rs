//! The scheduler's side of `reminder.reminder_jobs`: claiming due jobs and settling them.
//!
//! Every instant is compared with the database's clock (`now()`), never a replica's own, so replicas with
//! skewed clocks agree on what is due and how late it is.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::error::{Context as _, StoreError};

/// Where a job ends up once it leaves `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// A `reminder.due` event was written to the outbox.
    Fired,
    /// Due longer ago than the lateness policy allows; counted, not sent.
    Missed,
}

impl Settled {
    pub const fn as_str(self) -> &'static str {
        match self {
            Settled::Fired => "fired",
            Settled::Missed => "missed",
        }
    }
}

/// A claimed job with what its `reminder.due` event tells the recipient.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DueJob {
    pub id: Uuid,
    pub task_id: Uuid,
    pub series_id: Uuid,
    pub owner_id: String,
    pub title: String,
    pub due_at: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub remind_at: DateTime<Utc>,
    pub trace_context: Json<BTreeMap<String, String>>,
    /// The database's clock when the claim ran: the instant the job is judged and fired at.
    pub claimed_at: DateTime<Utc>,
}

/// Locks up to `limit` due pending jobs, oldest first, for the caller's transaction. `SKIP LOCKED` hands each
/// job to one claimer only: another replica's transaction passes over rows this one holds and takes the next.
/// The row lock is the lease: it lasts until the transaction that fires the job commits (the job is then no
/// longer pending) or ends otherwise (rolled back, connection lost: the job is due again at once).
pub async fn claim_due(conn: &mut PgConnection, limit: u16) -> Result<Vec<DueJob>, StoreError> {
    sqlx::query_as(
        "SELECT j.id, j.task_id, t.series_id, t.owner_id, t.title, t.due_at, t.time_zone, j.remind_at, \
                j.trace_context, now() AS claimed_at \
         FROM reminder.reminder_jobs AS j JOIN reminder.tasks AS t ON t.task_id = j.task_id \
         WHERE j.state = 'pending' AND j.remind_at <= now() \
         ORDER BY j.remind_at, j.id LIMIT $1 \
         FOR UPDATE OF j SKIP LOCKED",
    )
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .context("claim due jobs")
}

/// Moves claimed jobs out of `pending`.
pub async fn settle(conn: &mut PgConnection, ids: &[Uuid], outcome: Settled) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE reminder.reminder_jobs SET state = $2, settled_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .bind(outcome.as_str())
        .execute(conn)
        .await
        .context("settle jobs")?;
    Ok(())
}

/// How long until the earliest pending job is due by the database's clock: `Some(ZERO)` when one is due
/// already, `None` when nothing is pending.
pub async fn next_due_in(pool: &PgPool) -> Result<Option<Duration>, StoreError> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM min(remind_at) - now())::float8 FROM reminder.reminder_jobs WHERE state = 'pending'",
    )
    .fetch_one(pool)
    .await
    .context("find the next due job")?;
    Ok(seconds.map(|seconds| Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)))
}

/// Jobs waiting to fire, due or not.
pub async fn pending_count(pool: &PgPool) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT count(*) FROM reminder.reminder_jobs WHERE state = 'pending'")
        .fetch_one(pool)
        .await
        .context("count pending jobs")
}
