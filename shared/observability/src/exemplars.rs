//! The latency histograms that carry trace-id exemplars, so a dashboard's slow dot links to the trace that made it.
//!
//! The `metrics` facade has no place for an exemplar, and `metrics-exporter-prometheus` renders neither exemplars
//! nor OpenMetrics (the only exposition format in which Prometheus reads exemplars). These histograms therefore
//! live in a small `prometheus-client` registry instead, rendered into the same `/metrics` response
//! ([`crate::metrics::router`]). Each is recorded here only, never also through `metrics::histogram!`, so no metric
//! family appears twice in a scrape.
//!
//! An exemplar names a trace only when that trace is recorded (its span context is valid and sampled): an
//! unsampled trace is never exported, and its exemplar would lead nowhere.

use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt as _;
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metric_names::{HTTP_SERVER_REQUEST_DURATION_SECONDS, REGISTRY};
use crate::metrics::SECONDS_BUCKETS;

/// The labels of `http_server_request_duration_seconds`: the bounded method, the route template and the status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpServerLabels {
    /// A standard method, or `_OTHER`.
    pub http_request_method: &'static str,
    /// The matched route template (`/v1/tasks/{id}`), or `unmatched`; never a raw path.
    pub http_route: String,
    /// The three-digit status code.
    pub http_response_status_code: String,
}

/// The exemplar's one label: the 32-hex-digit trace id, as Tempo and the logs write it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: String,
}

type ExemplarHistograms<L> = Family<L, HistogramWithExemplars<TraceExemplar>>;

/// The registry and its families, made once per process.
#[derive(Debug)]
struct Exemplars {
    registry: Registry,
    http_server: ExemplarHistograms<HttpServerLabels>,
}

static EXEMPLARS: OnceLock<Exemplars> = OnceLock::new();

fn exemplars() -> &'static Exemplars {
    EXEMPLARS.get_or_init(|| {
        let mut registry = Registry::default();
        let http_server: ExemplarHistograms<HttpServerLabels> =
            Family::new_with_constructor(|| HistogramWithExemplars::new(SECONDS_BUCKETS.iter().copied()));
        registry.register(
            HTTP_SERVER_REQUEST_DURATION_SECONDS,
            help(HTTP_SERVER_REQUEST_DURATION_SECONDS),
            http_server.clone(),
        );
        Exemplars { registry, http_server }
    })
}

/// The help text `metric_names::REGISTRY` gives `name`, so the two registries describe a metric alike.
fn help(name: &str) -> &'static str {
    REGISTRY.iter().find(|spec| spec.name == name).map_or("", |spec| spec.help)
}

/// Records one server request of `seconds` under `labels`, with the trace of `span` as its exemplar when that trace
/// is recorded.
pub fn observe_http_server(labels: HttpServerLabels, seconds: f64, span: &tracing::Span) {
    let exemplar = recorded_trace(span);
    // The clock is read only for an exemplar: a bucket without one has no timestamp to keep.
    let timestamp = exemplar.as_ref().map(|_| SystemTime::now());
    exemplars().http_server.get_or_create(&labels).observe(seconds, exemplar, timestamp);
}

/// The trace of `span` as an exemplar, if it is valid and sampled.
fn recorded_trace(span: &tracing::Span) -> Option<TraceExemplar> {
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    (span_context.is_valid() && span_context.is_sampled())
        .then(|| TraceExemplar { trace_id: span_context.trace_id().to_string() })
}

/// Appends the families in the Prometheus text format (0.0.4: no exemplars, as that format has none).
pub(crate) fn render_text(out: &mut String) -> std::fmt::Result {
    prometheus_text::encode(out, &exemplars().registry)
}

/// Appends the families in OpenMetrics, exemplars included, then the closing `# EOF`.
pub(crate) fn render_openmetrics(out: &mut String) -> std::fmt::Result {
    text::encode_registry(out, &exemplars().registry)?;
    text::encode_eof(out)
}
