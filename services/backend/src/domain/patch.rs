//! A partial update (JSON merge-patch semantics): absent fields stay, `null` clears a nullable field.

use chrono::{DateTime, Utc};

use super::reminders::ReminderInput;
use super::task::{Priority, RecurrenceInput, TaskSpecInput};

/// A field of a patch that may also be cleared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Nullable<T> {
    /// Not in the patch: the current value stays.
    #[default]
    Unchanged,
    /// `null` in the patch: the value is removed.
    Clear,
    /// The new value.
    Set(T),
}

impl<T> Nullable<T> {
    fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Nullable::Unchanged => current,
            Nullable::Clear => None,
            Nullable::Set(value) => Some(value),
        }
    }
}

/// A partial update of a task's editable fields: `None` or [`Nullable::Unchanged`] keeps a field, anything else
/// replaces it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskPatch {
    /// A new title; `None` keeps it.
    pub title: Option<String>,
    /// A new description, or none, or the current one.
    pub description: Nullable<String>,
    /// A new priority; `None` keeps it.
    pub priority: Option<Priority>,
    /// Labels replacing the current ones as a whole; `None` keeps them.
    pub labels: Option<Vec<String>>,
    /// A new due time, or none, or the current one.
    pub due_at: Nullable<DateTime<Utc>>,
    /// A new IANA time zone name; `None` keeps it.
    pub time_zone: Option<String>,
    /// A new recurrence, or none (a one-off task), or the current one.
    pub recurrence: Nullable<RecurrenceInput>,
    /// Reminders replacing the current ones as a whole; `None` keeps them.
    pub reminders: Option<Vec<ReminderInput>>,
}

impl TaskPatch {
    /// The current fields with this patch merged over them; the caller validates the result as a whole, so a
    /// patch cannot leave a task in a state a create would reject.
    pub fn apply(self, current: TaskSpecInput) -> TaskSpecInput {
        TaskSpecInput {
            title: self.title.unwrap_or(current.title),
            description: self.description.apply(current.description),
            priority: self.priority.unwrap_or(current.priority),
            labels: self.labels.unwrap_or(current.labels),
            due_at: self.due_at.apply(current.due_at),
            time_zone: self.time_zone.unwrap_or(current.time_zone),
            recurrence: self.recurrence.apply(current.recurrence),
            reminders: self.reminders.unwrap_or(current.reminders),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> TaskSpecInput {
        let due = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        TaskSpecInput {
            title: "old".into(),
            description: Some("keep me".into()),
            priority: Priority::Low,
            labels: vec!["a".into()],
            due_at: Some(due),
            time_zone: "UTC".into(),
            recurrence: None,
            reminders: vec![],
        }
    }

    #[test]
    fn absent_fields_stay_and_null_clears() {
        let patch = TaskPatch { title: Some("new".into()), due_at: Nullable::Clear, ..TaskPatch::default() };
        let merged = patch.apply(current());
        assert_eq!(merged.title, "new");
        assert_eq!(merged.description.as_deref(), Some("keep me"));
        assert_eq!(merged.due_at, None);
        assert_eq!(merged.priority, Priority::Low);
    }

    #[test]
    fn empty_patch_changes_nothing() {
        assert_eq!(TaskPatch::default().apply(current()), current());
    }
}
