//! Translation between the domain task and the event contract's `TaskSnapshot`.
//!
//! The snapshot is what the outbox publishes and what an idempotency record replays, so both directions live
//! here, next to each other, where a field added to one side is hard to forget on the other.

use events::task as contract;

use crate::domain::{
    Completion, OwnerId, Priority, Recurrence, RecurrenceAnchor, Reminder, Reminders, Task, TaskId, TaskSpec,
    TaskStatus, Version, text,
};

pub fn to_snapshot(task: &Task) -> contract::TaskSnapshot {
    contract::TaskSnapshot {
        id: task.id.as_uuid(),
        owner_id: task.owner.as_str().to_owned(),
        series_id: task.series_id,
        title: task.spec.title.as_str().to_owned(),
        description: task.spec.description.as_ref().map(|d| d.as_str().to_owned()),
        priority: priority_to_contract(task.spec.priority),
        labels: task.spec.labels.to_vec(),
        status: status_to_contract(task.status()),
        due_at: task.spec.due_at,
        time_zone: task.spec.time_zone.name().to_owned(),
        recurrence: task.spec.recurrence.as_ref().map(|recurrence| contract::Recurrence {
            rrule: recurrence.rule().to_owned(),
            anchor: anchor_to_contract(recurrence.anchor()),
            series_start: Some(recurrence.series_start()),
        }),
        reminders: reminders_to_contract(task.spec.reminders.as_slice()),
        completed_at: task.completion.completed_at(),
        version: task.version.get(),
        created_at: task.created_at,
        updated_at: task.updated_at,
    }
}

/// A snapshot that does not describe a valid task; only possible if stored data was altered by hand.
#[derive(Debug, thiserror::Error)]
#[error("stored task snapshot is not a valid task: {0}")]
pub struct InvalidSnapshot(String);

/// Rebuilds a task from a snapshot this service wrote earlier, re-validating the editable fields.
pub fn from_snapshot(snapshot: contract::TaskSnapshot) -> Result<Task, InvalidSnapshot> {
    let owner = OwnerId::parse(&snapshot.owner_id).map_err(|v| InvalidSnapshot(v.to_string()))?;
    let title = text::Title::parse(&snapshot.title).map_err(|v| InvalidSnapshot(v.to_string()))?;
    let description = match &snapshot.description {
        Some(raw) => text::Description::parse(raw).map_err(|v| InvalidSnapshot(v.to_string()))?,
        None => None,
    };
    let labels = text::Labels::parse(&snapshot.labels).map_err(|v| InvalidSnapshot(v.to_string()))?;
    let time_zone =
        crate::domain::task::parse_time_zone(&snapshot.time_zone).map_err(|v| InvalidSnapshot(v.to_string()))?;
    let completion = match (snapshot.status, snapshot.completed_at) {
        (contract::TaskStatus::Open, _) => Completion::Open,
        (contract::TaskStatus::Completed, Some(at)) => Completion::Completed { at },
        (contract::TaskStatus::Completed, None) => {
            return Err(InvalidSnapshot("completed task without completed_at".to_owned()));
        }
    };
    let recurrence = match snapshot.recurrence {
        // Written before series had a start: each occurrence was then the start of the rest of its series.
        Some(r) => match r.series_start.or(snapshot.due_at) {
            Some(start) => Some(Recurrence::from_trusted(r.rrule, anchor_from_contract(r.anchor), start)),
            None => return Err(InvalidSnapshot("recurring task without due_at".to_owned())),
        },
        None => None,
    };
    Ok(Task {
        id: TaskId::from_uuid(snapshot.id),
        owner,
        series_id: snapshot.series_id,
        spec: TaskSpec {
            title,
            description,
            priority: priority_from_contract(snapshot.priority),
            labels,
            due_at: snapshot.due_at,
            time_zone,
            recurrence,
            reminders: reminders_from_contract(&snapshot.reminders),
        },
        completion,
        version: Version::new(snapshot.version),
        created_at: snapshot.created_at,
        updated_at: snapshot.updated_at,
    })
}

pub fn reminders_to_contract(reminders: &[Reminder]) -> Vec<contract::Reminder> {
    reminders
        .iter()
        .map(|reminder| match *reminder {
            Reminder::BeforeDue { minutes } => contract::Reminder::BeforeDue { minutes },
            Reminder::At { at } => contract::Reminder::At { at },
        })
        .collect()
}

pub fn reminders_from_contract(reminders: &[contract::Reminder]) -> Reminders {
    Reminders::from_trusted(
        reminders
            .iter()
            .map(|reminder| match *reminder {
                contract::Reminder::BeforeDue { minutes } => Reminder::BeforeDue { minutes },
                contract::Reminder::At { at } => Reminder::At { at },
            })
            .collect(),
    )
}

pub(crate) fn priority_to_contract(priority: Priority) -> contract::Priority {
    match priority {
        Priority::Low => contract::Priority::Low,
        Priority::Medium => contract::Priority::Medium,
        Priority::High => contract::Priority::High,
        Priority::Urgent => contract::Priority::Urgent,
    }
}

pub(crate) fn status_to_contract(status: TaskStatus) -> contract::TaskStatus {
    match status {
        TaskStatus::Open => contract::TaskStatus::Open,
        TaskStatus::Completed => contract::TaskStatus::Completed,
    }
}

fn priority_from_contract(priority: contract::Priority) -> Priority {
    match priority {
        contract::Priority::Low => Priority::Low,
        contract::Priority::Medium => Priority::Medium,
        contract::Priority::High => Priority::High,
        contract::Priority::Urgent => Priority::Urgent,
    }
}

pub(crate) fn anchor_to_contract(anchor: RecurrenceAnchor) -> contract::RecurrenceAnchor {
    match anchor {
        RecurrenceAnchor::Due => contract::RecurrenceAnchor::Due,
        RecurrenceAnchor::Completion => contract::RecurrenceAnchor::Completion,
    }
}

fn anchor_from_contract(anchor: contract::RecurrenceAnchor) -> RecurrenceAnchor {
    match anchor {
        contract::RecurrenceAnchor::Due => RecurrenceAnchor::Due,
        contract::RecurrenceAnchor::Completion => RecurrenceAnchor::Completion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RecurrenceInput, ReminderInput, TaskSpecInput};
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
