//! The Kafka side: `reminders` in, through [`ReminderIntake`], with `messaging`'s at-least-once loop.
//!
//! An event's offset is stored only after its deliveries are committed; while the backend or the database is
//! down the event is retried in place with backoff, so nothing is committed past it and nothing is lost. An
//! event that can never be handled (unreadable payload, an owner id the backend rejects) goes to
//! `notifications.dlq` with the reason, in `messaging`'s dead-letter format.

use std::time::Duration;

use events::topics::{NOTIFICATIONS_DLQ, REMINDERS};
use messaging::{ConsumeError, HandlerError, IncomingMessage, KafkaConfig, Subscription, TopicSpec};
use observability::Shutdown;

use crate::intake::{IntakeError, ReminderIntake};

/// Creates `reminders` and `notifications.dlq` when missing, waiting (bounded) for the broker: in a fresh stack
/// it may still be starting.
pub async fn ensure_topics(config: &KafkaConfig, wait_at_most: Duration) -> Result<(), ConsumeError> {
    let topics = [TopicSpec::new(REMINDERS), TopicSpec::new(NOTIFICATIONS_DLQ)];
    messaging::ensure_topics_within(config, &topics, wait_at_most).await?;
    Ok(())
}

/// Consumes `reminders` until `shutdown` fires.
pub async fn run(config: &KafkaConfig, intake: ReminderIntake, shutdown: Shutdown) -> Result<(), ConsumeError> {
    let subscription = Subscription::new([REMINDERS], NOTIFICATIONS_DLQ).ok_or(ConsumeError::Subscription)?;
    messaging::run(
        config,
        subscription,
        move |message: IncomingMessage| {
            let intake = intake.clone();
            async move { handle(&intake, message).await }
        },
        shutdown,
    )
    .await?;
    Ok(())
}

async fn handle(intake: &ReminderIntake, message: IncomingMessage) -> Result<(), HandlerError> {
    match intake.handle(message.event).await {
        Ok(_) => Ok(()),
        Err(error @ IntakeError::Transient(_)) => Err(HandlerError::retry(error)),
        Err(error @ IntakeError::Permanent(_)) => Err(HandlerError::reject(error)),
    }
}
