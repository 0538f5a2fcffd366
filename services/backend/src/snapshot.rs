//! Translation between the domain task and the event contract's `TaskSnapshot` (the same vocabulary types on both
//! sides; the snapshot is read back through the domain's `StoredTask`, as a database row is).
//!
//! The snapshot is what the outbox publishes and what an idempotency record replays, so both directions live
//! here, next to each other, where a field added to one side is hard to forget on the other.

use events::task as contract;

use crate::domain::{InvalidStoredTask, StoredTask, Task};

/// The event contract's snapshot of `task`.
pub fn to_snapshot(task: &Task) -> contract::TaskSnapshot {
    contract::TaskSnapshot {
        id: task.id.as_uuid(),
        owner_id: task.owner.as_str().to_owned(),
        series_id: task.series_id,
        title: task.spec.title.as_str().to_owned(),
        description: task.spec.description.as_ref().map(|d| d.as_str().to_owned()),
        priority: task.spec.priority,
        labels: task.spec.labels.to_vec(),
        status: task.status(),
        due_at: task.spec.due_at,
        time_zone: task.spec.time_zone.name().to_owned(),
        recurrence: task.spec.recurrence.as_ref().map(|recurrence| contract::Recurrence {
            rrule: recurrence.rule().to_owned(),
            anchor: recurrence.anchor(),
            series_start: Some(recurrence.series_start()),
        }),
        reminders: task.spec.reminders.as_slice().to_vec(),
        completed_at: task.completion.completed_at(),
        version: task.version.get(),
        created_at: task.created_at,
        updated_at: task.updated_at,
    }
}

/// Rebuilds a task from a snapshot this service wrote earlier (an idempotency record's replay), re-validating
/// the editable fields.
pub fn from_snapshot(snapshot: contract::TaskSnapshot) -> Result<Task, InvalidStoredTask> {
    StoredTask {
        id: snapshot.id,
        owner_id: snapshot.owner_id,
        series_id: snapshot.series_id,
        title: snapshot.title,
        description: snapshot.description,
        priority: snapshot.priority,
        labels: snapshot.labels,
        status: snapshot.status,
        due_at: snapshot.due_at,
        time_zone: snapshot.time_zone,
        recurrence: snapshot.recurrence.map(|r| (r.rrule, r.anchor, r.series_start)),
        reminders: snapshot.reminders,
        completed_at: snapshot.completed_at,
        version: snapshot.version,
        created_at: snapshot.created_at,
        updated_at: snapshot.updated_at,
    }
    .into_task()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OwnerId, Priority, RecurrenceAnchor, RecurrenceInput, ReminderInput, TaskSpec, TaskSpecInput};
    use chrono::{SubsecRound, TimeZone, Utc};

    #[test]
    fn snapshot_round_trips_a_completed_recurring_task() {
        let due = Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).single().expect("valid date");
        let spec = TaskSpec::parse(&TaskSpecInput {
            title: "Report".into(),
            description: Some("monthly".into()),
            priority: Priority::High,
            labels: vec!["work".into()],
            due_at: Some(due),
            time_zone: "America/New_York".into(),
            recurrence: Some(RecurrenceInput {
                rule: "FREQ=MONTHLY".into(),
                anchor: RecurrenceAnchor::Completion,
                series_start: None,
            }),
            reminders: vec![ReminderInput::BeforeDue { minutes: 60 }, ReminderInput::At { at: due }],
        })
        .expect("valid");
        let now = Utc::now().trunc_subsecs(6);
        let owner = OwnerId::parse("bob").expect("valid owner");
        let task = Task::create(owner, spec, None, now).expect("created").complete(now).expect("completes");
        let back = from_snapshot(to_snapshot(&task)).expect("valid snapshot");
        assert_eq!(back, task);
    }
}
