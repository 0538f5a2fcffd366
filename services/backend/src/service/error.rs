use crate::domain::InvalidStoredTask;
use crate::domain::{TransitionError, Version, Violations};
use crate::store::StoreError;

/// Why a task use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task for this owner (another user's task is indistinguishable from a missing one).
    #[error("task not found")]
    NotFound,
    /// The input breaks a domain rule; every violation is listed (422).
    #[error("invalid task: {0}")]
    Invalid(Violations),
    /// The client's `If-Match` names a version that is no longer current.
    #[error("the task has changed; current version is {}", current.map_or_else(|| "unknown".to_owned(), |v| v.get().to_string()))]
    PreconditionFailed {
        /// The version that is current now; `None` when a concurrent change or delete won the race after the
        /// check (412 either way).
        current: Option<Version>,
    },
    /// The task is already in the state the change leads to (409).
    #[error("{0}")]
    Transition(#[from] TransitionError),
    /// The occurrence of a series was created once and its task has since been deleted; it is not recreated.
    #[error("the occurrence was created before and has since been deleted")]
    OccurrenceGone,
    /// A request with this `Idempotency-Key` succeeded before and its task has since been deleted: replaying its
    /// answer would hand out a task that no longer exists.
    #[error("the request with this Idempotency-Key succeeded before; its task has since been deleted")]
    ReplayedTaskGone,
    /// The `Idempotency-Key` was first used for another operation, target or body (422).
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// Unconditional writers kept colliding with concurrent changes.
    #[error("the task is being changed concurrently; retry")]
    Contended,
    /// The database failed (503 when it is unreachable or saturated, 500 otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox event could not be serialised, so nothing was written (500).
    #[error("encoding the task event failed: {0}")]
    EventEncoding(#[source] serde_json::Error),
    /// The task an idempotency record stored no longer reads back as a valid task (500).
    #[error(transparent)]
    StoredOutcome(#[from] InvalidStoredTask),
}

impl From<Violations> for TaskError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}
