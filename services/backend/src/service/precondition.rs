use crate::domain::Version;

/// What the client required of the current version (`If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match` (or `If-Match: *` on an existing task): any current version will do.
    None,
    /// One of these versions must be current. Empty when only weak tags were sent, which never match.
    OneOf(Vec<Version>),
}

impl Precondition {
    /// Whether a change may go ahead while `current` is the stored version.
    pub fn holds_for(&self, current: Version) -> bool {
        match self {
            Precondition::None => true,
            Precondition::OneOf(versions) => versions.contains(&current),
        }
    }

    /// Whether the client named versions: such a request that loses a race gets 412 rather than a retry.
    pub fn is_conditional(&self) -> bool {
        matches!(self, Precondition::OneOf(_))
    }
}
