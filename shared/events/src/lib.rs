//! The event contract shared by every Taskwatch service.
//!
//! Events are [CloudEvents 1.0](https://github.com/cloudevents/spec) in structured JSON mode. The envelope's `id`
//! (a UUIDv7) is the deduplication key every consumer relies on; the W3C trace context travels beside the payload
//! in Kafka message headers, never inside it.
//!
//! Compatibility rules: consumers ignore unknown fields, producers only add fields, and a breaking change gets a
//! new `type` (`task.created.v2`), so old and new consumers can run side by side.

pub mod envelope;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod reminder;
pub mod task;
pub mod topics;

pub use envelope::{CloudEvent, DecodeError, EventType};
