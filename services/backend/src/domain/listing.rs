//! What a task listing asks for: filters, a page size and a keyset position in the fixed order
//! `(due_at NULLS LAST, id)`.

use chrono::{DateTime, Utc};

use super::task::{Priority, TaskId, TaskStatus};

/// Filters combined with AND; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only tasks in this state.
    pub status: Option<TaskStatus>,
    /// Inclusive lower bound on `due_at`; tasks without a due time never match a due range.
    pub due_from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `due_at`.
    pub due_to: Option<DateTime<Utc>>,
    /// Only tasks carrying this label (exact match).
    pub label: Option<String>,
    /// Only tasks of this priority.
    pub priority: Option<Priority>,
}

/// Where the previous page ended: the sort key of its last task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The last task's due time; `None` when it had none (undated tasks come last).
    pub due_at: Option<DateTime<Utc>>,
    /// The last task's id, which orders tasks with the same due time.
    pub id: TaskId,
}

/// How many tasks one page holds: 1 to [`PageSize::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// The page size when the client asks for none.
    pub const DEFAULT: PageSize = PageSize(50);
    /// The largest page; larger requests are capped to it.
    pub const MAX: u32 = 100;

    /// Values above the maximum are capped rather than rejected; zero is not a page.
    pub fn new(requested: u32) -> Option<Self> {
        (requested > 0).then(|| Self(requested.min(Self::MAX)))
    }

    /// The size as a number, 1 to [`PageSize::MAX`].
    pub fn get(self) -> u32 {
        self.0
    }
}

/// One page request of a task listing: which tasks, after which position, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which tasks qualify.
    pub filter: TaskFilter,
    /// Where the previous page ended; `None` for the first page.
    pub after: Option<Position>,
    /// The most tasks the page holds.
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
