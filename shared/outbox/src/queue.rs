//! The relay's side of the table: claim, mark, fail, release, count, purge.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::OutboxError;
use crate::table::Outbox;

/// A claimed row, leased to this relay until it is published, fails, or the lease runs out.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct PendingMessage {
    pub id: Uuid,
    pub topic: String,
    pub message_key: String,
    pub payload: Json<serde_json::Value>,
    pub headers: Json<BTreeMap<String, String>>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

impl Outbox {
    /// Leases up to `limit` publishable rows for `lease`, oldest first (see the claim statement).
    ///
    /// Claims take a transaction-level advisory lock of this table (released at commit), so a claim always sees
    /// the leases of the claim before it and one key's rows never go to two relays at once.
    pub(crate) async fn claim(
        &self,
        pool: &PgPool,
        lease: Duration,
        limit: u16,
    ) -> Result<Vec<PendingMessage>, OutboxError> {
        let mut tx = pool.begin().await.map_err(self.error("begin outbox claim"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.claim_lock())
            .execute(&mut *tx)
            .await
            .map_err(self.error("lock outbox claim"))?;
        let mut rows: Vec<PendingMessage> = sqlx::query_as(self.sql().claim.clone())
            .bind(lease.as_secs_f64())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(self.error("claim outbox rows"))?;
        tx.commit().await.map_err(self.error("commit outbox claim"))?;
        // RETURNING has no defined order.
        rows.sort_by_key(|row| (row.created_at, row.id));
        Ok(rows)
    }

    /// Marks a row as acknowledged by the broker, ending its lease.
    pub(crate) async fn mark_published(&self, pool: &PgPool, id: Uuid) -> Result<(), OutboxError> {
        sqlx::query(self.sql().mark_published.clone())
            .bind(id)
            .execute(pool)
            .await
            .map_err(self.error("mark outbox row published"))?;
        Ok(())
    }

    /// Records a failed publish; the lease becomes the retry delay, so no relay touches the row (or newer rows of
    /// its key) before `retry_in` has passed.
    pub(crate) async fn record_failure(
        &self,
        pool: &PgPool,
        id: Uuid,
        error: &str,
        retry_in: Duration,
    ) -> Result<(), OutboxError> {
        sqlx::query(self.sql().record_failure.clone())
            .bind(id)
            .bind(error)
            .bind(retry_in.as_secs_f64())
            .execute(pool)
            .await
            .map_err(self.error("record outbox publish failure"))?;
        Ok(())
    }

    /// Gives rows back unpublished (e.g. the lease ran short before their turn came).
    pub(crate) async fn release(&self, pool: &PgPool, ids: &[Uuid]) -> Result<(), OutboxError> {
        sqlx::query(self.sql().release.clone())
            .bind(ids)
            .execute(pool)
            .await
            .map_err(self.error("release outbox rows"))?;
        Ok(())
    }

    /// Rows not yet acknowledged by the broker.
    pub async fn pending_count(&self, pool: &PgPool) -> Result<i64, OutboxError> {
        sqlx::query_scalar(self.sql().pending_count.clone())
            .fetch_one(pool)
            .await
            .map_err(self.error("count pending outbox rows"))
    }

    /// Deletes up to `limit` rows published before `cutoff` (bounded, so one purge never holds locks for long).
    pub async fn purge_published_before(
        &self,
        pool: &PgPool,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, OutboxError> {
        let result = sqlx::query(self.sql().purge.clone())
            .bind(cutoff)
            .bind(limit)
            .execute(pool)
            .await
            .map_err(self.error("purge published outbox rows"))?;
        Ok(result.rows_affected())
    }
}
