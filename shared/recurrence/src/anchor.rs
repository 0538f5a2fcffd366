//! Where the next occurrence is counted from.

/// Where the next occurrence of a recurring task is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurrenceAnchor {
    /// Follows the schedule of due dates, however late a task was completed.
    Due,
    /// Counted from the moment the task was completed.
    Completion,
}

impl RecurrenceAnchor {
    pub const ALL: [RecurrenceAnchor; 2] = [RecurrenceAnchor::Due, RecurrenceAnchor::Completion];

    /// The stored and wire name: `due` or `completion`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecurrenceAnchor::Due => "due",
            RecurrenceAnchor::Completion => "completion",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|anchor| anchor.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for anchor in RecurrenceAnchor::ALL {
            assert_eq!(RecurrenceAnchor::from_name(anchor.as_str()), Some(anchor));
        }
        assert_eq!(RecurrenceAnchor::from_name("Due"), None);
    }
}
