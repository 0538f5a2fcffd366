//! What a task listing asks for: filters, a page size and a keyset position in the fixed order
//! `(due_at NULLS LAST, id)`.

use chrono::{DateTime, Utc};

use super::task::{Priority, TaskId, TaskStatus};

/// Filters combined with AND; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    /// Inclusive lower bound on `due_at`; tasks without a due time never match a due range.
    pub due_from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `due_at`.
    pub due_to: Option<DateTime<Utc>>,
    pub label: Option<String>,
    pub priority: Option<Priority>,
}

/// Where the previous page ended: the sort key of its last task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub due_at: Option<DateTime<Utc>>,
    pub id: TaskId,
}

/// How many tasks one page holds: 1 to [`PageSize::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub const DEFAULT: PageSize = PageSize(50);
    pub const MAX: u32 = 100;

    /// Values above the maximum are capped rather than rejected; zero is not a page.
    pub fn new(requested: u32) -> Option<Self> {
        (requested > 0).then(|| Self(requested.min(Self::MAX)))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: TaskFilter,
    pub after: Option<Position>,
    pub page_size: PageSize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_capped_and_never_zero() {
        assert_eq!(PageSize::new(0), None);
        assert_eq!(PageSize::new(7).map(PageSize::get), Some(7));
        assert_eq!(PageSize::new(10_000).map(PageSize::get), Some(PageSize::MAX));
    }
}
