//! One JSON object per log line, with the trace context that links it to its trace.
//!
//! A hand-written layer rather than `tracing_subscriber::fmt().json()`: that formatter cannot add
//! the OpenTelemetry `trace_id`/`span_id`, and it has no hook for redaction. Each line has
//! `timestamp` (RFC 3339 UTC), `level`, `message`, `service`, `target`, `trace_id` and `span_id`
//! (when inside a sampled-or-not span), `request_id` (when inside a request span), then the
//! event's own fields. Field values are redacted by name and scrubbed by content ([`crate::redact`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Subscriber};
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
    /// The subscriber this layer is part of, to ask its OpenTelemetry layer for a span's trace. (Inside an event's
    /// dispatch, `tracing::dispatcher::get_default` gives the no-op dispatcher: it does not re-enter.)
    dispatch: OnceLock<WeakDispatch>,
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
        Self { service: service.into(), make_writer, dispatch: OnceLock::new() }
    }
}

/// The request id recorded on a span, kept in the span's extensions.
#[derive(Debug, Clone)]
struct SpanRequestId(Arc<str>);

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut finder = RequestIdFinder(None);
        attrs.record(&mut finder);
        if let (Some(request_id), Some(span)) = (finder.0, ctx.span(id)) {
            span.extensions_mut().insert(SpanRequestId(request_id.into()));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut finder = RequestIdFinder(None);
        values.record(&mut finder);
        if let (Some(request_id), Some(span)) = (finder.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanRequestId(request_id.into()));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Room for a few fields, so the common line grows its buffer once at most.
        let mut fields = FieldWriter { rest: Vec::with_capacity(128), ..FieldWriter::default() };
        event.record(&mut fields);

        let metadata = event.metadata();
        // Events bridged from the `log` crate carry their real target in a field.
        let target = fields.log_target.as_deref().unwrap_or_else(|| metadata.target());
        let span_request_id = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().filter_map(|span| span.extensions().get::<SpanRequestId>().cloned()).last()
        });
        // In a request whose trace is dropped (no span; see `edge_sampling`), its own ids; otherwise the trace of the
        // event's innermost span, asked of the OpenTelemetry layer (which does not attach it to the thread: see
        // `telemetry::subscriber`). No extensions of that span are held here, as it requires.
        let untraced = crate::edge_sampling::current_untraced();
        let span_context = match &untraced {
            Some(request) => request.context.clone(),
            None => {
                let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
                ctx.event_span(event)
                    .zip(dispatch)
                    .and_then(|(span, dispatch)| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch))
                    .map(|otel_context| otel_context.span().span_context().clone())
                    .unwrap_or_else(SpanContext::empty_context)
            }
        };
        let request_id = span_request_id
            .as_ref()
            .map(|id| &*id.0)
            .or(untraced.as_deref().map(|request| request.request_id.as_str()));

        // Written straight into one buffer, values escaped in place: this runs for every request's access line.
        let mut line = Vec::with_capacity(256 + fields.rest.len());
        line.extend_from_slice(b"{\"timestamp\":");
        // RFC 3339 in UTC to the microsecond, written in place.
        let _ = write!(line, "\"{}\"", humantime::format_rfc3339_micros(SystemTime::now()));
        line.extend_from_slice(b",\"level\":\"");
        line.extend_from_slice(level_name(metadata.level()).as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        push_str(&mut line, fields.message.as_deref().unwrap_or_default());
        line.extend_from_slice(b",\"service\":");
        push_str(&mut line, &self.service);
        line.extend_from_slice(b",\"target\":");
        push_str(&mut line, target);
        if span_context.is_valid() {
            // Hex digits: nothing to escape.
            let _ = write!(
                line,
                ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                span_context.trace_id(),
                span_context.span_id()
            );
        }
        // Inside a request span its id takes the slot (and an event's own `request_id` field keeps its value under
        // `field.request_id`); outside one (a worker, say), the event's own field does.
        match (request_id, fields.request_id) {
            (Some(request_id), own) => {
                line.extend_from_slice(b",\"request_id\":");
                push_str(&mut line, request_id);
                if let Some(own) = own {
                    line.extend_from_slice(b",\"field.request_id\":");
                    line.extend_from_slice(&own);
                }
            }
            (None, Some(own)) => {
                line.extend_from_slice(b",\"request_id\":");
                line.extend_from_slice(&own);
            }
            (None, None) => {}
        }
        line.extend_from_slice(&fields.rest);
        line.extend_from_slice(b"}\n");

        // One write per line keeps concurrent lines from interleaving on stdout.
        let mut writer = self.make_writer.make_writer_for(metadata);
        let _ = writer.write_all(&line);
    }
}

/// `info`, `warn`, … (tracing's own names are upper case).
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

/// `text` as a JSON string.
fn push_str(buffer: &mut Vec<u8>, text: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(buffer, text);
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

thread_local! {
    /// What [`FieldName::of`] found for each field name seen on this thread, by the name's address. Field names are
    /// the `'static` names of callsites, so the map holds at most one entry per distinct field name in the program.
    static FIELD_NAMES: RefCell<HashMap<(usize, usize), FieldName>> = RefCell::new(HashMap::new());
}

/// What a field's name means for its value in the line, worked out once per name and thread: every field of every
/// line asks (the access line alone has five), and the checks test sixteen fragments and eight keys.
#[derive(Debug, Clone, Copy)]
struct FieldName {
    /// [`is_sensitive_name`]: the value is replaced by [`REDACTED`].
    sensitive: bool,
    /// One of [`RESERVED_KEYS`]: the field is written as `field.{name}`.
    reserved: bool,
}

impl FieldName {
    fn of(name: &'static str) -> Self {
        let key = (name.as_ptr() as usize, name.len());
        FIELD_NAMES.with(|cache| {
            *cache.borrow_mut().entry(key).or_insert_with(|| FieldName {
                sensitive: is_sensitive_name(name),
                reserved: RESERVED_KEYS.contains(&name),
            })
        })
    }
}

/// One field value, before it is written as JSON.
enum Scalar<'a> {
    Text(&'a str),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
}

/// Writes an event's fields as JSON while they are visited, redacting as it goes. The message, a `log` bridge's
/// target and the `request_id` field are kept apart for their fixed places in the line; every other field is
/// appended to `rest` as `,"name":value`.
#[derive(Default)]
struct FieldWriter {
    message: Option<String>,
    log_target: Option<String>,
    /// The event's own `request_id`, as JSON.
    request_id: Option<Vec<u8>>,
    rest: Vec<u8>,
}

impl FieldWriter {
    fn insert(&mut self, field: &Field, value: Scalar<'_>) {
        let name = field.name();
        if name.starts_with("log.") {
            if let (true, Scalar::Text(text)) = (name == "log.target", &value) {
                self.log_target = Some((*text).to_owned());
            }
            return;
        }
        let kind = FieldName::of(name);
        let value = if kind.sensitive { Scalar::Text(REDACTED) } else { value };
        if name == "message" {
            self.message = Some(match value {
                Scalar::Text(text) => scrub(text).into_owned(),
                other => {
                    let mut json = Vec::new();
                    write_scalar(&mut json, &other);
                    String::from_utf8_lossy(&json).into_owned()
                }
            });
        } else if name == REQUEST_ID_FIELD {
            let mut json = Vec::new();
            write_scalar(&mut json, &value);
            self.request_id = Some(json);
        } else {
            self.rest.push(b',');
            if kind.reserved {
                push_str(&mut self.rest, &format!("field.{name}"));
            } else {
                push_str(&mut self.rest, name);
            }
            self.rest.push(b':');
            write_scalar(&mut self.rest, &value);
        }
    }
}

/// `value` as JSON; free text scrubbed ([`scrub`]); a NaN or an infinity, which JSON has no number for, as text.
fn write_scalar(buffer: &mut Vec<u8>, value: &Scalar<'_>) {
    match *value {
        Scalar::Text(text) => push_str(buffer, &scrub(text)),
        Scalar::Signed(number) => {
            let _ = write!(buffer, "{number}");
        }
        Scalar::Unsigned(number) => {
            let _ = write!(buffer, "{number}");
        }
        Scalar::Float(number) if number.is_finite() => {
            let _ = serde_json::to_writer(buffer, &number);
        }
        Scalar::Float(number) => push_str(buffer, &number.to_string()),
        Scalar::Bool(flag) => buffer.extend_from_slice(if flag { b"true" } else { b"false" }),
    }
}

impl Visit for FieldWriter {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Scalar::Float(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Scalar::Signed(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Scalar::Unsigned(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Scalar::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Scalar::Text(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // Include the cause chain: "connect failed: connection refused" beats "connect failed".
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.insert(field, Scalar::Text(&text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            // Every event's message arrives here (as `format_args!`): keep its text rather than copy it again.
            self.message = Some(match scrub(&text) {
                Cow::Borrowed(_) => text,
                Cow::Owned(scrubbed) => scrubbed,
            });
        } else {
            self.insert(field, Scalar::Text(&text));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use serde_json::Value;

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

    /// Runs `emit` under a JSON layer (with OpenTelemetry spans, whose context is not attached to the thread, as
    /// `telemetry::subscriber` sets them up) and returns the parsed lines.
    fn capture(emit: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")).with_context_activation(false))
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
