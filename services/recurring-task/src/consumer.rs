//! The Kafka side: `task-events` in, through [`CompletionHandler`], with `messaging`'s at-least-once loop.
//!
//! The offset of an event is stored only after the handler finished it (the occurrence confirmed by the
//! backend, or nothing to do); while the backend is down the event is retried in place with backoff, so
//! nothing is committed past it and nothing is lost.

use std::time::Duration;

use events::topics::TASK_EVENTS;
use messaging::{ConsumeError, HandlerError, IncomingMessage, KafkaConfig, Subscription, TopicSpec};
use observability::Shutdown;

use crate::handler::{CompletionHandler, HandleError, Handled};

/// Where events this service can never handle go, with the reason.
pub const DEAD_LETTER_TOPIC: &str = "task-events.recurring-task.dlq";

/// Creates the topics when missing, waiting (bounded) for the broker: in a fresh stack it may still be
/// starting.
pub async fn ensure_topics(config: &KafkaConfig, wait_at_most: Duration) -> Result<(), ConsumeError> {
    let topics = [TopicSpec::new(TASK_EVENTS), TopicSpec::new(DEAD_LETTER_TOPIC)];
    messaging::ensure_topics_within(config, &topics, wait_at_most).await?;
    Ok(())
}

/// Consumes `task-events` until `shutdown` fires.
pub async fn run(config: &KafkaConfig, handler: CompletionHandler, shutdown: Shutdown) -> Result<(), ConsumeError> {
    let subscription = Subscription::new([TASK_EVENTS], DEAD_LETTER_TOPIC).ok_or(ConsumeError::Subscription)?;
    messaging::run(
        config,
        subscription,
        move |message: IncomingMessage| {
            let handler = handler.clone();
            async move { handle(&handler, message).await }
        },
        shutdown,
    )
    .await?;
    Ok(())
}

async fn handle(handler: &CompletionHandler, message: IncomingMessage) -> Result<(), HandlerError> {
    match handler.handle(message.event).await {
        Ok(Handled::Created(_) | Handled::DeletedSince | Handled::Skipped(_) | Handled::IgnoredType) => Ok(()),
        Err(error @ HandleError::Transient { .. }) => Err(HandlerError::retry(error)),
        Err(error @ HandleError::Permanent { .. }) => Err(HandlerError::reject(error)),
    }
}
