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

use database::{Context as _, StoreError};

/// Where a job ends up once it leaves `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// A `reminder.due` event was written to the outbox.
    Fired,
    /// Due longer ago than the lateness policy allows; counted, not sent.
    Missed,
}

impl Settled {
    /// The `state` column's value for a job settled this way.
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
    /// The job's id; its `reminder.due` event's `job_id`.
    pub id: Uuid,
    /// The task (one occurrence, for a recurring task) the reminder belongs to.
    pub task_id: Uuid,
    /// The task's series: shared by every occurrence of a recurring task.
    pub series_id: Uuid,
    /// The owner's user id: whose notification settings apply.
    pub owner_id: String,
    /// The task's title as last applied, for the notification's text.
    pub title: String,
    /// The task's due time; `None` when it has none (then only absolute reminders exist).
    pub due_at: Option<DateTime<Utc>>,
    /// The task's IANA zone, for rendering times to the recipient.
    pub time_zone: String,
    /// When the job was planned to fire.
    pub remind_at: DateTime<Utc>,
    /// The W3C trace headers of the task event that planned the job, which its `reminder.due` event
    /// continues.
    pub trace_context: Json<BTreeMap<String, String>>,
    /// The database's clock when the claim ran: the instant the job is judged and fired at.
    pub claimed_at: DateTime<Utc>,
    /// Whether the overdue sweep ([`count_overdue`]) already counted this job as overdue.
    pub overdue_counted: bool,
}

/// Locks up to `limit` due pending jobs, oldest first, for the caller's transaction. `SKIP LOCKED` hands each
/// job to one claimer only: another replica's transaction passes over rows this one holds and takes the next.
/// The row lock is the lease: it lasts until the transaction that fires the job commits (the job is then no
/// longer pending) or ends otherwise (rolled back, connection lost: the job is due again at once).
pub async fn claim_due(conn: &mut PgConnection, limit: u16) -> Result<Vec<DueJob>, StoreError> {
    sqlx::query_as(
        "SELECT j.id, j.task_id, t.series_id, t.owner_id, t.title, t.due_at, t.time_zone, j.remind_at, \
                j.trace_context, now() AS claimed_at, j.overdue_counted \
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

/// What is waiting to fire, by the database's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Jobs waiting to fire, due or not.
    pub pending: i64,
    /// How long ago the oldest pending job was due; zero when none is due.
    pub oldest_due_age: Duration,
}

/// Counts pending jobs and measures how long the oldest due one has waited.
pub async fn backlog(pool: &PgPool) -> Result<Backlog, StoreError> {
    let (pending, oldest_due_seconds): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), \
                EXTRACT(EPOCH FROM now() - min(remind_at) FILTER (WHERE remind_at <= now()))::float8 \
         FROM reminder.reminder_jobs WHERE state = 'pending'",
    )
    .fetch_one(pool)
    .await
    .context("measure the pending jobs")?;
    let oldest_due_age =
        Duration::try_from_secs_f64(oldest_due_seconds.unwrap_or(0.0).max(0.0)).unwrap_or(Duration::MAX);
    Ok(Backlog { pending, oldest_due_age })
}

/// Marks pending jobs due longer ago than `on_time` as counted overdue and says how many it marked: each job is
/// marked once, whichever replica sweeps first (the update is atomic per row).
pub async fn count_overdue(pool: &PgPool, on_time: Duration) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE reminder.reminder_jobs SET overdue_counted = true \
         WHERE state = 'pending' AND NOT overdue_counted AND remind_at < now() - $1",
    )
    .bind(on_time)
    .execute(pool)
    .await
    .context("count overdue jobs")?;
    Ok(result.rows_affected())
}
