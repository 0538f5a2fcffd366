//! The service's core, free of Kafka and HTTP: what to do about one task event.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use events::task::{TaskChange, TaskEvent, TaskSnapshot};
use recurrence::{CompletedOccurrence, NextOccurrence, Recurrence, Rule, RuleError};
use uuid::Uuid;

use crate::metrics::FailureReason;

/// What one task event asks of this service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Skip(SkipReason),
    /// Ask the backend for the next occurrence.
    Create(OccurrenceRequest),
}

/// Why an event needs no occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Only `task.completed` starts a next occurrence.
    NotACompletion,
    /// The completed task has no recurrence rule: a one-off task.
    NotRecurring,
    /// `COUNT` used up, `UNTIL` passed, or the rule has no further date.
    SeriesEnded,
}

impl SkipReason {
    /// The reason's stable snake_case name, as logged.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotACompletion => "not_a_completion",
            SkipReason::NotRecurring => "not_recurring",
            SkipReason::SeriesEnded => "series_ended",
        }
    }
}

/// The next occurrence of a series, as the backend's internal API creates it: this service decides whether and
/// when a series continues; the backend, which owns the series, checks that `due_at` is that next occurrence with
/// the same `recurrence` call and derives the rule the new task carries (its `COUNT` step) itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceRequest {
    /// The series to continue.
    pub series_id: Uuid,
    /// The completed task the new one follows.
    pub previous_task_id: Uuid,
    /// When the new occurrence is due.
    pub due_at: DateTime<Utc>,
    /// Sent as `Idempotency-Key`: the completion event's id, so however often the event is delivered, the
    /// backend creates the occurrence once.
    pub idempotency_key: Uuid,
}

/// A completion event whose task cannot be continued: retrying cannot help, so the event is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The task's `time_zone` is not an IANA zone this build knows.
    #[error("task {task_id} names unknown time zone `{zone}`")]
    UnknownTimeZone {
        /// The task that names it.
        task_id: Uuid,
        /// The zone name as the event carried it.
        zone: String,
    },
    /// A recurring task without a due time: there is no occurrence to count the next one from.
    #[error("recurring task {task_id} has no due time")]
    MissingDueTime {
        /// The completed task.
        task_id: Uuid,
    },
    /// A `task.completed` event whose task has no `completed_at`: the snapshot contradicts itself.
    #[error("completed task {task_id} has no completion time")]
    MissingCompletionTime {
        /// The completed task.
        task_id: Uuid,
    },
    /// The task's RRULE does not parse, is outside the supported subset, or cannot be expanded from its
    /// series start.
    #[error("task {task_id} has an unusable rule `{rule}`: {source}")]
    InvalidRule {
        /// The task carrying the rule.
        task_id: Uuid,
        /// The rule text as the event carried it.
        rule: String,
        /// What is wrong with the rule.
        #[source]
        source: RuleError,
    },
}

impl DecisionError {
    /// The failure metric's reason.
    pub const fn reason(&self) -> FailureReason {
        match self {
            DecisionError::InvalidRule { .. } => FailureReason::InvalidRule,
            DecisionError::UnknownTimeZone { .. }
            | DecisionError::MissingDueTime { .. }
            | DecisionError::MissingCompletionTime { .. } => FailureReason::InvalidTask,
        }
    }
}

/// Decides what the event `event_id` carrying `event` asks for.
pub fn decide(event_id: Uuid, event: &TaskEvent) -> Result<Decision, DecisionError> {
    if event.change != TaskChange::Completed {
        return Ok(Decision::Skip(SkipReason::NotACompletion));
    }
    let task = &event.task;
    let Some(wire) = &task.recurrence else {
        return Ok(Decision::Skip(SkipReason::NotRecurring));
    };
    let invalid_rule = |source| DecisionError::InvalidRule { task_id: task.id, rule: wire.rrule.clone(), source };
    let rule = Rule::parse(&wire.rrule).map_err(invalid_rule)?;
    let recurrence = Recurrence::new(rule, wire.anchor);
    let completed = completed_occurrence(task)?;
    match recurrence.next_occurrence(&completed).map_err(invalid_rule)? {
        NextOccurrence::SeriesEnded => Ok(Decision::Skip(SkipReason::SeriesEnded)),
        NextOccurrence::Scheduled { due_at, .. } => Ok(Decision::Create(OccurrenceRequest {
            series_id: task.series_id,
            previous_task_id: task.id,
            due_at,
            idempotency_key: event_id,
        })),
    }
}

fn completed_occurrence(task: &TaskSnapshot) -> Result<CompletedOccurrence, DecisionError> {
    let time_zone: Tz = task
        .time_zone
        .parse()
        .map_err(|_| DecisionError::UnknownTimeZone { task_id: task.id, zone: task.time_zone.clone() })?;
    let due_at = task.due_at.ok_or(DecisionError::MissingDueTime { task_id: task.id })?;
    let completed_at = task.completed_at.ok_or(DecisionError::MissingCompletionTime { task_id: task.id })?;
    // Events written before series had a start: each occurrence was then the start of the rest of its series.
    let series_start = task.recurrence.as_ref().and_then(|recurrence| recurrence.series_start).unwrap_or(due_at);
    Ok(CompletedOccurrence { due_at, completed_at, time_zone, series_start })
}

#[cfg(test)]
mod tests {
    use events::fixtures::at;
    use events::task::{Recurrence as WireRecurrence, RecurrenceAnchor, TaskStatus};

    use super::*;

    /// A daily 09:00 Berlin task due the day before spring-forward, completed an hour late: the second
    /// occurrence of a series that started the day before.
    fn completed_task(rrule: Option<&str>) -> TaskEvent {
        TaskEvent {
            change: TaskChange::Completed,
            task: TaskSnapshot {
                series_id: Uuid::now_v7(),
                status: TaskStatus::Completed,
                due_at: Some(at("2026-03-28T08:00:00Z")),
                time_zone: "Europe/Berlin".into(),
                recurrence: rrule.map(|rrule| WireRecurrence {
                    rrule: rrule.into(),
                    anchor: RecurrenceAnchor::Due,
                    series_start: Some(at("2026-03-27T08:00:00Z")),
                }),
                completed_at: Some(at("2026-03-28T09:00:00Z")),
                version: 2,
                created_at: at("2026-03-20T10:00:00Z"),
                updated_at: at("2026-03-28T09:00:00Z"),
                ..events::fixtures::task()
            },
        }
    }

    #[test]
    fn a_completed_recurring_task_asks_for_its_next_occurrence() {
        let event = completed_task(Some("FREQ=DAILY;COUNT=3"));
        let event_id = Uuid::now_v7();
        let decision = decide(event_id, &event).expect("decides");
        assert_eq!(
            decision,
            Decision::Create(OccurrenceRequest {
                series_id: event.task.series_id,
                previous_task_id: event.task.id,
                // 09:00 Berlin after the clocks went forward: the third of three.
                due_at: at("2026-03-29T07:00:00Z"),
                idempotency_key: event_id,
            })
        );
    }

    #[test]
    fn an_event_from_before_series_starts_counts_from_its_own_due_time() {
        let mut event = completed_task(Some("FREQ=DAILY;COUNT=2"));
        if let Some(recurrence) = &mut event.task.recurrence {
            recurrence.series_start = None;
        }
        // Counted from 03-27, COUNT=2 would have ended with 03-28; counted from this task's own due time (03-28),
        // 03-29 is the second and last.
        let Ok(Decision::Create(request)) = decide(Uuid::now_v7(), &event) else { panic!("expected a create") };
        assert_eq!(request.due_at, at("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn completion_anchor_counts_from_the_completion() {
        let mut event = completed_task(Some("FREQ=DAILY;INTERVAL=2"));
        if let Some(recurrence) = &mut event.task.recurrence {
            recurrence.anchor = RecurrenceAnchor::Completion;
        }
        let Ok(Decision::Create(request)) = decide(Uuid::now_v7(), &event) else { panic!("expected a create") };
        assert_eq!(request.due_at, at("2026-03-30T08:00:00Z"));
    }

    #[test]
    fn skips_what_needs_no_occurrence() {
        let mut created = completed_task(Some("FREQ=DAILY"));
        created.change = TaskChange::Created;
        let cases = [
            (created, SkipReason::NotACompletion),
            (completed_task(None), SkipReason::NotRecurring),
            (completed_task(Some("FREQ=DAILY;COUNT=2")), SkipReason::SeriesEnded),
            (completed_task(Some("FREQ=DAILY;UNTIL=20260328T235959Z")), SkipReason::SeriesEnded),
        ];
        for (event, reason) in cases {
            assert_eq!(decide(Uuid::now_v7(), &event), Ok(Decision::Skip(reason)), "{reason:?}");
        }
    }

    #[test]
    fn tasks_that_cannot_be_continued_are_errors_with_bounded_reasons() {
        let mut no_zone = completed_task(Some("FREQ=DAILY"));
        no_zone.task.time_zone = "Mars/Olympus_Mons".into();
        let mut no_due = completed_task(Some("FREQ=DAILY"));
        no_due.task.due_at = None;
        let mut no_completion = completed_task(Some("FREQ=DAILY"));
        no_completion.task.completed_at = None;
        let cases = [
            (completed_task(Some("FREQ=HOURLY")), "invalid_rule"),
            (completed_task(Some("FREQ=WEEKLY;BYDAY=XX")), "invalid_rule"),
            (no_zone, "invalid_task"),
            (no_due, "invalid_task"),
            (no_completion, "invalid_task"),
        ];
        for (event, reason) in cases {
            let error = decide(Uuid::now_v7(), &event).expect_err(reason);
            assert_eq!(error.reason().as_str(), reason, "{error}");
        }
    }
}
