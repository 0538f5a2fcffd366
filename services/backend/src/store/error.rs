//! The error of every store function, and [`Context`] to build it from a `sqlx` error.

use uuid::Uuid;

/// A persistence failure, naming the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A database call (a query, a connection, a transaction's begin or commit) failed.
    #[error("database operation `{operation}` failed")]
    Database {
        /// What was being done, e.g. `insert task`.
        operation: &'static str,
        /// The driver's error; an I/O error or a timed-out or closed pool makes it a 503, anything else a 500.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row does not read back as a valid value; only possible if it was altered outside the service.
    #[error("row {id} in `{table}` holds invalid data: {reason}")]
    CorruptRow {
        /// The table, schema-qualified, e.g. `backend.tasks`.
        table: &'static str,
        /// The row's key, as text.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// A row of `backend.tasks` that does not read back as a valid task.
    pub fn corrupt_task(id: Uuid, reason: impl std::fmt::Display) -> Self {
        Self::CorruptRow { table: "backend.tasks", id: id.to_string(), reason: reason.to_string() }
    }
}

/// Attaches the operation's name to a `sqlx` error.
pub trait Context<T> {
    /// Wraps the error as [`StoreError::Database`], naming `operation`.
    fn context(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { operation, source })
    }
}
