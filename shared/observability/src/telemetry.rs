//! Process-wide telemetry: JSON logs, OpenTelemetry traces, the Prometheus recorder.
//!
//! [`init`] wires everything from the environment and may run once per process. Its parts are public
//! ([`TelemetrySettings`], [`subscriber`], [`JsonLogLayer`]) so tests
//! can build as many independent pipelines as they like, e.g. one writing to an in-memory buffer and
//! installed with `tracing::subscriber::set_default`.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::ServiceInfo;
use crate::config::{ConfigError, Env};
use crate::edge_sampling::{EdgeSampler, TracedOnly};
use crate::error_reporting::{self, ErrorReportingGuard, Reporter, SentryDsn};
use crate::json_log::JsonLogLayer;
use crate::metrics::{MetricsError, PrometheusHandle};
use crate::otel::TraceSettings;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// [`init`] found `RUST_LOG` or an `OTEL_*` variable invalid; the report names each one.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Prometheus recorder could not be installed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The OTLP span exporter could not be built for the configured endpoint.
    #[error("could not build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Something outside this crate already set the global `tracing` subscriber (or `log` logger).
    #[error("could not install the global log subscriber: {0}")]
    Subscriber(String),
    /// [`init`] or [`init_with`] already ran in this process, even if that call failed.
    #[error("telemetry is already initialised in this process")]
    AlreadyInitialised,
}

/// A validated `RUST_LOG`-style filter (default `info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// The filter as a `tracing_subscriber` layer; `info` should the validated directives ever fail to build.
    pub fn env_filter(&self) -> EnvFilter {
        // Validated in `from_str`, so this cannot fail; stay quiet rather than panic if it ever does.
        EnvFilter::try_new(&self.0).unwrap_or_else(|_| EnvFilter::new("info"))
    }
}

impl Default for LogFilter {
    fn default() -> Self {
        Self("info".to_owned())
    }
}

impl FromStr for LogFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EnvFilter::try_new(text).map(|_| Self(text.to_owned())).map_err(|error| error.to_string())
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Telemetry configuration resolved from `RUST_LOG` and the `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// `RUST_LOG` (default `info`): which spans and events are kept, for log lines and traces alike.
    pub log_filter: LogFilter,
    /// The `OTEL_*` settings: service name, sampler and where spans are exported.
    pub traces: TraceSettings,
    /// `SENTRY_DSN` (optional): where error reports go; unset, nothing is reported
    /// ([`crate::error_reporting`]).
    pub sentry_dsn: Option<SentryDsn>,
}

impl TelemetrySettings {
    /// Reads the variables, recording problems in `env`.
    pub fn from_env(env: &mut Env, service: ServiceInfo) -> Self {
        Self {
            log_filter: env.with_default("RUST_LOG", LogFilter::default()),
            traces: TraceSettings::from_env(env, service),
            sentry_dsn: env.optional("SENTRY_DSN"),
        }
    }
}

/// The subscriber `init` installs: filter → OpenTelemetry spans → JSON lines to `make_writer`.
pub fn subscriber<W>(
    settings: &TelemetrySettings,
    provider: &SdkTracerProvider,
    make_writer: W,
) -> impl Subscriber + for<'lookup> LookupSpan<'lookup> + Send + Sync + 'static
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let tracer = provider.tracer("taskwatch");
    tracing_subscriber::registry()
        .with(settings.log_filter.env_filter())
        // The HTTP edge asks it whether a request is traced; an untraced request builds no OpenTelemetry span.
        .with(EdgeSampler::new(settings.traces.sampler.sampler()))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // Off: what each would add to every span, per request, sampled or not. Busy/idle timings (an
                // `Instant` read on every poll), the source location and module of the code that opened the span
                // (the middleware, the same for every request), and the thread (an async request moves between
                // threads, and the name is copied into a new String each time).
                .with_tracked_inactivity(false)
                // Off too: attaching the span's OpenTelemetry context to the thread on every enter (a request
                // future enters its span on each poll: a lock, a context clone and a thread-local push and pop
                // each time). Every reader here asks the span itself (`edge_sampling::context_of`, and the log
                // layer through `get_otel_context`), so nothing reads the thread's context.
                .with_context_activation(false)
                .with_location(false)
                .with_target(false)
                .with_threads(false)
                // Neither the access line (its server span holds the same facts) nor an untraced request.
                .with_filter(TracedOnly),
        )
        .with(JsonLogLayer::new(settings.traces.service_name.clone(), make_writer))
}

/// Installs the W3C TraceContext propagator globally (idempotent). [`init`] does this; tests that
/// exercise propagation without `init` call it themselves.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Initialises logs (JSON to stdout), traces and the metrics recorder from the environment.
///
/// Call once, first thing in `main`; keep the guard and call [`TelemetryGuard::shutdown`] last.
pub fn init(service: ServiceInfo) -> Result<TelemetryGuard, TelemetryError> {
    let settings = Env::from_process().load(|env| Some(TelemetrySettings::from_env(env, service)))?;
    init_stdout(&settings)
}

/// Lines waiting for the log writer thread before a logging call blocks: a few seconds of a busy service's lines.
/// Blocking, not dropping, is the behaviour at the bound: a log line is never lost to a burst.
const BUFFERED_LOG_LINES: usize = 64 * 1024;
/// The log writer's buffer in front of stdout: a burst of lines leaves in one `write`.
const LOG_WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// [`init_with`] writing the JSON lines to stdout from a thread of their own, as every service does.
///
/// A request only queues its line; the writer thread takes every queued line, writes them in one system call and
/// flushes as soon as the queue is empty, so lines reach stdout within microseconds when the service is quiet and in
/// batches when it is busy. (Written on the request's own thread, each line cost a `write` under the stdout lock.)
/// The queue is bounded and blocks when full
/// ([`BUFFERED_LOG_LINES`]); [`TelemetryGuard::shutdown`], or dropping the guard, flushes what is queued.
pub fn init_stdout(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let (writer, flush_on_drop) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LOG_LINES)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(LOG_WRITE_BUFFER_BYTES, std::io::stdout()));
    let mut guard = init_with(settings, writer)?;
    guard.log_writer = Some(flush_on_drop);
    Ok(guard)
}

/// [`init`] with settings read as part of the service's own config (so one report names every bad
/// variable, `OTEL_*` included) and an explicit log destination. Once per process, like `init`.
pub fn init_with<W>(settings: &TelemetrySettings, make_writer: W) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    if INITIALISED.swap(true, Ordering::SeqCst) {
        return Err(TelemetryError::AlreadyInitialised);
    }
    let metrics = crate::metrics::install()?;
    let provider = settings.traces.tracer_provider()?;
    install_propagator();
    opentelemetry::global::set_tracer_provider(provider.clone());
    subscriber(settings, &provider, make_writer)
        .try_init()
        .map_err(|error| TelemetryError::Subscriber(error.to_string()))?;
    install_panic_hook();
    let environment = settings
        .traces
        .resource_attributes
        .iter()
        .find(|(key, _)| key == "deployment.environment.name" || key == "deployment.environment")
        .map(|(_, value)| value.clone());
    let reporter = Reporter {
        release: format!("{}@{}", settings.traces.service_name, settings.traces.service_version),
        environment,
    };
    let errors = error_reporting::init(settings.sentry_dsn.as_ref(), &reporter);
    tracing::info!(
        service = %settings.traces.service_name,
        version = %settings.traces.service_version,
        traces = %settings.traces.export,
        log_filter = %settings.log_filter,
        error_reporting = settings.sentry_dsn.is_some(),
        "telemetry initialised"
    );
    Ok(TelemetryGuard { provider, metrics, _errors: errors, log_writer: None })
}

/// Routes panics through the log pipeline: the default hook writes plain text to stderr, which a
/// JSON log collector would mangle, and it would lose the trace context of the panicking request.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        let location = info.location().map(|location| format!("{}:{}", location.file(), location.line()));
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        tracing::error!(panic = %message, location = location.as_deref(), thread, "panic");
    }));
}

/// Keeps telemetry alive; [`TelemetryGuard::shutdown`] flushes buffered spans before exit.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    metrics: PrometheusHandle,
    /// Sends queued error reports when the guard is dropped.
    _errors: ErrorReportingGuard,
    /// With [`init_stdout`]: writes out the queued log lines when dropped, after everything else was logged.
    log_writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl TelemetryGuard {
    /// The handle `/metrics` renders from.
    pub fn metrics(&self) -> PrometheusHandle {
        self.metrics.clone()
    }

    /// Flushes and stops the span exporter.
    ///
    /// The exporter's HTTP client is blocking, so the flush runs on the blocking pool rather than
    /// stalling (or, with some clients, panicking) on a runtime worker.
    pub async fn shutdown(self) {
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => tracing::info!("telemetry flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "telemetry flush incomplete"),
            Err(error) => tracing::warn!(%error, "telemetry flush task failed"),
        }
        // The log lines last, the line above included (dropping the writer's guard waits for its thread).
        drop(self.log_writer);
    }
}
