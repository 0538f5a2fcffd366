//! The Kafka side: `task-events` in, through [`TaskEventHandler`], with `messaging`'s at-least-once loop.
//!
//! An event's offset is stored only after its database transaction committed; while Postgres is down the event
//! is retried in place with backoff, so nothing is committed past it and nothing is lost.

use std::time::Duration;

use events::topics::{REMINDERS, TASK_EVENTS};
use messaging::{ConsumeError, HandlerError, IncomingMessage, KafkaConfig, Subscription, TopicSpec};
use observability::Shutdown;

use crate::handler::{HandleError, TaskEventHandler};
use crate::trace_context::TraceContext;

/// Where task events this service can never read go, with the reason.
pub const DEAD_LETTER_TOPIC: &str = "task-events.reminder.dlq";

/// Creates the topics this service reads and writes when missing, waiting (bounded) for the broker: in a fresh
/// stack it may still be starting.
pub async fn ensure_topics(config: &KafkaConfig, wait_at_most: Duration) -> Result<(), ConsumeError> {
    let topics = [TopicSpec::new(TASK_EVENTS), TopicSpec::new(DEAD_LETTER_TOPIC), TopicSpec::new(REMINDERS)];
    messaging::ensure_topics_within(config, &topics, wait_at_most).await?;
    Ok(())
}

/// Consumes `task-events` until `shutdown` fires.
pub async fn run(config: &KafkaConfig, handler: TaskEventHandler, shutdown: Shutdown) -> Result<(), ConsumeError> {
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

async fn handle(handler: &TaskEventHandler, message: IncomingMessage) -> Result<(), HandlerError> {
    // Taken inside the consumer span, so the jobs continue this trace.
    let trace = TraceContext::current_or(&message.headers);
    match handler.handle(message.event, &trace).await {
        Ok(_) => Ok(()),
        Err(error @ HandleError::Store(_)) => Err(HandlerError::retry(error)),
        Err(error @ HandleError::Invalid(_)) => Err(HandlerError::reject(error)),
    }
}
