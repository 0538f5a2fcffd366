//! What can go wrong talking to the outbox table.

/// A statement on the outbox table failed; `operation` says which (e.g. "claim outbox rows").
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed on `{table}`")]
pub struct OutboxError {
    pub operation: &'static str,
    pub table: String,
    #[source]
    pub source: sqlx::Error,
}
