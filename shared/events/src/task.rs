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
    Created,
    Updated,
    Completed,
    Reopened,
    Deleted,
}

impl TaskChange {
    pub const ALL: [TaskChange; 5] =
        [TaskChange::Created, TaskChange::Updated, TaskChange::Completed, TaskChange::Reopened, TaskChange::Deleted];

    pub const fn event_type(self) -> &'static str {
        match self {
            TaskChange::Created => "task.created.v1",
            TaskChange::Updated => "task.updated.v1",
            TaskChange::Completed => "task.completed.v1",
            TaskChange::Reopened => "task.reopened.v1",
            TaskChange::Deleted => "task.deleted.v1",
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
    pub change: TaskChange,
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

    /// The Kafka key: the series id, so every occurrence of one recurring task stays on one partition, in order.
    pub fn partition_key(&self) -> String {
        self.task.series_id.to_string()
    }
}

// The values of a task's closed fields: one vocabulary for the API, the events and the database.
pub use vocabulary::{Priority, RecurrenceAnchor, TaskStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// An RFC 5545 RRULE (without DTSTART), e.g. `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub rrule: String,
    pub anchor: RecurrenceAnchor,
    /// The series' first due time (its DTSTART, seen in the task's zone): every occurrence is computed from it,
    /// and COUNT counts from it. Absent in events written before it existed; read it as this task's `due_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_start: Option<DateTime<Utc>>,
}

/// When to remind (the one vocabulary's reminder).
pub use vocabulary::Reminder;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    pub id: Uuid,
    /// The owner's user id (the JWT `sub`).
    pub owner_id: String,
    /// Shared by every occurrence of a recurring task; equals `id` for a one-off task.
    pub series_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub labels: Vec<String>,
    pub status: TaskStatus,
    pub due_at: Option<DateTime<Utc>>,
    /// IANA zone the due time and recurrence are interpreted in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub recurrence: Option<Recurrence>,
    pub reminders: Vec<Reminder>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
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
