//! Which reminder jobs a task asks for: pure, no I/O.
//!
//! A job is one reminder of one occurrence, identified by the task, the reminder's [`ReminderKey`] and the
//! instant it fires. Each occurrence of a recurring task is its own task (own id), so "per occurrence" falls out
//! of keying on the task id.

use std::fmt;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use events::task::{Reminder, TaskSnapshot, TaskStatus};

/// The stable part of a job's identity: which of the task's reminders it is, independent of when it fires.
///
/// Stored as text (`before_due:15`, `at`), so the unique key `(task_id, reminder, remind_at)` tells a moved
/// reminder (same key, new instant) from a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReminderKey {
    /// A reminder `minutes` before the task's due time: it moves when the due time does.
    BeforeDue {
        /// How long before the due time.
        minutes: u32,
    },
    /// A reminder at a fixed instant; several of them are told apart by their instant.
    At,
}

impl fmt::Display for ReminderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReminderKey::BeforeDue { minutes } => write!(f, "before_due:{minutes}"),
            ReminderKey::At => f.write_str("at"),
        }
    }
}

/// One job a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlannedJob {
    /// Which of the task's reminders this job is.
    pub key: ReminderKey,
    /// Microsecond precision, as Postgres stores it, so a planned job compares equal to its stored row.
    pub remind_at: DateTime<Utc>,
}

/// The jobs `task` asks for, ordered and without duplicates. A completed task asks for none; a `before_due`
/// reminder without a due time (which the backend refuses anyway) or out of the representable range is skipped.
///
/// Jobs whose instant has passed are planned like any other: the scheduler decides by the lateness policy
/// whether they still fire, so a reminder one minute before a due time thirty seconds away fires at once.
pub fn plan(task: &TaskSnapshot) -> Vec<PlannedJob> {
    if task.status == TaskStatus::Completed {
        return Vec::new();
    }
    let mut jobs: Vec<PlannedJob> =
        task.reminders.iter().filter_map(|reminder| job_for(*reminder, task.due_at)).collect();
    jobs.sort_unstable();
    jobs.dedup();
    jobs
}

fn job_for(reminder: Reminder, due_at: Option<DateTime<Utc>>) -> Option<PlannedJob> {
    let (key, remind_at) = match reminder {
        Reminder::BeforeDue { minutes } => {
            let offset = Duration::try_minutes(i64::from(minutes))?;
            (ReminderKey::BeforeDue { minutes }, due_at?.checked_sub_signed(offset)?)
        }
        Reminder::At { at } => (ReminderKey::At, at),
    };
    Some(PlannedJob { key, remind_at: remind_at.trunc_subsecs(6) })
}

#[cfg(test)]
mod tests {
    use events::fixtures::at;

    use super::*;

    fn task(due_at: Option<DateTime<Utc>>, reminders: Vec<Reminder>) -> TaskSnapshot {
        TaskSnapshot { due_at, reminders, ..events::fixtures::task() }
    }

    #[test]
    fn before_due_counts_back_from_the_due_time_and_at_is_absolute() {
        let due = at("2026-03-29T07:00:00Z");
        let jobs = plan(&task(
            Some(due),
            vec![Reminder::At { at: at("2026-03-28T20:00:00Z") }, Reminder::BeforeDue { minutes: 90 }],
        ));
        assert_eq!(
            jobs,
            vec![
                PlannedJob { key: ReminderKey::BeforeDue { minutes: 90 }, remind_at: at("2026-03-29T05:30:00Z") },
                PlannedJob { key: ReminderKey::At, remind_at: at("2026-03-28T20:00:00Z") },
            ]
        );
    }

    #[test]
    fn a_completed_task_asks_for_nothing() {
        let mut completed = task(Some(at("2026-03-29T07:00:00Z")), vec![Reminder::BeforeDue { minutes: 5 }]);
        completed.status = TaskStatus::Completed;
        assert!(plan(&completed).is_empty());
    }

    #[test]
    fn before_due_without_a_due_time_is_skipped() {
        let jobs = plan(&task(
            None,
            vec![Reminder::BeforeDue { minutes: 5 }, Reminder::At { at: at("2026-03-28T20:00:00Z") }],
        ));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].key, ReminderKey::At);
    }

    #[test]
    fn past_instants_are_planned_for_the_lateness_policy_to_judge() {
        let due = Utc::now() + Duration::seconds(30);
        let jobs = plan(&task(Some(due), vec![Reminder::BeforeDue { minutes: 1 }]));
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].remind_at < Utc::now());
    }

    #[test]
    fn instants_are_cut_to_microseconds_and_duplicates_collapse() {
        let at_nanos = at("2026-03-28T20:00:00.123456789Z");
        let jobs = plan(&task(None, vec![Reminder::At { at: at_nanos }, Reminder::At { at: at_nanos }]));
        assert_eq!(jobs, vec![PlannedJob { key: ReminderKey::At, remind_at: at("2026-03-28T20:00:00.123456Z") }]);
    }

    #[test]
    fn an_offset_before_the_start_of_time_is_skipped_not_a_panic() {
        let jobs = plan(&task(Some(DateTime::<Utc>::MIN_UTC), vec![Reminder::BeforeDue { minutes: 1 }]));
        assert!(jobs.is_empty());
    }

    #[test]
    fn keys_render_as_stored() {
        assert_eq!(ReminderKey::BeforeDue { minutes: 15 }.to_string(), "before_due:15");
        assert_eq!(ReminderKey::At.to_string(), "at");
    }
}
