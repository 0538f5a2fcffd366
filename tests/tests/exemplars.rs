//! The service dashboard's promise, end to end: the dots on its latency panels are exemplars, each a link to the
//! trace that made it. A real Prometheus with exemplar storage (as compose runs it) scrapes the real backend,
//! which exports its traces to the in-test OTLP receiver; every exemplar Prometheus returns must name a trace that
//! receiver holds.
//!
//! The pipeline's delay histograms carry exemplars too, and theirs name the trace of the request that planned the
//! work: the trace a task's creation started continues through the outbox, the reminder and the delivery.
//!
//! Needs the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Debian's `prometheus` package.

use e2e::monitoring::{Prometheus, PrometheusConfig};
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{DEADLINE, PIPELINE_DEADLINE, Service, Stack, TraceParent};
use serde_json::json;

/// The backend's API requests, the series a latency panel's exemplars come from.
const API_BUCKETS: &str = r#"http_server_request_duration_seconds_bucket{job="backend", http_route="/v1/tasks"}"#;

#[tokio::test]
async fn prometheus_holds_trace_id_exemplars_that_lead_to_exported_traces() {
    let stack = Stack::builder().services(&[Service::Backend]).start().await.expect("stack starts");
    let prometheus = prometheus_scraping(&stack, &[Service::Backend]).await;
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

/// A Prometheus scraping exactly `services` of `stack`, every second.
async fn prometheus_scraping(stack: &Stack, services: &[Service]) -> Prometheus {
    let jobs = stack.scrape_jobs(services);
    let config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals("1s", "1s"))
        .and_then(|config| config.alertmanager(None))
        .and_then(|config| config.only_jobs(&jobs))
        .expect("prometheus test config");
    Prometheus::start(&config).await.expect("prometheus starts")
}

#[tokio::test]
async fn the_pipeline_delays_carry_exemplars_of_the_trace_that_planned_the_reminder() {
    let stack = Stack::builder()
        .services(&[Service::Backend, Service::Reminder, Service::Notification])
        .start()
        .await
        .expect("stack starts");
    let prometheus = prometheus_scraping(&stack, &[Service::Backend, Service::Reminder, Service::Notification]).await;
    let alice = stack.api("exemplar-alice").expect("client");
    alice.save_notification_settings(Some("exemplar-alice@example.com"), None).await.expect("settings saved");

    // Due 65 s from now with a reminder a minute before: it falls due within seconds.
    let trace =
        TraceParent { trace_id: "e4e3a1b2c3d4e5f6a7b8c9d0e1f2a3b4".into(), parent_span_id: "e4e3a1b2c3d4e5f6".into() };
    let title = "A dot on the reminder panels";
    alice
        .create_task_traced(
            &json!({
                "title": title,
                "due_at": rfc3339(seconds_from_now(65)),
                "reminders": [{ "kind": "before_due", "minutes": 1 }],
            }),
            &trace,
        )
        .await
        .expect("task created");
    stack
        .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|subject| subject.contains(title)), PIPELINE_DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no reminder e-mail; notification said:\n{}", stack.output(Service::Notification)));

    for buckets in [
        r#"taskwatch_outbox_publish_lag_seconds_bucket{job="backend"}"#,
        r#"taskwatch_reminder_fire_delay_seconds_bucket{job="reminder"}"#,
        r#"taskwatch_outbox_publish_lag_seconds_bucket{job="reminder"}"#,
        r#"taskwatch_notification_delivery_latency_seconds_bucket{job="notification", channel="email"}"#,
    ] {
        let found = testkit::wait::until_some(DEADLINE, || async {
            let trace_ids = prometheus.exemplar_trace_ids(buckets).await.ok()?;
            trace_ids.contains(&trace.trace_id).then_some(())
        })
        .await;
        assert!(
            found.is_ok(),
            "no exemplar of {buckets} names the task's trace {}: {:?}",
            trace.trace_id,
            prometheus.exemplar_trace_ids(buckets).await
        );
    }
}
