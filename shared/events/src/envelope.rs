//! The CloudEvents 1.0 envelope.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only CloudEvents version this contract speaks.
pub const SPEC_VERSION: &str = "1.0";

/// A payload type names its own CloudEvents `type`, so an event can never be built with a mismatched one.
pub trait EventType {
    /// The versioned CloudEvents type, e.g. `task.created.v1`.
    fn event_type(&self) -> &'static str;
}

/// A CloudEvents 1.0 event in structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T> {
    /// The CloudEvents version: always [`SPEC_VERSION`] (decoding refuses any other).
    pub specversion: String,
    /// UUIDv7: unique per event, time-ordered, and the consumers' deduplication key.
    pub id: Uuid,
    /// URI reference naming the producer, e.g. `/taskwatch/backend`.
    pub source: String,
    /// The versioned CloudEvents `type`, e.g. `task.created.v1`: what `data` is, and what consumers dispatch on.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event was created; [`CloudEvent::new`] cuts it to microseconds, which a Postgres round trip keeps.
    pub time: DateTime<Utc>,
    /// The entity the event is about, e.g. the task id.
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The payload, whose shape `type` names.
    pub data: T,
}

impl<T: EventType> CloudEvent<T> {
    /// A new event with a fresh UUIDv7 id, stamped now.
    pub fn new(source: impl Into<String>, subject: impl Into<String>, data: T) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: source.into(),
            event_type: data.event_type().to_owned(),
            // Microseconds: what Postgres stores, so an event survives a database round trip unchanged.
            time: Utc::now().trunc_subsecs(6),
            subject: subject.into(),
            datacontenttype: "application/json".to_owned(),
            data,
        }
    }
}

impl<T: Serialize> CloudEvent<T> {
    /// The event as a JSON value, e.g. for an outbox row's payload.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// The event as JSON bytes, e.g. a Kafka message's value.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Why bytes off the wire are not an event this consumer understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON envelope: not JSON at all, or an attribute missing or of the wrong type.
    #[error("message is not a CloudEvents JSON envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The envelope's `specversion`, carried here, is not [`SPEC_VERSION`].
    #[error("unsupported CloudEvents specversion `{0}` (expected {SPEC_VERSION})")]
    SpecVersion(String),
    /// The envelope is sound but its `data` is not the payload type asked for.
    #[error("event {id} of type `{event_type}` has a payload this consumer cannot read: {source}")]
    Payload {
        /// The event's id.
        id: Uuid,
        /// The event's CloudEvents `type`.
        event_type: String,
        /// Why `data` did not deserialise.
        #[source]
        source: serde_json::Error,
    },
}

impl CloudEvent<serde_json::Value> {
    /// Decodes only the envelope, leaving `data` raw so a consumer can dispatch on `type` first.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let event: Self = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
        if event.specversion != SPEC_VERSION {
            return Err(DecodeError::SpecVersion(event.specversion));
        }
        Ok(event)
    }

    /// Reads the payload as `T`; unknown fields are ignored, so additive changes never break a consumer.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<CloudEvent<T>, DecodeError> {
        let data = serde_json::from_value(self.data).map_err(|source| DecodeError::Payload {
            id: self.id,
            event_type: self.event_type.clone(),
            source,
        })?;
        Ok(CloudEvent {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            time: self.time,
            subject: self.subject,
            datacontenttype: self.datacontenttype,
            data,
        })
    }
}
