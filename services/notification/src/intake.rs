//! One `reminder.due` event, end to end on the way in: decode, look up where the owner wants reminders, record
//! one delivery per channel. Transport-neutral, so the Kafka glue stays a thin mapping.
//!
//! Nothing is sent here: the deliveries are committed (unique per event and channel, so a redelivered event
//! adds nothing), the event's offset may then be committed, and the [worker](crate::worker) sends them.

use messaging::{Failure, Handler, HandlerFailure, IncomingMessage};
use std::collections::BTreeMap;
use std::sync::Arc;

use events::CloudEvent;
use events::reminder::{REMINDER_DUE_V1, ReminderDue};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::channel::Channel;
use crate::metrics::{self, IntakeOutcome};
use crate::settings::{NotificationSettings, SettingsClient};
use crate::store::{self, NewDelivery};

/// How an event was dealt with; every variant means "done, move on".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Not a `reminder.due.v1` event.
    IgnoredType,
    /// The owner has no channel configured: nothing to deliver.
    NoChannel,
    /// Deliveries recorded: `new` of `channels` were not recorded before.
    Recorded {
        /// Deliveries this call inserted; 0 when the event was seen before (a redelivery).
        new: u64,
        /// Channels the owner configured, one delivery each.
        channels: usize,
    },
}

/// Why an event is not done.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Try the same event again later (backend or database unavailable); it must not be committed meanwhile.
    #[error("transient: {0}")]
    Transient(String),
    /// The event can never be handled: dead-letter it with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl HandlerFailure for IntakeError {
    fn failure(&self) -> Failure {
        match self {
            Self::Transient(_) => Failure::Transient,
            Self::Permanent(_) => Failure::Permanent,
        }
    }
}

/// Turns reminder events into recorded deliveries and wakes the local worker.
#[derive(Debug, Clone)]
pub struct ReminderIntake {
    pool: PgPool,
    settings: SettingsClient,
    wake: Arc<Notify>,
}

impl ReminderIntake {
    /// `wake` is notified whenever new deliveries were recorded.
    pub fn new(pool: PgPool, settings: SettingsClient, wake: Arc<Notify>) -> Self {
        Self { pool, settings, wake }
    }

    /// The backend settings client, e.g. for tests to inspect its circuit breaker.
    pub fn settings(&self) -> &SettingsClient {
        &self.settings
    }

    /// Handles one envelope. Idempotent: deliveries are unique per (event id, channel).
    pub async fn handle(&self, event: CloudEvent<serde_json::Value>) -> Result<Intake, IntakeError> {
        if event.event_type != REMINDER_DUE_V1 {
            return Ok(Intake::IgnoredType);
        }
        let received = serde_json::to_value(&event).map_err(|error| IntakeError::Permanent(error.to_string()))?;
        let event = event.into_typed::<ReminderDue>().map_err(|error| IntakeError::Permanent(error.to_string()))?;
        let settings = self.settings.get(&event.data.owner_id).await.map_err(|error| {
            if error.is_transient() {
                IntakeError::Transient(error.to_string())
            } else {
                IntakeError::Permanent(error.to_string())
            }
        })?;
        let deliveries = plan(&event, &received, &settings, observability::trace_headers::current());
        if deliveries.is_empty() {
            metrics::reminder(IntakeOutcome::NoChannel);
            tracing::info!(event_id = %event.id, task_id = %event.data.task_id, "owner has no notification channel");
            return Ok(Intake::NoChannel);
        }
        let new =
            store::record(&self.pool, &deliveries).await.map_err(|error| IntakeError::Transient(error.to_string()))?;
        if new > 0 {
            metrics::reminder(IntakeOutcome::Scheduled);
            self.wake.notify_one();
        } else {
            metrics::reminder(IntakeOutcome::Duplicate);
        }
        tracing::info!(event_id = %event.id, task_id = %event.data.task_id, new, channels = deliveries.len(), "deliveries recorded");
        Ok(Intake::Recorded { new, channels: deliveries.len() })
    }
}

/// One delivery per channel the owner configured.
fn plan(
    event: &CloudEvent<ReminderDue>,
    received: &serde_json::Value,
    settings: &NotificationSettings,
    trace_headers: BTreeMap<String, String>,
) -> Vec<NewDelivery> {
    let targets = [(Channel::Email, settings.email.as_deref()), (Channel::Webhook, settings.webhook_url.as_deref())];
    targets
        .into_iter()
        .filter_map(|(channel, destination)| Some((channel, destination?.trim())))
        .filter(|(_, destination)| !destination.is_empty())
        .map(|(channel, destination)| NewDelivery {
            id: Uuid::now_v7(),
            event_id: event.id,
            channel,
            destination: destination.to_owned(),
            event: received.clone(),
            task_id: event.data.task_id,
            remind_at: event.data.remind_at,
            trace_headers: trace_headers.clone(),
        })
        .collect()
}

/// The Kafka side: an event is done once its deliveries are recorded.
impl Handler for ReminderIntake {
    type Error = IntakeError;

    async fn handle(&self, message: IncomingMessage) -> Result<(), IntakeError> {
        ReminderIntake::handle(self, message.event).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event() -> CloudEvent<ReminderDue> {
        let task_id = Uuid::now_v7();
        ReminderDue {
            job_id: Uuid::now_v7(),
            task_id,
            series_id: task_id,
            owner_id: "alice".into(),
            title: "Water the plants".into(),
            due_at: None,
            time_zone: "UTC".into(),
            remind_at: Utc::now(),
            fired_at: Utc::now(),
        }
        .into_cloud_event()
    }

    #[test]
    fn plans_one_delivery_per_configured_channel() {
        let event = event();
        let both = NotificationSettings {
            email: Some("alice@example.com".into()),
            webhook_url: Some("https://hooks.example.com/x".into()),
        };
        let planned = plan(&event, &serde_json::Value::Null, &both, BTreeMap::new());
        let channels: Vec<Channel> = planned.iter().map(|delivery| delivery.channel).collect();
        assert_eq!(channels, [Channel::Email, Channel::Webhook]);
        assert!(planned.iter().all(|delivery| delivery.event_id == event.id && delivery.task_id == event.data.task_id));

        let email_only =
            NotificationSettings { email: Some("alice@example.com".into()), webhook_url: Some(" ".into()) };
        assert_eq!(plan(&event, &serde_json::Value::Null, &email_only, BTreeMap::new()).len(), 1);
        let none = NotificationSettings { email: None, webhook_url: None };
        assert!(plan(&event, &serde_json::Value::Null, &none, BTreeMap::new()).is_empty());
    }
}
