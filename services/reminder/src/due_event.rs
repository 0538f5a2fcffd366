//! The `reminder.due.v1` event a fired job becomes.

use events::CloudEvent;
use events::reminder::ReminderDue;

use crate::store::jobs::DueJob;

/// The event for `job`, fired at the instant it was claimed (the database's clock). Written once per job, in the
/// transaction that takes the job out of `pending`, so its envelope id is the job's delivery dedup key.
pub fn due_event(job: &DueJob) -> CloudEvent<ReminderDue> {
    ReminderDue {
        job_id: job.id,
        task_id: job.task_id,
        series_id: job.series_id,
        owner_id: job.owner_id.clone(),
        title: job.title.clone(),
        due_at: job.due_at,
        time_zone: job.time_zone.clone(),
        remind_at: job.remind_at,
        fired_at: job.claimed_at,
    }
    .into_cloud_event()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use sqlx::types::Json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn carries_the_job_and_task_and_names_the_task() {
        let now = Utc::now();
        let job = DueJob {
            id: Uuid::now_v7(),
            task_id: Uuid::now_v7(),
            series_id: Uuid::now_v7(),
            owner_id: "alice".into(),
            title: "Water the plants".into(),
            due_at: Some(now + TimeDelta::minutes(10)),
            time_zone: "Europe/Berlin".into(),
            remind_at: now,
            trace_context: Json(Default::default()),
            claimed_at: now + TimeDelta::seconds(1),
            overdue_counted: false,
        };
        let event = due_event(&job);
        assert_eq!(event.event_type, events::reminder::REMINDER_DUE_V1);
        assert_eq!(event.subject, job.task_id.to_string());
        assert_eq!(event.data.job_id, job.id);
        assert_eq!(event.data.series_id, job.series_id);
        assert_eq!(event.data.owner_id, "alice");
        assert_eq!(event.data.due_at, job.due_at);
        assert_eq!(event.data.remind_at, job.remind_at);
        assert_eq!(event.data.fired_at, job.claimed_at);
        assert_eq!(event.data.partition_key(), job.task_id.to_string());
    }
}
