//! The latency histograms that carry trace-id exemplars, so a dashboard's slow dot links to the trace that made it:
//! the HTTP server duration here, and the pipeline's delays (reminder fire delay, delivery latency, outbox publish
//! lag) registered by their own crates through [`ExemplarHistogram`].
//!
//! The `metrics` facade has no place for an exemplar, and `metrics-exporter-prometheus` renders neither exemplars
//! nor OpenMetrics (the only exposition format in which Prometheus reads exemplars). These histograms therefore
//! live in a small `prometheus-client` registry instead, rendered into the same `/metrics` response
//! ([`crate::metrics::router`]). Each is recorded here only, never also through `metrics::histogram!`, so no metric
//! family appears twice in a scrape. `prometheus-client` spells whole bucket bounds with a decimal point
//! (`le="30.0"`), as Prometheus 3 stores them anyway; the rules match both spellings.
//!
//! An exemplar names a trace only when that trace is recorded (its span context is valid and sampled): an
//! unsampled trace is never exported, and its exemplar would lead nowhere.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::SystemTime;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::registry::Registry;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metric_names::{HTTP_SERVER_REQUEST_DURATION_SECONDS, REGISTRY};
use crate::metrics::SECONDS_BUCKETS;
use crate::trace_headers::HeaderMapReader;

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

/// A histogram without labels of its own (Prometheus adds `job` and `instance`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoLabels {}

/// The exemplar's one label: the 32-hex-digit trace id, as Tempo and the logs write it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordedTrace {
    trace_id: String,
}

impl RecordedTrace {
    /// The trace of `context`'s span, if it is valid and sampled.
    pub fn of_context(context: &opentelemetry::Context) -> Option<Self> {
        let span = context.span();
        let span_context = span.span_context();
        (span_context.is_valid() && span_context.is_sampled())
            .then(|| RecordedTrace { trace_id: span_context.trace_id().to_string() })
    }

    /// The trace of `span`, if it is recorded.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        Self::of_context(&span.context())
    }

    /// The trace written down in `headers` (an outbox row's, a reminder job's) as a W3C `traceparent`, if it was
    /// recorded. Read with the W3C propagator itself, not the global one: the exemplar names the trace whatever
    /// propagator this process installed.
    pub fn of_headers(headers: &BTreeMap<String, String>) -> Option<Self> {
        Self::of_context(&TraceContextPropagator::new().extract(&HeaderMapReader(headers)))
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

/// Makes each labelled histogram of a family with the family's buckets.
#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<HistogramWithExemplars<RecordedTrace>> for Buckets {
    fn new_metric(&self) -> HistogramWithExemplars<RecordedTrace> {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

/// This process's exemplar registry: the HTTP histogram from the start, the others as their crates register them.
static EXEMPLAR_REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| RwLock::new(Registry::default()));

/// A histogram family whose observations may carry the trace that made them. Register each once per process (a
/// `LazyLock` static in the crate that owns the metric), and force it at start-up so the family is in the first
/// scrape.
#[derive(Debug, Clone)]
pub struct ExemplarHistogram<L>
where
    L: Clone + Hash + Eq + EncodeLabelSet + Debug + Send + Sync + 'static,
{
    family: Family<L, HistogramWithExemplars<RecordedTrace>, Buckets>,
}

impl<L> ExemplarHistogram<L>
where
    L: Clone + Hash + Eq + EncodeLabelSet + Debug + Send + Sync + 'static,
{
    /// Registers the family `name` with its help text and bucket upper bounds (`+Inf` is added).
    pub fn register(name: &'static str, help: &'static str, buckets: &'static [f64]) -> Self {
        let family = Family::new_with_constructor(Buckets(buckets));
        EXEMPLAR_REGISTRY.write().unwrap_or_else(PoisonError::into_inner).register(name, help, family.clone());
        Self { family }
    }

    /// Records `value` under `labels`, with `trace` as the bucket's exemplar when there is one.
    pub fn observe(&self, labels: &L, value: f64, trace: Option<RecordedTrace>) {
        // The clock is read only for an exemplar: a bucket without one has no timestamp to keep.
        let timestamp = trace.as_ref().map(|_| SystemTime::now());
        self.family.get_or_create(labels).observe(value, trace, timestamp);
    }
}

/// `http_server_request_duration_seconds`, registered with the registry's first use.
static HTTP_SERVER: LazyLock<ExemplarHistogram<HttpServerLabels>> = LazyLock::new(|| {
    ExemplarHistogram::register(
        HTTP_SERVER_REQUEST_DURATION_SECONDS,
        help(HTTP_SERVER_REQUEST_DURATION_SECONDS),
        SECONDS_BUCKETS,
    )
});

/// The help text `metric_names::REGISTRY` gives `name`, so the two registries describe a metric alike.
fn help(name: &str) -> &'static str {
    REGISTRY.iter().find(|spec| spec.name == name).map_or("", |spec| spec.help)
}

/// Records one server request of `seconds` under `labels`, with its recorded trace, if any, as the exemplar.
pub fn observe_http_server(labels: &HttpServerLabels, seconds: f64, trace: Option<RecordedTrace>) {
    HTTP_SERVER.observe(labels, seconds, trace);
}

/// Appends the families in the Prometheus text format (0.0.4: no exemplars, as that format has none).
pub(crate) fn render_text(out: &mut String) -> std::fmt::Result {
    LazyLock::force(&HTTP_SERVER);
    prometheus_text::encode(out, &EXEMPLAR_REGISTRY.read().unwrap_or_else(PoisonError::into_inner))
}

/// Appends the families in OpenMetrics, exemplars included, then the closing `# EOF`.
pub(crate) fn render_openmetrics(out: &mut String) -> std::fmt::Result {
    LazyLock::force(&HTTP_SERVER);
    text::encode_registry(out, &EXEMPLAR_REGISTRY.read().unwrap_or_else(PoisonError::into_inner))?;
    text::encode_eof(out)
}
