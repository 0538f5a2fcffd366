//! Kafka message headers, and the W3C trace context carried in them.

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{Header, OwnedHeaders};

/// Header names this crate writes.
pub mod names {
    /// W3C trace context (set by the global propagator).
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state: vendor-specific data travelling with `traceparent`.
    pub const TRACESTATE: &str = "tracestate";
    /// Why a message was dead-lettered.
    pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
    /// Where a dead-lettered message came from: topic, partition, offset, consumer group.
    pub const DEAD_LETTER_TOPIC: &str = "dead-letter-original-topic";
    /// The partition a dead-lettered message was read from, in decimal.
    pub const DEAD_LETTER_PARTITION: &str = "dead-letter-original-partition";
    /// A dead-lettered message's offset in that partition, in decimal.
    pub const DEAD_LETTER_OFFSET: &str = "dead-letter-original-offset";
    /// The consumer group that dead-lettered the message.
    pub const DEAD_LETTER_GROUP: &str = "dead-letter-consumer-group";
}

/// An ordered list of message headers; names may repeat (Kafka allows it), lookups take the last one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageHeaders {
    entries: Vec<(String, Vec<u8>)>,
}

impl MessageHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every header called `name` with one holding `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let name = name.into();
        self.entries.retain(|(existing, _)| *existing != name);
        self.entries.push((name, value.into()));
    }

    /// Builder form of [`MessageHeaders::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.set(name, value);
        self
    }

    /// The last value of `name`, as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().rev().find(|(existing, _)| existing == name).map(|(_, value)| value.as_slice())
    }

    /// The last value of `name` if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Every header in order, repeated names included, values as bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(name, value)| (name.as_str(), value.as_slice()))
    }

    /// Whether there are no headers at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the trace context of `context` (e.g. the current span's) into these headers.
    pub fn inject_context(&mut self, context: &opentelemetry::Context) {
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(context, self));
    }

    /// The trace context these headers carry; an empty context when they carry none.
    pub fn extract_context(&self) -> opentelemetry::Context {
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(self))
    }

    pub(crate) fn to_kafka(&self) -> OwnedHeaders {
        self.entries.iter().fold(OwnedHeaders::new_with_capacity(self.entries.len()), |headers, (name, value)| {
            headers.insert(Header { key: name, value: Some(value) })
        })
    }

    pub(crate) fn from_kafka(headers: Option<&impl rdkafka::message::Headers>) -> Self {
        let entries = headers
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        Self { entries }
    }
}

impl Injector for MessageHeaders {
    fn set(&mut self, key: &str, value: String) {
        MessageHeaders::set(self, key, value);
    }
}

impl Extractor for MessageHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(name, _)| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn set_replaces_and_get_reads_the_last_value() {
        let mut headers = MessageHeaders::new().with("a", "1").with("b", "2");
        headers.set("a", "3");
        assert_eq!(headers.get_str("a"), Some("3"));
        assert_eq!(headers.iter().count(), 2);
        assert_eq!(headers.get("missing"), None);
    }

    #[test]
    fn kafka_headers_round_trip() {
        let headers = MessageHeaders::new().with("x", vec![0, 159, 146]).with("y", "text");
        let kafka = headers.to_kafka();
        assert_eq!(MessageHeaders::from_kafka(Some(&kafka)), headers);
    }

    #[test]
    fn trace_context_round_trips_through_headers() {
        observability::telemetry::install_propagator();
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let context = opentelemetry::Context::new().with_remote_span_context(span.clone());
        let mut headers = MessageHeaders::new();
        headers.inject_context(&context);
        assert_eq!(
            headers.get_str(names::TRACEPARENT),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let extracted = headers.extract_context();
        assert_eq!(extracted.span().span_context().trace_id(), span.trace_id());
        assert_eq!(extracted.span().span_context().span_id(), span.span_id());
    }
}
