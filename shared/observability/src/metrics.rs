//! The process-wide Prometheus recorder and the `/metrics` endpoint.
//!
//! Uses `metrics-exporter-prometheus` without its HTTP listener: the service's own axum server serves
//! `/metrics`, and a background thread runs the recorder's upkeep (histogram bucket rotation).

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Bucket upper bounds (seconds) for every `*_seconds` histogram: fine-grained where a 2-core API
/// spends its time (5–100 ms) and up to the 10 s request timeout.
pub const SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The Prometheus text exposition content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid histogram buckets: {0}")]
    Buckets(String),
    #[error("another metrics recorder is already installed in this process")]
    RecorderTaken,
    #[error("could not start the metrics upkeep thread: {0}")]
    Upkeep(#[source] std::io::Error),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Installs the recorder once per process and starts its upkeep; later calls return the same handle,
/// so tests and `init` can both call it.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // Serialise first-time installation so two racing callers cannot both try to set the global.
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .map_err(|error| MetricsError::Buckets(error.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderTaken)?;
    crate::metric_names::describe_all();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(MetricsError::Upkeep)?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// `GET /metrics` rendering `handle` in the Prometheus text format.
pub fn router<S>(handle: PrometheusHandle) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(
        "/metrics",
        get(move || {
            let body = handle.render();
            async move {
                ([(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE))], body).into_response()
            }
        }),
    )
}
