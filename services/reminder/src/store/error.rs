//! Persistence failures, naming the operation that failed.

/// A database operation failed. Every variant is worth retrying: the job store holds no state a retry could not
/// rebuild (each transaction is all or nothing).
#[derive(Debug, thiserror::Error)]
#[error("database operation `{operation}` failed")]
pub struct StoreError {
    /// What was being done, e.g. `claim due jobs`.
    pub operation: &'static str,
    /// The database's error.
    #[source]
    pub source: sqlx::Error,
}

/// Attaches the operation's name to a `sqlx` error.
pub(crate) trait Context<T> {
    fn context(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError { operation, source })
    }
}
