//! `init` wires the process-wide pipeline exactly once (its own test binary: it sets globals).
#![allow(clippy::unwrap_used)]

use observability::ServiceInfo;
use observability::telemetry::{TelemetryError, init};

const SERVICE: ServiceInfo = ServiceInfo { name: "init-test", version: "0.0.0" };

#[tokio::test]
async fn init_installs_once_and_shuts_down_cleanly() {
    let guard = init(SERVICE).unwrap();
    assert!(matches!(init(SERVICE), Err(TelemetryError::AlreadyInitialised)));

    metrics::counter!("init_test_events_total").increment(1);
    let rendered = guard.metrics().render();
    assert!(rendered.contains("init_test_events_total 1"), "{rendered}");

    // Spans get real ids even with no exporter configured.
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!("probe");
    assert!(span.context().span().span_context().is_valid());
    drop(span);

    tokio::time::timeout(std::time::Duration::from_secs(10), guard.shutdown()).await.unwrap();
}
