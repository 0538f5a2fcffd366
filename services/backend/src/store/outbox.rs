//! `backend.outbox`: events written in the same transaction as the change they announce, and the relay's queue.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::error::{Context, StoreError};

/// One message for the relay to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// The CloudEvent id; also the row's primary key, so an event can never be written twice.
    pub id: Uuid,
    pub topic: &'static str,
    /// Kafka message key.
    pub key: String,
    pub event_type: String,
    /// The complete CloudEvent as JSON.
    pub payload: serde_json::Value,
    /// Kafka headers, e.g. `traceparent`.
    pub headers: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut PgConnection, message: &OutboxMessage) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO backend.outbox (id, topic, message_key, event_type, payload, headers, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(message.id)
    .bind(message.topic)
    .bind(&message.key)
    .bind(&message.event_type)
    .bind(Json(&message.payload))
    .bind(Json(&message.headers))
    .bind(message.created_at)
    .execute(conn)
    .await
    .context("insert outbox message")?;
    Ok(())
}

/// The channel the outbox trigger notifies when rows commit.
pub const NOTIFY_CHANNEL: &str = "backend_outbox";

/// Serialises claims across relay replicas (a transaction-level advisory lock, released at commit), so a claim
/// always sees the leases of the claim before it and one key's rows never go to two relays at once.
const CLAIM_LOCK: i64 = 0x7461_736b_6f62_7831; // "taskobx1"

/// A claimed row, leased to this relay until it is published, fails, or the lease runs out.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PendingMessage {
    pub id: Uuid,
    pub topic: String,
    pub message_key: String,
    pub payload: Json<serde_json::Value>,
    pub headers: Json<BTreeMap<String, String>>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Leases up to `limit` publishable rows for `lease`, oldest first. A row is publishable when it is unpublished,
/// not leased, and no older unpublished row of its key is leased — so one key's events are published in order even
/// with several relays and while an older event waits for its retry.
pub async fn claim(pool: &PgPool, lease: Duration, limit: u16) -> Result<Vec<PendingMessage>, StoreError> {
    let mut tx = pool.begin().await.context("begin outbox claim")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CLAIM_LOCK).execute(&mut *tx).await.context("lock claim")?;
    let mut rows: Vec<PendingMessage> = sqlx::query_as(
        "UPDATE backend.outbox AS o SET claimed_until = now() + make_interval(secs => $1) \
         WHERE o.id IN ( \
             SELECT p.id FROM backend.outbox AS p \
             WHERE p.published_at IS NULL AND (p.claimed_until IS NULL OR p.claimed_until < now()) \
               AND NOT EXISTS ( \
                   SELECT 1 FROM backend.outbox AS e \
                   WHERE e.message_key = p.message_key AND e.published_at IS NULL \
                     AND (e.created_at, e.id) < (p.created_at, p.id) AND e.claimed_until >= now()) \
             ORDER BY p.created_at, p.id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING o.id, o.topic, o.message_key, o.payload, o.headers, o.created_at, o.attempts",
    )
    .bind(lease.as_secs_f64())
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .context("claim outbox rows")?;
    tx.commit().await.context("commit outbox claim")?;
    // RETURNING has no defined order.
    rows.sort_by_key(|row| (row.created_at, row.id));
    Ok(rows)
}

/// Marks a row as acknowledged by the broker, ending its lease.
pub async fn mark_published(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE backend.outbox SET published_at = now(), claimed_until = NULL, last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await
    .context("mark outbox row published")?;
    Ok(())
}

/// Records a failed publish; the lease becomes the retry delay, so no relay touches the row (or newer rows of its
/// key) before `retry_in` has passed.
pub async fn record_failure(pool: &PgPool, id: Uuid, error: &str, retry_in: Duration) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE backend.outbox SET attempts = attempts + 1, last_error = $2, \
         claimed_until = now() + make_interval(secs => $3) WHERE id = $1 AND published_at IS NULL",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .execute(pool)
    .await
    .context("record outbox publish failure")?;
    Ok(())
}

/// Gives rows back unpublished (e.g. the lease ran short before their turn came).
pub async fn release(pool: &PgPool, ids: &[Uuid]) -> Result<(), StoreError> {
    sqlx::query("UPDATE backend.outbox SET claimed_until = NULL WHERE id = ANY($1) AND published_at IS NULL")
        .bind(ids)
        .execute(pool)
        .await
        .context("release outbox rows")?;
    Ok(())
}

/// Rows not yet acknowledged by the broker.
pub async fn pending_count(pool: &PgPool) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT count(*) FROM backend.outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .context("count pending outbox rows")
}

/// Deletes up to `limit` rows published before `cutoff` (bounded, so one purge never holds locks for long).
pub async fn purge_published_before(pool: &PgPool, cutoff: DateTime<Utc>, limit: i64) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM backend.outbox WHERE id IN ( \
             SELECT id FROM backend.outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(pool)
    .await
    .context("purge published outbox rows")?;
    Ok(result.rows_affected())
}
