//! [`StoreError`], the error of a service's store functions, and [`Context`] to build it from a `sqlx` error.

/// A database operation failed, named by what it was doing. Every one is worth retrying when the store's
/// transactions are all or nothing, as every Taskwatch store's are.
#[derive(Debug, thiserror::Error)]
#[error("database operation `{operation}` failed")]
pub struct StoreError {
    /// What was being done, e.g. `claim due jobs`.
    pub operation: &'static str,
    /// The database's own error (logged with the chain, so not repeated in the message).
    #[source]
    pub source: sqlx::Error,
}

/// Attaches the operation's name to a `sqlx` error: `query.await.context("claim due jobs")?`.
pub trait Context<T> {
    /// Wraps the error as a [`StoreError`] naming `operation`.
    fn context(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError { operation, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_named_and_the_cause_kept() {
        let failed: Result<(), sqlx::Error> = Err(sqlx::Error::PoolTimedOut);
        let error = failed.context("claim due jobs").unwrap_err();
        assert_eq!(error.to_string(), "database operation `claim due jobs` failed");
        assert!(matches!(
            std::error::Error::source(&error).and_then(|s| s.downcast_ref()),
            Some(sqlx::Error::PoolTimedOut)
        ));
    }
}
