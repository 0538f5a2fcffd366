//! The W3C trace context a job carries from the task event that planned it to the `reminder.due` event it
//! becomes, so one trace runs from the API request through this service to the notification.

use std::collections::BTreeMap;

use messaging::MessageHeaders;
use messaging::headers::names::{TRACEPARENT, TRACESTATE};
use opentelemetry::trace::TraceContextExt as _;

/// `traceparent` (and `tracestate`) as header name → value; empty when there is no trace to continue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext(BTreeMap<String, String>);

impl TraceContext {
    /// The context of the current span (the consumer span processing the task event, itself a child of the
    /// producer's), so the fired reminder continues the same trace through this service. Without an
    /// OpenTelemetry layer the current span has no context: the incoming message's own headers are kept instead.
    pub fn current_or(incoming: &MessageHeaders) -> Self {
        Self::of_span(&tracing::Span::current()).unwrap_or_else(|| Self::from_headers(incoming))
    }

    /// The context of `span` (e.g. the scheduler's span firing one job), `None` when it has none: no
    /// OpenTelemetry layer is installed, so there is no trace to continue beyond what was stored.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        if !observability::edge_sampling::context_of(span).span().span_context().is_valid() {
            return None;
        }
        let headers = observability::trace_headers::of_span(span);
        (!headers.is_empty()).then_some(Self(headers))
    }

    /// The context these headers carry, as a parent for a span; empty when they carry none.
    pub fn extract(&self) -> opentelemetry::Context {
        observability::trace_headers::extract(&self.0)
    }

    /// The trace headers among `headers`.
    pub fn from_headers(headers: &MessageHeaders) -> Self {
        let trace = [TRACEPARENT, TRACESTATE]
            .into_iter()
            .filter_map(|name| headers.get_str(name).map(|value| (name.to_owned(), value.to_owned())))
            .collect();
        Self(trace)
    }

    /// The context stored with a job (its `trace_context` column), taken as it is.
    pub fn from_map(headers: BTreeMap<String, String>) -> Self {
        Self(headers)
    }

    /// Header name → value, as stored with a job and copied onto its outbox row.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The `traceparent` header; `None` when there is no trace to continue.
    pub fn traceparent(&self) -> Option<&str> {
        self.0.get(TRACEPARENT).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn without_a_recorded_span_the_incoming_headers_are_kept() {
        let incoming = MessageHeaders::new().with(TRACEPARENT, TRACEPARENT_VALUE).with("unrelated", "x");
        let trace = TraceContext::current_or(&incoming);
        assert_eq!(trace.traceparent(), Some(TRACEPARENT_VALUE));
        assert_eq!(trace.headers().len(), 1);
    }

    #[test]
    fn stored_headers_give_back_the_parent_context() {
        observability::telemetry::install_propagator();
        let trace = TraceContext::from_headers(&MessageHeaders::new().with(TRACEPARENT, TRACEPARENT_VALUE));
        let parent = trace.extract();
        assert_eq!(parent.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.span().span_context().span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn no_headers_no_context() {
        assert_eq!(TraceContext::current_or(&MessageHeaders::new()), TraceContext::default());
    }
}
