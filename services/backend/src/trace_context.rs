//! The current W3C trace context as a header map, to travel with an event beside its payload.

use std::collections::{BTreeMap, HashMap};

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// `traceparent` (and `tracestate` when present) of the current span, via the globally installed propagator.
/// Empty when no propagator is installed or the span is not recorded by OpenTelemetry.
pub fn current_headers() -> BTreeMap<String, String> {
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.into_iter().collect()
}
