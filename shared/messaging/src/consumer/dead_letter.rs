//! The message sent to a dead-letter topic: the original key, payload and headers, plus where it
//! came from and why it was given up on.

use rdkafka::Message as _;
use rdkafka::message::OwnedMessage;

use crate::headers::{MessageHeaders, names};
use crate::producer::OutgoingMessage;

/// Builds the dead-letter copy of `original` for `dead_letter_topic`. The key is kept so a DLQ
/// consumer sees one task's failures in order; the original trace context is kept so the producer
/// span of the copy joins the original trace.
pub(crate) fn dead_letter_message(
    original: &OwnedMessage,
    dead_letter_topic: &str,
    group_id: &str,
    reason: &str,
) -> OutgoingMessage {
    let headers = MessageHeaders::from_kafka(original.headers())
        .with(names::DEAD_LETTER_REASON, reason)
        .with(names::DEAD_LETTER_TOPIC, original.topic())
        .with(names::DEAD_LETTER_PARTITION, original.partition().to_string())
        .with(names::DEAD_LETTER_OFFSET, original.offset().to_string())
        .with(names::DEAD_LETTER_GROUP, group_id);
    OutgoingMessage {
        topic: dead_letter_topic.to_owned(),
        key: original.key().map(<[u8]>::to_vec),
        payload: original.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}
