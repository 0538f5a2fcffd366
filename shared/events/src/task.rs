//! `task.*` events: every change to a task, published to [`crate::topics::TASK_EVENTS`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{CloudEvent, EventType};

/// The CloudEvents `source` of events written by the backend.
pub const SOURCE: &str = "/taskwatch/backend";

/// What happened to the task. Each kind is its own CloudEvents `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskChange {
    /// A new task, including the next occurrence of a recurring one.
    Created,
    /// The task's editable fields changed.
    Updated,
    /// The task was marked done; for a recurring task, this is what starts the next occurrence.
    Completed,
    /// A completed task was marked open again.
    Reopened,
    /// The task was deleted; the snapshot is the task as it was.
    Deleted,
}

impl TaskChange {
    /// Every change; [`TaskChange::from_event_type`] searches them, and metrics pre-register a series for each.
    pub const ALL: [TaskChange; 5] =
        [TaskChange::Created, TaskChange::Updated, TaskChange::Completed, TaskChange::Reopened, TaskChange::Deleted];

    /// The versioned CloudEvents `type` of this change, e.g. `task.completed.v1`.
    pub const fn event_type(self) -> &'static str {
        match self {
            TaskChange::Created => "task.created.v1",
            TaskChange::Updated => "task.updated.v1",
            TaskChange::Completed => "task.completed.v1",
            TaskChange::Reopened => "task.reopened.v1",
            TaskChange::Deleted => "task.deleted.v1",
        }
    }

    /// The change's name, as it is serialised: `created`, `updated`, `completed`, `reopened` or `deleted`.
    pub const fn name(self) -> &'static str {
        match self {
            TaskChange::Created => "created",
            TaskChange::Updated => "updated",
            TaskChange::Completed => "completed",
            TaskChange::Reopened => "reopened",
            TaskChange::Deleted => "deleted",
        }
    }

    /// The change a CloudEvents `type` names, if it is a task event this contract version knows.
    pub fn from_event_type(event_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|change| change.event_type() == event_type)
    }
}

/// The payload of every `task.*` event: the change and the task as it is after it (for `deleted`, as it was).
///
/// Carrying the whole task lets consumers act without calling back into the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// What happened; names the envelope's `type`.
    pub change: TaskChange,
    /// The task after the change (for a deletion, as it was before).
    pub task: TaskSnapshot,
}

impl EventType for TaskEvent {
    fn event_type(&self) -> &'static str {
        self.change.event_type()
    }
}

impl TaskEvent {
    /// Wraps the change in an envelope whose subject is the task id.
    pub fn into_cloud_event(self) -> CloudEvent<TaskEvent> {
        let subject = self.task.id.to_string();
        CloudEvent::new(SOURCE, subject, self)
    }

    /// The Kafka key: the owner's id, so all of one user's changes sit on one partition, in order. That keeps
    /// every occurrence of one recurring task in order (a series has one owner), and lets every reader of the
    /// topic see one user's changes in the same order, which the task stream's resume relies on.
    pub fn partition_key(&self) -> String {
        self.task.owner_id.clone()
    }
}

// The values of a task's closed fields: one vocabulary for the API, the events and the database.
pub use vocabulary::{Priority, RecurrenceAnchor, TaskStatus};

/// How a recurring task repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// An RFC 5545 RRULE (without DTSTART), e.g. `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub rrule: String,
    /// Whether the next occurrence follows the schedule of due dates or the completion instant.
    pub anchor: RecurrenceAnchor,
    /// The series' first due time (its DTSTART, seen in the task's zone): every occurrence is computed from it,
    /// and COUNT counts from it. Absent in events written before it existed; read it as this task's `due_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_start: Option<DateTime<Utc>>,
}

/// When to remind (the one vocabulary's reminder).
pub use vocabulary::Reminder;

/// A task's full state as the backend stored it, so consumers never need to call back for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// The task's id (one occurrence's, for a recurring task); the envelope's subject.
    pub id: Uuid,
    /// The owner's user id (the JWT `sub`).
    pub owner_id: String,
    /// Shared by every occurrence of a recurring task; equals `id` for a one-off task.
    pub series_id: Uuid,
    /// What the task is, in a line; what reminders show.
    pub title: String,
    /// Free-text details, if any.
    pub description: Option<String>,
    /// How urgent the task is.
    pub priority: Priority,
    /// The owner's tags, for filtering; distinct, possibly none.
    pub labels: Vec<String>,
    /// Open or completed.
    pub status: TaskStatus,
    /// When the task is due; `None` for a task without a deadline (a recurring task always has one).
    pub due_at: Option<DateTime<Utc>>,
    /// IANA zone the due time and recurrence are interpreted in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// How the task repeats; `None` for a one-off task.
    pub recurrence: Option<Recurrence>,
    /// When to remind the owner; empty for no reminders.
    pub reminders: Vec<Reminder>,
    /// When the task was completed: set exactly when `status` is completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: starts at 1 and grows by one with every change, so a consumer can
    /// tell an older snapshot from a newer one (a deletion carries the version of the last change).
    pub version: i64,
    /// When the task was created (for a later occurrence of a series, when the backend created it).
    pub created_at: DateTime<Utc>,
    /// When the task last changed; never moves backwards.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> TaskSnapshot {
        let now = Utc::now();
        TaskSnapshot {
            labels: vec!["home".into()],
            due_at: Some(now),
            recurrence: Some(Recurrence {
                rrule: "FREQ=DAILY".into(),
                anchor: RecurrenceAnchor::Due,
                series_start: Some(now),
            }),
            reminders: vec![Reminder::BeforeDue { minutes: 15 }],
            created_at: now,
            updated_at: now,
            ..crate::fixtures::task()
        }
    }

    #[test]
    fn envelope_type_follows_the_change() {
        let event = TaskEvent { change: TaskChange::Completed, task: snapshot() }.into_cloud_event();
        assert_eq!(event.event_type, "task.completed.v1");
        assert_eq!(event.subject, event.data.task.id.to_string());
        assert_eq!(event.id.get_version_num(), 7);
        let json = event.to_json().expect("serialises");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "task.completed.v1");
        assert_eq!(json["data"]["task"]["reminders"][0]["kind"], "before_due");
    }

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let event = TaskEvent { change: TaskChange::Created, task: snapshot() }.into_cloud_event();
        let mut json = event.to_json().expect("serialises");
        json["data"]["task"]["added_in_a_later_version"] = serde_json::json!(true);
        json["extension_attribute"] = serde_json::json!("x");
        let bytes = serde_json::to_vec(&json).expect("serialises");
        let decoded = CloudEvent::decode(&bytes).expect("envelope").into_typed::<TaskEvent>().expect("payload");
        assert_eq!(decoded, event);
    }

    #[test]
    fn every_change_maps_back_from_its_type() {
        for change in TaskChange::ALL {
            assert_eq!(TaskChange::from_event_type(change.event_type()), Some(change));
            assert_eq!(serde_json::to_value(change).unwrap(), change.name(), "the name is what serde writes");
        }
        assert_eq!(TaskChange::from_event_type("task.created.v2"), None);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(matches!(CloudEvent::decode(b"{not json"), Err(crate::DecodeError::Envelope(_))));
        let wrong_version = br#"{"specversion":"0.3","id":"0190b6c8-7f3a-7000-8000-000000000000","source":"s","type":"t","time":"2026-01-01T00:00:00Z","subject":"x","datacontenttype":"application/json","data":{}}"#;
        assert!(matches!(CloudEvent::decode(wrong_version), Err(crate::DecodeError::SpecVersion(_))));
    }
}
