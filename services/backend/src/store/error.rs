use uuid::Uuid;

/// A persistence failure, naming the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database operation `{operation}` failed: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("row {id} in `{table}` holds invalid data: {reason}")]
    CorruptRow { table: &'static str, id: String, reason: String },
}

impl StoreError {
    pub fn corrupt_task(id: Uuid, reason: impl std::fmt::Display) -> Self {
        Self::CorruptRow { table: "backend.tasks", id: id.to_string(), reason: reason.to_string() }
    }
}

/// Attaches the operation's name to a `sqlx` error.
pub trait Context<T> {
    fn context(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { operation, source })
    }
}
