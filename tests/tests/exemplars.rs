//! The service dashboard's promise, end to end: the dots on its latency panels are exemplars, each a link to the
//! trace that made it. A real Prometheus with exemplar storage (as compose runs it) scrapes the real backend,
//! which exports its traces to the in-test OTLP receiver; every exemplar Prometheus returns must name a trace that
//! receiver holds.
//!
//! Needs the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Debian's `prometheus` package.

use e2e::monitoring::{Prometheus, PrometheusConfig};
use e2e::{DEADLINE, Service, Stack};
use serde_json::json;

/// The backend's API requests, the series a latency panel's exemplars come from.
const API_BUCKETS: &str = r#"http_server_request_duration_seconds_bucket{job="backend", http_route="/v1/tasks"}"#;

#[tokio::test]
async fn prometheus_holds_trace_id_exemplars_that_lead_to_exported_traces() {
    let stack = Stack::builder().services(&[Service::Backend]).start().await.expect("stack starts");
    let target = stack.url(Service::Backend).trim_start_matches("http://").to_owned();
    let config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals("1s", "1s"))
        .and_then(|config| config.alertmanager(None))
        .and_then(|config| config.without_job("alertmanager"))
        .and_then(|config| config.without_job("prometheus"))
        .and_then(|config| config.without_job(Service::Reminder.name()))
        .and_then(|config| config.without_job(Service::RecurringTask.name()))
        .and_then(|config| config.without_job(Service::Notification.name()))
        .and_then(|config| config.targets(Service::Backend.name(), &[target]))
        .expect("prometheus test config");
    let prometheus = Prometheus::start(&config).await.expect("prometheus starts");
    prometheus.wait_until_scraped(Service::Backend.name(), DEADLINE).await.expect("backend scraped");

    let api = stack.api("exemplar-user").expect("client");
    let trace_ids = testkit::wait::until_some(DEADLINE, || async {
        api.create_task(&json!({ "title": "A dot on the latency panel" })).await.ok()?;
        let trace_ids = prometheus.exemplar_trace_ids(API_BUCKETS).await.ok()?;
        (!trace_ids.is_empty()).then_some(trace_ids)
    })
    .await
    .unwrap_or_else(|_| panic!("no exemplar for {API_BUCKETS}; Prometheus said:\n{}", prometheus.output()));

    for trace_id in &trace_ids {
        assert_eq!(trace_id.len(), 32, "{trace_id} is not a 32-hex-digit trace id");
        let span = stack
            .otlp
            .wait_for_span(|span| span.trace_id_hex == *trace_id && span.name == "POST /v1/tasks", DEADLINE)
            .await;
        assert!(span.is_some(), "the exemplar's trace {trace_id} never reached the OTLP receiver");
    }
}
