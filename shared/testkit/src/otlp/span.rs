//! Flattening OTLP's nested export requests into one plain record per span.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// The resource attribute that names the emitting service.
const SERVICE_NAME: &str = "service.name";

/// One span as an in-test receiver saw it, with ids in the lowercase hex that log lines and
/// `traceparent` headers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id_hex: String,
    /// 16 hex digits.
    pub span_id_hex: String,
    /// 16 hex digits; `None` for a root span.
    pub parent_span_id_hex: Option<String>,
    /// The span's name as exported (a `tracing` span's `otel.name` when it sets one).
    pub name: String,
    /// The resource's `service.name`; `None` if the exporter sent none.
    pub service_name: Option<String>,
    /// The span's own attributes, values rendered as text (numbers and booleans as Rust prints them,
    /// arrays as `[a, b]`, bytes as hex).
    pub attributes: BTreeMap<String, String>,
    /// The span's events in order (an OpenTelemetry exception is an event named `exception`).
    pub events: Vec<ReceivedEvent>,
    /// The spans this one links to (another trace's span that caused it, for instance), in order.
    pub links: Vec<ReceivedLink>,
}

/// One link of a span: the linked span's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLink {
    /// 32 hex digits.
    pub trace_id_hex: String,
    /// 16 hex digits.
    pub span_id_hex: String,
}

/// One event of a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// The event's name.
    pub name: String,
    /// Its attributes, rendered as [`ReceivedSpan::attributes`] are.
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute's rendered value, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The span's exception events (OpenTelemetry semantic conventions: `exception.type`, `exception.message`, …).
    pub fn exceptions(&self) -> Vec<&ReceivedEvent> {
        self.events.iter().filter(|event| event.name == "exception").collect()
    }
}

/// Every span in `request`, each carrying its resource's service name.
pub(crate) fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans.resource.and_then(|resource| {
            resource
                .attributes
                .into_iter()
                .find(|attribute| attribute.key == SERVICE_NAME)
                .and_then(|attribute| attribute.value.map(|value| render(&value)))
        });
        for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
            spans.push(ReceivedSpan {
                trace_id_hex: hex::encode(&span.trace_id),
                span_id_hex: hex::encode(&span.span_id),
                parent_span_id_hex: (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id)),
                name: span.name,
                service_name: service_name.clone(),
                attributes: attributes(&span.attributes),
                events: span
                    .events
                    .iter()
                    .map(|event| ReceivedEvent { name: event.name.clone(), attributes: attributes(&event.attributes) })
                    .collect(),
                links: span
                    .links
                    .iter()
                    .map(|link| ReceivedLink {
                        trace_id_hex: hex::encode(&link.trace_id),
                        span_id_hex: hex::encode(&link.span_id),
                    })
                    .collect(),
            });
        }
    }
    spans
}

fn attributes(key_values: &[KeyValue]) -> BTreeMap<String, String> {
    key_values
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(render).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

fn render(value: &AnyValue) -> String {
    match &value.value {
        None => String::new(),
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(Value::BytesValue(bytes)) => hex::encode(bytes),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().map(render).unwrap_or_default();
                    format!("{}: {value}", kv.key)
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        // A string-table reference (profiles only); there is no table to resolve it against here.
        Some(Value::StringValueStrindex(index)) => format!("#{index}"),
    }
}
