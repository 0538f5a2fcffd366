//! Dead letters: what goes to `notifications.dlq` when a delivery is given up on, and how it gets there
//! without loss.
//!
//! The message is the original `reminder.due.v1` CloudEvent, unchanged, keyed by the task id — the same shape
//! as the consumer's own dead letters (`messaging`), so one DLQ reader handles both. Headers say why:
//!
//! | Header | Value |
//! |---|---|
//! | `dead-letter-reason` | the last failure, e.g. `SMTP: Connection refused` |
//! | `dead-letter-original-topic` | `reminders` |
//! | `dead-letter-consumer-group` | `notification` |
//! | `notification-channel` | `email` or `webhook` |
//! | `notification-attempts` | attempts made, e.g. `5` |
//! | `notification-delivery-id` | the delivery's id in `notification.deliveries` |
//! | `traceparent` / `tracestate` | the trace of the reminder, so the dead letter joins it |
//!
//! Without loss: the worker first records that it gives the delivery up (`gave_up_at`, keeping its claim), then
//! publishes the letter and waits for the broker's acknowledgement, and only then marks the delivery `dead`. If
//! the broker is down, the delivery waits (still pending, never sent again) and a later claim publishes the
//! letter; a crash between acknowledgement and marking can publish one letter twice, never none.

use std::collections::BTreeMap;

use events::topics::{NOTIFICATIONS_DLQ, REMINDERS};
use messaging::headers::names;
use messaging::{MessageHeaders, OutgoingMessage, Producer, PublishError};

use crate::store::ClaimedDelivery;

/// The consumer group recorded in the header: the group that consumed the original event.
pub const CONSUMER_GROUP: &str = "notification";
/// The header naming the channel that gave up: `email` or `webhook`.
pub const CHANNEL_HEADER: &str = "notification-channel";
/// The header counting the send attempts made before giving up (decimal).
pub const ATTEMPTS_HEADER: &str = "notification-attempts";
/// The header carrying the delivery's id in `notification.deliveries`, to find its log entry.
pub const DELIVERY_ID_HEADER: &str = "notification-delivery-id";

/// One dead letter, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Always `notifications.dlq`.
    pub topic: &'static str,
    /// The task id, like the original event's key.
    pub key: String,
    /// The original CloudEvent.
    pub payload: serde_json::Value,
    /// The reminder's trace headers plus the reason, origin and delivery headers of the module's table.
    pub headers: BTreeMap<String, String>,
}

impl DeadLetter {
    /// The letter for `delivery` given up after `attempts` attempts; `reason` is the last failure's loggable message.
    pub fn new(delivery: &ClaimedDelivery, attempts: u32, reason: &str) -> Self {
        let mut headers = delivery.trace_headers.clone();
        headers.insert(names::DEAD_LETTER_REASON.to_owned(), reason.to_owned());
        headers.insert(names::DEAD_LETTER_TOPIC.to_owned(), REMINDERS.to_owned());
        headers.insert(names::DEAD_LETTER_GROUP.to_owned(), CONSUMER_GROUP.to_owned());
        headers.insert(CHANNEL_HEADER.to_owned(), delivery.channel.as_str().to_owned());
        headers.insert(ATTEMPTS_HEADER.to_owned(), attempts.to_string());
        headers.insert(DELIVERY_ID_HEADER.to_owned(), delivery.id.to_string());
        Self { topic: NOTIFICATIONS_DLQ, key: delivery.task_id.to_string(), payload: delivery.event.clone(), headers }
    }

    /// The Kafka message.
    pub fn to_message(&self) -> Result<OutgoingMessage, serde_json::Error> {
        let headers = self
            .headers
            .iter()
            .fold(MessageHeaders::new(), |headers, (name, value)| headers.with(name, value.as_str()));
        let payload = serde_json::to_vec(&self.payload)?;
        Ok(OutgoingMessage::new(self.topic, self.key.as_bytes(), payload).with_headers(headers))
    }
}

/// Why a dead letter was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum BuryError {
    /// The stored event could not be encoded as JSON; nothing was sent.
    #[error("the dead letter does not serialise: {0}")]
    Encode(#[from] serde_json::Error),
    /// The broker did not acknowledge the letter within `KAFKA_DELIVERY_TIMEOUT`; a later claim tries again.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Publishes dead letters and waits for the broker's acknowledgement.
#[derive(Clone)]
pub struct DeadLetters {
    producer: Producer,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// Publishes through `producer`, whose `KAFKA_DELIVERY_TIMEOUT` bounds each wait for an acknowledgement.
    pub fn new(producer: Producer) -> Self {
        Self { producer }
    }

    /// Sends `letter` to its topic and returns once the broker acknowledged it; only then may the delivery be
    /// marked `dead`.
    pub async fn publish(&self, letter: &DeadLetter) -> Result<(), BuryError> {
        self.producer.send(letter.to_message()?).await?;
        Ok(())
    }
}
