//! One JSON object per log line, with the trace context that links it to its trace.
//!
//! A hand-written layer rather than `tracing_subscriber::fmt().json()`: that formatter cannot add
//! the OpenTelemetry `trace_id`/`span_id`, and it has no hook for redaction. Each line has
//! `timestamp` (RFC 3339 UTC), `level`, `message`, `service`, `target`, `trace_id` and `span_id`
//! (when inside a sampled-or-not span), `request_id` (when inside a request span), then the
//! event's own fields. Field values are redacted by name and scrubbed by content ([`crate::redact`]).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Arc;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::redact::{REDACTED, is_sensitive_name, scrub};

/// The span field whose value every log line inside that span carries as `request_id`.
pub const REQUEST_ID_FIELD: &str = "request_id";

/// Keys this layer writes itself; an event field with one of these names is prefixed `field.`.
const RESERVED_KEYS: &[&str] =
    &["timestamp", "level", "message", "service", "target", "trace_id", "span_id", REQUEST_ID_FIELD];

/// A `tracing` layer writing JSON lines to any [`MakeWriter`] (stdout in services, a buffer in tests).
pub struct JsonLogLayer<W> {
    service: Arc<str>,
    make_writer: W,
}

impl<W> fmt::Debug for JsonLogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayer").field("service", &self.service).finish_non_exhaustive()
    }
}

impl<W> JsonLogLayer<W>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    /// A layer stamping `service` on every line and writing each line through `make_writer`.
    pub fn new(service: impl Into<Arc<str>>, make_writer: W) -> Self {
        Self { service: service.into(), make_writer }
    }
}

/// The request id recorded on a span, kept in the span's extensions.
#[derive(Debug, Clone)]
struct SpanRequestId(String);

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut finder = RequestIdFinder(None);
        attrs.record(&mut finder);
        if let (Some(request_id), Some(span)) = (finder.0, ctx.span(id)) {
            span.extensions_mut().insert(SpanRequestId(request_id));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut finder = RequestIdFinder(None);
        values.record(&mut finder);
        if let (Some(request_id), Some(span)) = (finder.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanRequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = FieldCollector::default();
        event.record(&mut fields);

        let metadata = event.metadata();
        // Events bridged from the `log` crate carry their real target in a field.
        let target = fields.log_target.take().unwrap_or_else(|| metadata.target().to_owned());
        let request_id = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().filter_map(|span| span.extensions().get::<SpanRequestId>().cloned()).last()
        });
        // The OpenTelemetry layer attaches the entered span's context to the thread on enter.
        let otel_context = opentelemetry::Context::current();
        let span_context = otel_context.span().span_context().clone();

        let mut line = String::with_capacity(256);
        line.push('{');
        push_entry(&mut line, "timestamp", &Value::from(now_rfc3339()), true);
        push_entry(&mut line, "level", &Value::from(metadata.level().as_str().to_ascii_lowercase()), false);
        push_entry(&mut line, "message", &Value::from(fields.message.unwrap_or_default()), false);
        push_entry(&mut line, "service", &Value::from(&*self.service), false);
        push_entry(&mut line, "target", &Value::from(target), false);
        if span_context.is_valid() {
            push_entry(&mut line, "trace_id", &Value::from(span_context.trace_id().to_string()), false);
            push_entry(&mut line, "span_id", &Value::from(span_context.span_id().to_string()), false);
        }
        // Outside a request span (a worker, say), an event's own `request_id` field takes the slot.
        let request_id = match request_id {
            Some(SpanRequestId(request_id)) => Some(Value::from(request_id)),
            None => fields.values.remove(REQUEST_ID_FIELD),
        };
        if let Some(request_id) = request_id {
            push_entry(&mut line, REQUEST_ID_FIELD, &request_id, false);
        }
        for (key, value) in &fields.values {
            if RESERVED_KEYS.contains(&key.as_str()) {
                push_entry(&mut line, &format!("field.{key}"), value, false);
            } else {
                push_entry(&mut line, key, value, false);
            }
        }
        line.push_str("}\n");

        // One write per line keeps concurrent lines from interleaving on stdout.
        let mut writer = self.make_writer.make_writer_for(metadata);
        let _ = writer.write_all(line.as_bytes());
    }
}

fn push_entry(line: &mut String, key: &str, value: &Value, first: bool) {
    if !first {
        line.push(',');
    }
    // Serialising a key or a `Value` to a String cannot fail; fall back to null defensively.
    line.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".to_owned()));
    line.push(':');
    line.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()));
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Finds the `request_id` field among a span's fields.
struct RequestIdFinder(Option<String>);

impl Visit for RequestIdFinder {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == REQUEST_ID_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == REQUEST_ID_FIELD {
            // `%request_id` arrives here; Display output is wrapped by `DisplayValue`'s Debug impl.
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            self.0 = Some(text);
        }
    }
}

/// Collects an event's fields as JSON values, redacting as it goes.
#[derive(Default)]
struct FieldCollector {
    message: Option<String>,
    log_target: Option<String>,
    values: Map<String, Value>,
}

impl FieldCollector {
    fn insert(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name.starts_with("log.") {
            if name == "log.target" {
                self.log_target = value.as_str().map(str::to_owned);
            }
            return;
        }
        let value = match value {
            _ if is_sensitive_name(name) => Value::from(REDACTED),
            Value::String(text) => Value::from(scrub(&text).into_owned()),
            other => other,
        };
        if name == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.values.insert(name.to_owned(), value);
        }
    }
}

impl Visit for FieldCollector {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON form; keep them readable as strings.
        let value = serde_json::Number::from_f64(value).map_or_else(|| Value::from(value.to_string()), Value::Number);
        self.insert(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // Include the cause chain: "connect failed: connection refused" beats "connect failed".
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.insert(field, Value::from(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Runs `emit` under a JSON layer (with OpenTelemetry spans) and returns the parsed lines.
    fn capture(emit: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(JsonLogLayer::new("unit", buffer.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    #[test]
    fn line_outside_any_span_has_the_fixed_keys_but_no_trace() {
        let lines = capture(|| tracing::warn!(count = 2u64, ratio = 0.5, ok = true, "plain event"));
        let line = &lines[0];
        assert_eq!(line["level"], "warn");
        assert_eq!(line["message"], "plain event");
        assert_eq!(line["service"], "unit");
        assert_eq!(line["target"], "observability::json_log::tests");
        assert_eq!(
            (line["count"].as_u64(), line["ratio"].as_f64(), line["ok"].as_bool()),
            (Some(2), Some(0.5), Some(true))
        );
        assert!(line.get("trace_id").is_none() && line.get("span_id").is_none() && line.get("request_id").is_none());
    }

    #[test]
    fn nested_spans_share_the_trace_inherit_the_request_id_and_have_their_own_span_id() {
        let lines = capture(|| {
            let request = tracing::info_span!("request", request_id = "req-9");
            let _request = request.enter();
            tracing::info!("outer");
            let inner = tracing::info_span!("db query");
            let _inner = inner.enter();
            tracing::info!("inner");
        });
        let (outer, inner) = (&lines[0], &lines[1]);
        assert_eq!(outer["trace_id"], inner["trace_id"]);
        assert_eq!(outer["trace_id"].as_str().unwrap().len(), 32);
        assert_ne!(outer["span_id"], inner["span_id"]);
        assert_eq!((outer["request_id"].as_str(), inner["request_id"].as_str()), (Some("req-9"), Some("req-9")));
    }

    #[test]
    fn request_id_recorded_later_on_the_span_is_picked_up() {
        let lines = capture(|| {
            let span = tracing::info_span!("work", request_id = tracing::field::Empty);
            span.record("request_id", "late-id");
            span.in_scope(|| tracing::info!("after record"));
        });
        assert_eq!(lines[0]["request_id"], "late-id");
    }

    #[test]
    fn field_names_colliding_with_fixed_keys_are_prefixed_and_event_request_id_is_promoted() {
        let lines = capture(|| tracing::info!(service = "spoof", level = 3, request_id = "job-1", "collide"));
        let line = &lines[0];
        assert_eq!((line["service"].as_str(), line["field.service"].as_str()), (Some("unit"), Some("spoof")));
        assert_eq!((line["level"].as_str(), line["field.level"].as_u64()), (Some("info"), Some(3)));
        assert_eq!(line["request_id"], "job-1");
    }

    #[test]
    fn sensitive_fields_errors_and_odd_numbers_are_rendered_safely() {
        #[derive(Debug, thiserror::Error)]
        #[error("query failed")]
        struct Outer(#[source] std::io::Error);
        let lines = capture(|| {
            let error = Outer(std::io::Error::other("connection reset"));
            let error: &(dyn std::error::Error + 'static) = &error;
            tracing::error!(password = "hunter2", api_key = 42, error, latency = f64::NAN, "odd values");
        });
        let line = &lines[0];
        assert_eq!((line["password"].as_str(), line["api_key"].as_str()), (Some(REDACTED), Some(REDACTED)));
        assert_eq!(line["error"], "query failed: connection reset");
        assert_eq!(line["latency"], "NaN");
    }
}
