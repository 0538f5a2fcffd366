//! `notification.deliveries`: the delivery log and the worker's queue. Every statement the service runs on it.
//!
//! A delivery's life: `pending` (inserted by the consumer) → claimed by a worker for a lease (`next_attempt_at`
//! pushed out, a fresh `claim_token`) → `sent`, back to `pending` for a later retry, or given up on
//! (`gave_up_at` set, still `pending` until its dead letter is acknowledged) → `dead`. Outcomes are
//! recorded only under the claim's token, so a worker whose lease ran out (and whose delivery another worker took
//! over) cannot overwrite the newer outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use database::StoreError;
use database::{Context as _, Schema};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::channel::Channel;

/// The schema this service owns.
pub const SCHEMA: Schema = Schema::new("notification");

/// A delivery to record for a consumed event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// The new row's id (UUIDv7); ignored when the (event, channel) pair was recorded before.
    pub id: Uuid,
    /// The CloudEvent's `id`; with `channel`, the key that makes a redelivered event record nothing new.
    pub event_id: Uuid,
    /// Which sender delivers it.
    pub channel: Channel,
    /// The e-mail address or webhook URL.
    pub destination: String,
    /// The CloudEvent as received.
    pub event: serde_json::Value,
    /// The reminder's task: the Kafka key of the dead letter, should there be one.
    pub task_id: Uuid,
    /// When the reminder was due: the oldest-pending age and the delivery latency are measured from it.
    pub remind_at: DateTime<Utc>,
    /// W3C trace context of the consumer span, so the later delivery span joins the reminder's trace.
    pub trace_headers: BTreeMap<String, String>,
}

/// Records `deliveries` in one transaction, skipping any (event, channel) recorded before; returns how many are
/// new. When this returns, the deliveries are durable: the caller may let the event's offset be committed.
pub async fn record(pool: &PgPool, deliveries: &[NewDelivery]) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.context("begin recording deliveries")?;
    let mut inserted = 0;
    for delivery in deliveries {
        inserted += sqlx::query(
            "INSERT INTO notification.deliveries \
                 (id, event_id, channel, destination, event, task_id, remind_at, trace_headers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (event_id, channel) DO NOTHING",
        )
        .bind(delivery.id)
        .bind(delivery.event_id)
        .bind(delivery.channel.as_str())
        .bind(&delivery.destination)
        .bind(Json(&delivery.event))
        .bind(delivery.task_id)
        .bind(delivery.remind_at)
        .bind(Json(&delivery.trace_headers))
        .execute(&mut *tx)
        .await
        .context("insert delivery")?
        .rows_affected();
    }
    tx.commit().await.context("commit recorded deliveries")?;
    Ok(inserted)
}

/// A delivery leased to this worker until its outcome is recorded or the lease runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The row's id, named in logs and in the dead letter's `notification-delivery-id` header.
    pub id: Uuid,
    /// This claim's fencing token.
    pub claim: Uuid,
    /// The CloudEvent's `id`, sent as `Webhook-Id` (stable across retries).
    pub event_id: Uuid,
    /// Which sender delivers it.
    pub channel: Channel,
    /// The e-mail address or webhook URL as the owner's settings said when the event arrived; not yet validated.
    pub destination: String,
    /// The CloudEvent as received: the webhook body and the dead letter's payload.
    pub event: serde_json::Value,
    /// The reminder's task: the dead letter's Kafka key.
    pub task_id: Uuid,
    /// When the reminder was due, for the delivery latency.
    pub remind_at: DateTime<Utc>,
    /// Trace context of the consumer span: the delivery span's parent, copied into a dead letter.
    pub trace_headers: BTreeMap<String, String>,
    /// Attempts made before this claim.
    pub attempts: u32,
    /// Set when an earlier claim gave the delivery up but its dead letter was not acknowledged: the reason.
    pub given_up: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    claim_token: Uuid,
    event_id: Uuid,
    channel: String,
    destination: String,
    event: Json<serde_json::Value>,
    task_id: Uuid,
    remind_at: DateTime<Utc>,
    trace_headers: Json<BTreeMap<String, String>>,
    attempts: i32,
    gave_up_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// Leases up to `limit` due pending deliveries for `lease`, those due longest first. `SKIP LOCKED`: replicas
/// claiming at the same time take different rows instead of waiting for each other.
pub async fn claim(pool: &PgPool, lease: Duration, limit: u16) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let rows: Vec<ClaimedRow> = sqlx::query_as(
        "UPDATE notification.deliveries AS d \
         SET next_attempt_at = now() + make_interval(secs => $1), claim_token = $2 \
         WHERE d.id IN ( \
             SELECT id FROM notification.deliveries \
             WHERE status = 'pending' AND next_attempt_at <= now() \
             ORDER BY next_attempt_at \
             LIMIT $3 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING d.id, d.claim_token, d.event_id, d.channel, d.destination, d.event, d.task_id, d.remind_at, \
                   d.trace_headers, d.attempts, d.gave_up_at, d.last_error",
    )
    .bind(lease.as_secs_f64())
    .bind(Uuid::now_v7())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .context("claim due deliveries")?;
    Ok(rows.into_iter().filter_map(claimed).collect())
}

fn claimed(row: ClaimedRow) -> Option<ClaimedDelivery> {
    // The CHECK constraint admits only known channels; a row that still fails to parse stays pending and visible.
    let channel = match row.channel.parse() {
        Ok(channel) => channel,
        Err(error) => {
            tracing::error!(%error, delivery_id = %row.id, "skipping a delivery with an unknown channel");
            return None;
        }
    };
    Some(ClaimedDelivery {
        id: row.id,
        claim: row.claim_token,
        event_id: row.event_id,
        channel,
        destination: row.destination,
        event: row.event.0,
        task_id: row.task_id,
        remind_at: row.remind_at,
        trace_headers: row.trace_headers.0,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        given_up: row.gave_up_at.map(|_| row.last_error.unwrap_or_else(|| "given up".to_owned())),
    })
}

/// Whether an outcome was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Recorded {
    /// The claim still held: the outcome is stored.
    Yes,
    /// The lease ran out and another worker claimed the delivery since: its outcome counts, not ours.
    ClaimLost,
}

fn recorded(rows_affected: u64) -> Recorded {
    if rows_affected == 1 { Recorded::Yes } else { Recorded::ClaimLost }
}

/// Records that the destination accepted the delivery, with `attempts` made in all, and releases the claim.
pub async fn mark_sent(pool: &PgPool, delivery: &ClaimedDelivery, attempts: u32) -> Result<Recorded, StoreError> {
    let result = sqlx::query(
        "UPDATE notification.deliveries \
         SET status = 'sent', attempts = $3, finished_at = now(), claim_token = NULL, last_error = NULL \
         WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
    )
    .bind(delivery.id)
    .bind(delivery.claim)
    .bind(attempts_value(attempts))
    .execute(pool)
    .await
    .context("mark delivery sent")?;
    Ok(recorded(result.rows_affected()))
}

/// Puts the delivery back to wait `after`, with `attempts` made so far and why it is waiting.
pub async fn reschedule(
    pool: &PgPool,
    delivery: &ClaimedDelivery,
    attempts: u32,
    after: Duration,
    reason: &str,
) -> Result<Recorded, StoreError> {
    let result = sqlx::query(
        "UPDATE notification.deliveries \
         SET attempts = $3, next_attempt_at = now() + make_interval(secs => $4), claim_token = NULL, last_error = $5 \
         WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
    )
    .bind(delivery.id)
    .bind(delivery.claim)
    .bind(attempts_value(attempts))
    .bind(after.as_secs_f64())
    .bind(reason)
    .execute(pool)
    .await
    .context("reschedule delivery")?;
    Ok(recorded(result.rows_affected()))
}

/// Records that the delivery is given up on, keeping the claim: from now on no claim sends it again, whatever
/// happens before its dead letter is acknowledged.
pub async fn give_up(
    pool: &PgPool,
    delivery: &ClaimedDelivery,
    attempts: u32,
    reason: &str,
) -> Result<Recorded, StoreError> {
    let result = sqlx::query(
        "UPDATE notification.deliveries \
         SET attempts = $3, last_error = $4, gave_up_at = coalesce(gave_up_at, now()) \
         WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
    )
    .bind(delivery.id)
    .bind(delivery.claim)
    .bind(attempts_value(attempts))
    .bind(reason)
    .execute(pool)
    .await
    .context("give delivery up")?;
    Ok(recorded(result.rows_affected()))
}

/// Marks a given-up delivery dead once its dead letter is acknowledged.
pub async fn mark_dead(pool: &PgPool, delivery: &ClaimedDelivery) -> Result<Recorded, StoreError> {
    let result = sqlx::query(
        "UPDATE notification.deliveries \
         SET status = 'dead', finished_at = now(), claim_token = NULL \
         WHERE id = $1 AND claim_token = $2 AND status = 'pending' AND gave_up_at IS NOT NULL",
    )
    .bind(delivery.id)
    .bind(delivery.claim)
    .execute(pool)
    .await
    .context("mark delivery dead")?;
    Ok(recorded(result.rows_affected()))
}

/// The deliveries of one channel that are neither sent nor dead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PendingDeliveries {
    /// The channel these deliveries go through.
    pub channel: Channel,
    /// How many there are, claimed or waiting, given-up ones awaiting their dead letter included.
    pub count: i64,
    /// How long ago the reminder of the oldest one was due, by the database's clock (zero when none is due yet).
    pub oldest_due_age: Duration,
}

/// Pending deliveries per channel (channels without any are absent).
pub async fn pending(pool: &PgPool) -> Result<Vec<PendingDeliveries>, StoreError> {
    let rows: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
        "SELECT channel, count(*), \
                EXTRACT(EPOCH FROM now() - min(remind_at) FILTER (WHERE remind_at <= now()))::float8 \
         FROM notification.deliveries WHERE status = 'pending' GROUP BY channel",
    )
    .fetch_all(pool)
    .await
    .context("measure pending deliveries")?;
    Ok(rows
        .into_iter()
        .filter_map(|(channel, count, oldest_due_seconds)| {
            Some(PendingDeliveries {
                channel: channel.parse().ok()?,
                count,
                oldest_due_age: Duration::try_from_secs_f64(oldest_due_seconds.unwrap_or(0.0).max(0.0))
                    .unwrap_or(Duration::MAX),
            })
        })
        .collect())
}

/// Deletes sent and dead deliveries finished before `cutoff`; returns how many.
pub async fn purge_finished_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM notification.deliveries WHERE status <> 'pending' AND finished_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await
        .context("purge finished deliveries")?;
    Ok(result.rows_affected())
}

fn attempts_value(attempts: u32) -> i32 {
    i32::try_from(attempts).unwrap_or(i32::MAX)
}
