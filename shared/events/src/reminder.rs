//! `reminder.due.v1`: a reminder job fell due, published by the reminder service to [`crate::topics::REMINDERS`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{CloudEvent, EventType};

/// The CloudEvents `source` of events written by the reminder service.
pub const SOURCE: &str = "/taskwatch/reminder";
/// The CloudEvents `type` of [`ReminderDue`].
pub const REMINDER_DUE_V1: &str = "reminder.due.v1";

/// One reminder of one task occurrence is due: what the notification service needs to deliver it without calling
/// back for the task (it still looks up where to deliver: the owner's notification settings).
///
/// The envelope id is the dedup key of the delivery; `job_id` names the reminder job, so a job fired again after a
/// crash between publish and acknowledgement carries the same `job_id` and the same envelope id (the outbox row is
/// written once per job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderDue {
    /// The reminder job: unique per (task, reminder, occurrence).
    pub job_id: Uuid,
    /// The task (one occurrence, for a recurring task) the reminder belongs to; also the envelope's subject
    /// and the Kafka key.
    pub task_id: Uuid,
    /// The task's series: shared by every occurrence of a recurring task, `task_id` for a one-off task.
    pub series_id: Uuid,
    /// The owner's user id (the JWT `sub`): whose notification settings apply.
    pub owner_id: String,
    /// The task's title, for the notification's text.
    pub title: String,
    /// The task's due time, when it has one (an absolute reminder may exist without it).
    pub due_at: Option<DateTime<Utc>>,
    /// IANA zone of the task, for rendering times to the recipient.
    pub time_zone: String,
    /// When the reminder was scheduled to fire: the start of the fire-delay and delivery-latency clocks.
    pub remind_at: DateTime<Utc>,
    /// When the scheduler claimed the job and wrote this event.
    pub fired_at: DateTime<Utc>,
}

impl EventType for ReminderDue {
    fn event_type(&self) -> &'static str {
        REMINDER_DUE_V1
    }
}

impl ReminderDue {
    /// Wraps the reminder in an envelope whose subject is the task id.
    pub fn into_cloud_event(self) -> CloudEvent<ReminderDue> {
        let subject = self.task_id.to_string();
        CloudEvent::new(SOURCE, subject, self)
    }

    /// The Kafka key: the task id, so one task's reminders stay in order.
    pub fn partition_key(&self) -> String {
        self.task_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reminder() -> ReminderDue {
        let now = Utc::now();
        let task_id = Uuid::now_v7();
        ReminderDue {
            job_id: Uuid::now_v7(),
            task_id,
            series_id: task_id,
            owner_id: "alice".into(),
            title: "Water the plants".into(),
            due_at: Some(now),
            time_zone: "Europe/Berlin".into(),
            remind_at: now,
            fired_at: now,
        }
    }

    #[test]
    fn envelope_names_the_type_and_task() {
        let event = reminder().into_cloud_event();
        assert_eq!(event.event_type, REMINDER_DUE_V1);
        assert_eq!(event.source, SOURCE);
        assert_eq!(event.subject, event.data.task_id.to_string());
        assert_eq!(event.data.partition_key(), event.data.task_id.to_string());
    }

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let event = reminder().into_cloud_event();
        let mut json = event.to_json().expect("serialises");
        json["data"]["channel_hint"] = serde_json::json!("email");
        let bytes = serde_json::to_vec(&json).expect("serialises");
        let decoded = CloudEvent::decode(&bytes).expect("envelope").into_typed::<ReminderDue>().expect("payload");
        assert_eq!(decoded, event);
    }
}
