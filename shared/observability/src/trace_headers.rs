//! The W3C trace context (`traceparent`, `tracestate`) as a header map, to travel beside a payload: in an outbox
//! row, a reminder job, a delivery. One home for what the backend, the outbox, reminder and notification each
//! need: the current span's context written down, and read back as a parent.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector};

/// The trace headers of `span`, through the globally installed propagator: its OpenTelemetry span's, or the
/// untraced request's it runs in (not sampled, so what continues it does not record it either;
/// [`crate::edge_sampling`]). Empty when no propagator is installed or the span has no trace context.
pub fn of_span(span: &tracing::Span) -> BTreeMap<String, String> {
    let context = crate::edge_sampling::context_of(span);
    let mut headers = BTreeMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderMapCarrier(&mut headers));
    });
    headers
}

/// A header map as the propagator's carrier, written into directly: every request that writes an event asks.
struct HeaderMapCarrier<'a>(&'a mut BTreeMap<String, String>);

impl Injector for HeaderMapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// The trace headers of the current span; see [`of_span`].
pub fn current() -> BTreeMap<String, String> {
    of_span(&tracing::Span::current())
}

/// The context `headers` carry, as a parent for a span; an empty context when they carry none.
pub fn extract(headers: &BTreeMap<String, String>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderMapReader(headers)))
}

/// A header map as the propagator's carrier to read from, in place of a `HashMap` copy of it.
pub(crate) struct HeaderMapReader<'a>(pub(crate) &'a BTreeMap<String, String>);

impl Extractor for HeaderMapReader<'_> {
    /// Asked by lower-cased name, as the `HashMap` carrier does: the propagators ask `traceparent`, `tracestate`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(&key.to_lowercase()).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn a_recorded_span_is_written_down_and_read_back() {
        crate::telemetry::install_propagator();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("work");
            let headers = of_span(&span);
            let traceparent = headers.get("traceparent").expect("a recorded span has a traceparent");
            let expected = span.context().span().span_context().trace_id().to_string();
            assert!(traceparent.contains(&expected), "{traceparent} lacks {expected}");
            assert_eq!(extract(&headers).span().span_context().trace_id().to_string(), expected);
        });
    }

    #[test]
    fn without_a_trace_there_is_nothing_to_write() {
        crate::telemetry::install_propagator();
        assert!(of_span(&tracing::Span::none()).is_empty());
        assert!(!extract(&BTreeMap::new()).span().span_context().is_valid());
    }
}
