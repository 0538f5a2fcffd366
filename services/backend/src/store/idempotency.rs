//! `backend.idempotency_keys`: the first outcome of each keyed request.

use chrono::{DateTime, Utc};
use events::task::TaskSnapshot;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::error::{Context, StoreError};
use crate::domain::OwnerId;
use crate::idempotency::{Fingerprint, IdempotencyKey, Operation};

/// What the first request with a key did.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOutcome {
    /// The [`Operation`] name the key was first used for.
    pub operation: String,
    /// The fingerprint of the first request.
    pub fingerprint: Fingerprint,
    /// The task as the first request left it, replayed to retries.
    pub task: TaskSnapshot,
}

#[derive(Debug, sqlx::FromRow)]
struct OutcomeRow {
    operation: String,
    fingerprint: Vec<u8>,
    task: Json<TaskSnapshot>,
}

/// The outcome stored for `owner`'s `key`, if any; a fingerprint that is not 32 bytes is a corrupt row.
pub async fn find(
    conn: &mut PgConnection,
    owner: &OwnerId,
    key: &IdempotencyKey,
) -> Result<Option<StoredOutcome>, StoreError> {
    let row: Option<OutcomeRow> = sqlx::query_as(
        "SELECT operation, fingerprint, task FROM backend.idempotency_keys WHERE owner_id = $1 AND key = $2",
    )
    .bind(owner.as_str())
    .bind(key.as_str())
    .fetch_optional(conn)
    .await
    .context("find idempotency key")?;
    row.map(|row| {
        let fingerprint = Fingerprint::from_bytes(&row.fingerprint).ok_or_else(|| StoreError::CorruptRow {
            table: "backend.idempotency_keys",
            id: key.as_str().to_owned(),
            reason: "fingerprint is not 32 bytes".to_owned(),
        })?;
        Ok(StoredOutcome { operation: row.operation, fingerprint, task: row.task.0 })
    })
    .transpose()
}

/// Records the outcome; `false` if another request with the same key committed first.
///
/// A concurrent insert of the same key waits for the other transaction: if it commits, this one sees the
/// conflict and the caller rolls back and replays the stored outcome instead.
pub async fn insert(
    conn: &mut PgConnection,
    owner: &OwnerId,
    key: &IdempotencyKey,
    operation: Operation,
    fingerprint: &Fingerprint,
    task: &TaskSnapshot,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO backend.idempotency_keys (owner_id, key, operation, fingerprint, task) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_id, key) DO NOTHING",
    )
    .bind(owner.as_str())
    .bind(key.as_str())
    .bind(operation.as_str())
    .bind(fingerprint.as_bytes())
    .bind(Json(task))
    .execute(conn)
    .await
    .context("insert idempotency key")?;
    Ok(result.rows_affected() == 1)
}

/// Forgets keys recorded before `cutoff`; returns how many.
pub async fn purge_created_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM backend.idempotency_keys WHERE created_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await
        .context("purge idempotency keys")?;
    Ok(result.rows_affected())
}
