//! Retention: records older than `AUDIT_RETENTION` are deleted, whole and in batches, so the table stays bounded
//! and no record is kept longer than the documented period.

use std::time::Duration;

use chrono::{DateTime, Utc};
use observability::{ErrorChain, Shutdown};
use sqlx::PgPool;

use crate::metrics;
use crate::store;

/// How many records one statement deletes: short transactions, however much has expired.
const BATCH: i64 = 5_000;

/// How long records are kept and how often expired ones are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `AUDIT_RETENTION`: a record older than this (by when the change was made) is deleted.
    pub keep_for: Duration,
    /// `AUDIT_RETENTION_INTERVAL`: the pause between two sweeps.
    pub interval: Duration,
}

/// Sweeps every `retention.interval` until `shutdown`; a failed sweep is logged and tried again at the next.
pub async fn run(pool: PgPool, retention: Retention, shutdown: Shutdown) {
    let mut every = tokio::time::interval(retention.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            _ = every.tick() => {
                if let Err(error) = sweep(&pool, retention.keep_for, &shutdown).await {
                    tracing::warn!(error = %ErrorChain(&error), "deleting expired audit records failed; next sweep retries");
                }
            }
        }
    }
}

/// Deletes every record older than `keep_for`, batch after batch; returns how many went.
pub async fn sweep(pool: &PgPool, keep_for: Duration, shutdown: &Shutdown) -> Result<u64, store::StoreError> {
    // A period too long to subtract keeps everything.
    let cutoff = chrono::Duration::from_std(keep_for)
        .ok()
        .and_then(|keep| Utc::now().checked_sub_signed(keep))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut total = 0;
    loop {
        let deleted = store::expire(pool, cutoff, BATCH).await?;
        metrics::records_expired(deleted);
        total += deleted;
        if deleted < BATCH.unsigned_abs() || shutdown.is_requested() {
            if total > 0 {
                tracing::info!(deleted = total, %cutoff, "expired audit records deleted");
            }
            return Ok(total);
        }
    }
}
