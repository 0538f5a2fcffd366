//! `/metrics` carries the RED histogram by route template, never raw ids, plus the domain and pool metrics.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::harness::TestApp;

#[tokio::test]
async fn metrics_use_route_templates_and_include_domain_counters() {
    let app = TestApp::start().await;
    let before = app.request(Method::GET, "/metrics").send().await.expect("metrics").text().await.expect("text");
    let task = app.create_simple_task("alice", "Measured").await;
    let id = task["id"].as_str().expect("id");
    app.as_user("alice", Method::GET, &format!("/v1/tasks/{id}")).send().await.expect("get");
    app.as_user("alice", Method::POST, &format!("/v1/tasks/{id}/complete")).send().await.expect("complete");
    app.as_user("alice", Method::GET, &format!("/v1/tasks/{}", uuid::Uuid::now_v7())).send().await.expect("404");
    app.as_user("alice", Method::GET, "/v1/tasks/not-a-uuid").send().await.expect("404");

    // The pool gauges come from a background sampler: wait for its first sample.
    let text = testkit::wait::until_some(Duration::from_secs(30), || async {
        let response = app.request(Method::GET, "/metrics").send().await.ok()?;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.ok()?;
        text.contains("db_client_connection_max{").then_some(text)
    })
    .await
    .expect("pool gauges appear");

    let histogram_lines: Vec<&str> =
        text.lines().filter(|l| l.starts_with("http_server_request_duration_seconds_bucket")).collect();
    assert!(
        histogram_lines
            .iter()
            .any(|l| l.contains("http_route=\"/v1/tasks/{id}\"") && l.contains("http_request_method=\"GET\"")),
        "no GET /v1/tasks/{{id}} series"
    );
    assert!(histogram_lines.iter().any(|l| l.contains("http_route=\"/v1/tasks/{id}/complete\"")));
    assert!(histogram_lines.iter().any(|l| l.contains("http_response_status_code=\"404\"")));
    assert!(!text.contains(id), "a raw task id leaked into a label");
    assert!(!text.contains("not-a-uuid"), "a raw path leaked into a label");

    // Each counter counted what was done above: one creation, one completion, their two events, and the
    // requests by route template and status (other tests may share this process's recorder, hence "at least").
    let grown = |metric: &str, labels: &[(&str, &str)]| {
        let count = |text: &str| testkit::exposition::metric_sum(text, metric, labels).unwrap_or(0.0);
        count(&text) - count(&before)
    };
    for (metric, labels) in [
        ("taskwatch_tasks_created_total", &[][..]),
        ("taskwatch_tasks_completed_total", &[]),
        ("taskwatch_outbox_events_written_total", &[("event_type", "task.created.v1")]),
        ("taskwatch_outbox_events_written_total", &[("event_type", "task.completed.v1")]),
        (
            "http_server_request_duration_seconds_count",
            &[("http_route", "/v1/tasks/{id}"), ("http_request_method", "GET"), ("http_response_status_code", "200")],
        ),
        (
            "http_server_request_duration_seconds_count",
            &[("http_route", "/v1/tasks/{id}"), ("http_request_method", "GET"), ("http_response_status_code", "404")],
        ),
    ] {
        assert!(grown(metric, labels) >= 1.0, "{metric}{labels:?} did not count what was done");
    }

    for name in [
        "taskwatch_tasks_created_total",
        "taskwatch_tasks_completed_total",
        "taskwatch_outbox_events_written_total{event_type=\"task.created.v1\"}",
        "taskwatch_outbox_events_written_total{event_type=\"task.completed.v1\"}",
        "db_client_connection_max{db_client_connection_pool_name=\"backend\"}",
        "db_client_connection_count{",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}
