//! `backend.outbox`: events written in the same transaction as the change they announce.
//!
//! The table is created by the backend's own migrations (kept byte-for-byte, sqlx checksums them); writing and
//! relaying it is the shared `outbox` crate's job, on this schema.

use std::sync::LazyLock;

use outbox::{Outbox, OutboxError};
use sqlx::PgConnection;

use super::error::StoreError;
use super::migrate::SCHEMA;

pub use outbox::OutboxMessage;

/// The backend's outbox table, `backend.outbox` (notify channel `backend_outbox`).
pub static OUTBOX: LazyLock<Outbox> = LazyLock::new(|| Outbox::new(SCHEMA));

/// Writes `message` in the caller's transaction. The service layer counts the event
/// (`metrics::outbox_event_written`) once that transaction has committed.
pub async fn insert(conn: &mut PgConnection, message: &OutboxMessage) -> Result<(), StoreError> {
    match outbox::enqueue(conn, &OUTBOX, message).await {
        // Counted by the caller after its commit, as the receipt asks.
        Ok(_enqueued) => Ok(()),
        Err(OutboxError { operation, source, .. }) => Err(StoreError::Database { operation, source }),
    }
}
