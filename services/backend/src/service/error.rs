use crate::domain::InvalidStoredTask;
use crate::domain::{TransitionError, Version, Violations};
use crate::store::StoreError;

/// Why a task use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task for this owner (another user's task is indistinguishable from a missing one).
    #[error("task not found")]
    NotFound,
    #[error("invalid task: {0}")]
    Invalid(Violations),
    /// The client's `If-Match` names a version that is no longer current.
    #[error("the task has changed; current version is {}", current.map_or_else(|| "unknown".to_owned(), |v| v.get().to_string()))]
    PreconditionFailed { current: Option<Version> },
    #[error("{0}")]
    Transition(#[from] TransitionError),
    /// The occurrence of a series was created once and its task has since been deleted; it is not recreated.
    #[error("the occurrence was created before and has since been deleted")]
    OccurrenceGone,
    /// A request with this `Idempotency-Key` succeeded before and its task has since been deleted: replaying its
    /// answer would hand out a task that no longer exists.
    #[error("the request with this Idempotency-Key succeeded before; its task has since been deleted")]
    ReplayedTaskGone,
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// Unconditional writers kept colliding with concurrent changes.
    #[error("the task is being changed concurrently; retry")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding the task event failed: {0}")]
    EventEncoding(#[source] serde_json::Error),
    #[error(transparent)]
    StoredOutcome(#[from] InvalidStoredTask),
}

impl From<Violations> for TaskError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}
