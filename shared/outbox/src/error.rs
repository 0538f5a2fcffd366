//! What can go wrong talking to the outbox table.

/// A statement on the outbox table failed; `operation` says which (e.g. "claim outbox rows").
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed on `{table}`")]
pub struct OutboxError {
    /// What was being done, e.g. `claim outbox rows`.
    pub operation: &'static str,
    /// The qualified table, `<schema>.outbox`.
    pub table: String,
    /// The database's error.
    #[source]
    pub source: sqlx::Error,
}
