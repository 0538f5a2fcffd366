//! What a task event asks of the job store, given what was applied for the task before: pure, no I/O.
//!
//! Events can arrive twice or out of order across redeliveries. Exact duplicates are caught earlier (by event
//! id); this decides on the snapshot's `version`, so an older snapshot never overwrites a newer one.

use events::task::{TaskChange, TaskEvent, TaskStatus};

use crate::plan::{PlannedJob, plan};

/// What the store already holds for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedTask {
    /// The snapshot version last applied.
    pub version: i64,
    /// A deletion was applied: the task is gone for good.
    pub deleted: bool,
}

/// What to do with one task event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An open task: its pending jobs become exactly these (cancelled ones still in the future come back).
    Schedule(Vec<PlannedJob>),
    /// A completed task: every pending job is cancelled.
    Cancel,
    /// A deleted task: every pending job is cancelled and the task is remembered as deleted, so a late
    /// redelivery of an older event cannot bring its reminders back.
    Forget,
    /// Nothing to change.
    Ignore(IgnoreReason),
}

/// Why an event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A snapshot as new or newer was applied already.
    Stale,
    /// The task was deleted.
    Deleted,
}

impl IgnoreReason {
    /// The reason's stable snake_case name (`stale`, `deleted`).
    pub const fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::Stale => "stale",
            IgnoreReason::Deleted => "deleted",
        }
    }
}

/// What `event` asks of the store, given what was applied for its task before (`None`: nothing yet). A
/// deletion applied before wins over everything, a deletion event applies whatever its version, and otherwise
/// only a newer version than the one applied changes anything.
pub fn decide(applied: Option<AppliedTask>, event: &TaskEvent) -> Action {
    if applied.is_some_and(|applied| applied.deleted) {
        return Action::Ignore(IgnoreReason::Deleted);
    }
    // A deletion carries the task as it was (the version of its last change), and nothing follows it: apply it
    // whatever the version.
    if event.change == TaskChange::Deleted {
        return Action::Forget;
    }
    if applied.is_some_and(|applied| applied.version >= event.task.version) {
        return Action::Ignore(IgnoreReason::Stale);
    }
    match event.task.status {
        TaskStatus::Completed => Action::Cancel,
        TaskStatus::Open => Action::Schedule(plan(&event.task)),
    }
}

#[cfg(test)]
mod tests {
    use events::fixtures::at;
    use events::task::{Reminder, TaskSnapshot};

    use super::*;

    fn event(change: TaskChange, status: TaskStatus, version: i64) -> TaskEvent {
        let task = TaskSnapshot {
            status,
            due_at: Some(at("2026-03-29T07:00:00Z")),
            time_zone: "UTC".into(),
            reminders: vec![Reminder::BeforeDue { minutes: 10 }],
            version,
            ..events::fixtures::task()
        };
        TaskEvent { change, task }
    }

    const APPLIED_V2: Option<AppliedTask> = Some(AppliedTask { version: 2, deleted: false });

    #[test]
    fn a_new_open_task_is_scheduled() {
        let Action::Schedule(jobs) = decide(None, &event(TaskChange::Created, TaskStatus::Open, 1)) else {
            panic!("expected a schedule");
        };
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].remind_at, at("2026-03-29T06:50:00Z"));
    }

    #[test]
    fn a_newer_update_or_reopen_reschedules() {
        for change in [TaskChange::Updated, TaskChange::Reopened] {
            assert!(matches!(decide(APPLIED_V2, &event(change, TaskStatus::Open, 3)), Action::Schedule(_)));
        }
    }

    #[test]
    fn an_older_or_equal_version_is_stale() {
        for version in [1, 2] {
            assert_eq!(
                decide(APPLIED_V2, &event(TaskChange::Updated, TaskStatus::Open, version)),
                Action::Ignore(IgnoreReason::Stale)
            );
        }
    }

    #[test]
    fn completion_cancels_and_so_does_an_update_of_a_completed_task() {
        assert_eq!(decide(APPLIED_V2, &event(TaskChange::Completed, TaskStatus::Completed, 3)), Action::Cancel);
        assert_eq!(decide(APPLIED_V2, &event(TaskChange::Updated, TaskStatus::Completed, 4)), Action::Cancel);
    }

    #[test]
    fn deletion_applies_at_the_same_version_and_is_final() {
        assert_eq!(decide(APPLIED_V2, &event(TaskChange::Deleted, TaskStatus::Open, 2)), Action::Forget);
        assert_eq!(decide(None, &event(TaskChange::Deleted, TaskStatus::Open, 1)), Action::Forget);
        let deleted = Some(AppliedTask { version: 2, deleted: true });
        for change in [TaskChange::Created, TaskChange::Updated, TaskChange::Reopened, TaskChange::Deleted] {
            assert_eq!(
                decide(deleted, &event(change, TaskStatus::Open, 9)),
                Action::Ignore(IgnoreReason::Deleted),
                "{change:?}"
            );
        }
    }
}
