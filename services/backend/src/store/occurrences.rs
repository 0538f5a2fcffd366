//! `backend.series_occurrences`: which task was created for each (series, instant), so it is created only once.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::{Context, StoreError};

/// Records that `task_id` is the occurrence of `series_id` at `occurs_at`; `false` if that occurrence is taken.
///
/// A concurrent insert of the same occurrence waits for the other transaction: if it commits, this one sees the
/// conflict, so the caller can roll back and answer with the winner's task.
pub async fn insert(
    conn: &mut PgConnection,
    series_id: Uuid,
    occurs_at: DateTime<Utc>,
    task_id: Uuid,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO backend.series_occurrences (series_id, occurs_at, task_id) VALUES ($1, $2, $3) \
         ON CONFLICT (series_id, occurs_at) DO NOTHING",
    )
    .bind(series_id)
    .bind(occurs_at)
    .bind(task_id)
    .execute(conn)
    .await
    .context("insert series occurrence")?;
    Ok(result.rows_affected() == 1)
}

/// The task created for this occurrence, if one was.
pub async fn find(
    conn: &mut PgConnection,
    series_id: Uuid,
    occurs_at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    sqlx::query_scalar("SELECT task_id FROM backend.series_occurrences WHERE series_id = $1 AND occurs_at = $2")
        .bind(series_id)
        .bind(occurs_at)
        .fetch_optional(conn)
        .await
        .context("find series occurrence")
}
