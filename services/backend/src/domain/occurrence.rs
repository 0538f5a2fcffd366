//! The next occurrence of a recurring series: a new open task that repeats the previous one at a later due time.

use chrono::{DateTime, SubsecRound, Utc};

use super::reminders::ReminderInput;
use super::task::{RecurrenceInput, Task, TaskSpec};
use super::violations::Violations;

/// Builds the occurrence of `previous`'s series due at `due_at`: same owner, series, text, priority, labels, time
/// zone, recurrence and relative reminders. Absolute (`at`) reminders name an instant of one occurrence, so they
/// are not carried over. `due_at` must be strictly after the previous occurrence: a series only moves forward.
/// The series the new task carries on (its rule and start) is what the shared `recurrence` crate says it is for
/// the previous occurrence's anchor, the same computation `recurring-task` found `due_at` with.
pub fn next_occurrence(previous: &Task, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Task, Violations> {
    let (Some(recurrence), Some(previous_due)) = (&previous.spec.recurrence, previous.spec.due_at) else {
        return Err(Violations::single("previous_task_id", "is not a recurring task"));
    };
    // Postgres keeps microseconds; comparing at that precision matches what is stored.
    let due_at = due_at.trunc_subsecs(6);
    if due_at <= previous_due {
        return Err(Violations::single("due_at", "must be after the previous occurrence's due_at"));
    }
    let continued = recurrence
        .as_shared()
        .continued_at(recurrence.series_start(), previous.spec.time_zone, previous_due, due_at)
        .map_err(|error| Violations::single("previous_task_id", format!("its rule cannot be continued: {error}")))?;
    let Some(continued) = continued else {
        return Err(Violations::single("previous_task_id", "its series has ended (COUNT reached)"));
    };
    let mut input = previous.spec.to_input();
    input.due_at = Some(due_at);
    input.recurrence = Some(RecurrenceInput {
        rule: continued.rule.into_string(),
        anchor: recurrence.anchor(),
        series_start: Some(continued.series_start),
    });
    input.reminders.retain(|reminder| matches!(reminder, ReminderInput::BeforeDue { .. }));
    let spec = TaskSpec::parse(&input)?;
    Task::create(previous.owner.clone(), spec, Some(previous.series_id), now)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::recurrence::RecurrenceAnchor;
    use crate::domain::task::{OwnerId, Priority, RecurrenceInput, TaskSpecInput, TaskStatus};

    fn due() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).single().expect("valid date")
    }

    fn recurring(recurrence: Option<RecurrenceInput>) -> Task {
        let spec = TaskSpec::parse(&TaskSpecInput {
            title: "Standup".into(),
            description: Some("daily".into()),
            priority: Priority::High,
            labels: vec!["work".into()],
            due_at: Some(due()),
            time_zone: "Europe/Berlin".into(),
            recurrence,
            reminders: vec![ReminderInput::BeforeDue { minutes: 5 }, ReminderInput::At { at: due() }],
        })
        .expect("valid spec");
        Task::create(OwnerId::parse("alice").expect("owner"), spec, None, due()).expect("task")
    }

    fn daily() -> Option<RecurrenceInput> {
        Some(RecurrenceInput { rule: "FREQ=DAILY".into(), anchor: RecurrenceAnchor::Due, series_start: None })
    }

    #[test]
    fn repeats_the_previous_task_in_its_series_at_the_new_time() {
        let previous = recurring(daily()).complete(due()).expect("completes");
        let next_due = due() + Duration::hours(23);
        let next = next_occurrence(&previous, next_due, due()).expect("next");
        assert_ne!(next.id, previous.id);
        assert_eq!(next.series_id, previous.series_id);
        assert_eq!(next.owner, previous.owner);
        assert_eq!(next.status(), TaskStatus::Open);
        assert_eq!(next.spec.due_at, Some(next_due));
        assert_eq!(next.spec.title, previous.spec.title);
        assert_eq!(next.spec.recurrence, previous.spec.recurrence);
        assert_eq!(next.spec.time_zone, previous.spec.time_zone);
        assert_eq!(next.spec.reminders.as_slice(), &[crate::domain::Reminder::BeforeDue { minutes: 5 }]);
    }

    #[test]
    fn a_due_anchored_series_keeps_its_start_and_rule() {
        let counted = Some(RecurrenceInput {
            rule: "FREQ=DAILY;COUNT=2".into(),
            anchor: RecurrenceAnchor::Due,
            series_start: None,
        });
        let first = recurring(counted).complete(due()).expect("completes");
        let second = next_occurrence(&first, due() + Duration::days(1), due()).expect("one occurrence left");
        let recurrence = second.spec.recurrence.as_ref().expect("recurring");
        assert_eq!(recurrence.rule(), "FREQ=DAILY;COUNT=2", "COUNT counts the whole series");
        assert_eq!(recurrence.series_start(), due());
    }

    #[test]
    fn a_completion_anchored_series_starts_its_rest_at_the_next_occurrence() {
        let counted = |rule: &str| {
            Some(RecurrenceInput { rule: rule.into(), anchor: RecurrenceAnchor::Completion, series_start: None })
        };
        let previous = recurring(counted("FREQ=DAILY;COUNT=2")).complete(due()).expect("completes");
        let next_due = due() + Duration::days(1);
        let next = next_occurrence(&previous, next_due, due()).expect("one occurrence left");
        let recurrence = next.spec.recurrence.as_ref().expect("recurring");
        assert_eq!(recurrence.rule(), "FREQ=DAILY;COUNT=1");
        assert_eq!(recurrence.series_start(), next_due);
        let last = recurring(counted("FREQ=DAILY;COUNT=1")).complete(due()).expect("completes");
        assert!(next_occurrence(&last, due() + Duration::days(1), due()).is_err(), "COUNT=1 is the last occurrence");
    }

    #[test]
    fn refuses_one_off_tasks_and_times_that_do_not_move_forward() {
        let one_off = recurring(None);
        assert!(
            next_occurrence(&one_off, due() + Duration::days(1), due())
                .expect_err("one-off")
                .mentions("previous_task_id")
        );
        let previous = recurring(daily());
        assert!(next_occurrence(&previous, due(), due()).expect_err("same time").mentions("due_at"));
        assert!(next_occurrence(&previous, due() - Duration::days(1), due()).expect_err("earlier").mentions("due_at"));
    }
}
