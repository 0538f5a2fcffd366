//! Logs, traces and redaction of the real process.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::spawned::{Backend, token};

#[tokio::test]
async fn a_requests_log_line_carries_the_trace_id_the_collector_received() {
    let receiver = testkit::otlp::OtlpReceiver::start().await.expect("OTLP receiver");
    let endpoint = receiver.endpoint();
    let mut backend = Backend::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("RUST_LOG", "info"),
    ])
    .await;

    // The caller's trace context is continued: the server span is a child of this span.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(backend.url("/v1/tasks"))
        .bearer_auth(token("alice"))
        .header("traceparent", format!("00-{trace_id}-{parent_span}-01"))
        .header("x-request-id", "trace-test-request")
        .json(&json!({ "title": "Traced" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-request-id"], "trace-test-request");
    let task: Value = response.json().await.expect("json");

    let span = receiver
        .wait_for_span(|span| span.name == "POST /v1/tasks", Duration::from_secs(30))
        .await
        .expect("the request span reached the collector");
    assert_eq!(span.trace_id_hex, trace_id);
    assert_eq!(span.parent_span_id_hex.as_deref(), Some(parent_span));
    assert_eq!(span.service_name.as_deref(), Some("backend"));

    // The access log line of that request names the same trace (and span) id.
    let access = backend
        .log_lines()
        .into_iter()
        .find(|line| line["request_id"] == "trace-test-request" && line["message"] == "request completed")
        .expect("access log line for the request");
    assert_eq!(access["trace_id"], span.trace_id_hex.as_str(), "{access}");
    assert_eq!(access["span_id"], span.span_id_hex.as_str(), "{access}");
    assert_eq!(access["service"], "backend");
    assert_eq!(access["route"], "/v1/tasks");

    // The outbox event carries the trace context for the relay to continue.
    let headers: Value = sqlx::query_scalar("SELECT headers FROM backend.outbox WHERE payload->>'subject' = $1")
        .bind(task["id"].as_str().expect("id"))
        .fetch_one(&backend.db.pool())
        .await
        .expect("outbox row");
    let traceparent = headers["traceparent"].as_str().expect("traceparent header");
    assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");

    // SIGTERM: drain, flush, exit cleanly.
    let status = backend.process.terminate(Duration::from_secs(30)).await.expect("terminates");
    assert!(status.success(), "exit status {status}");
    assert!(backend.log_lines().iter().any(|line| line["message"] == "backend stopped"));
}

#[tokio::test]
async fn secrets_and_personal_data_never_reach_the_logs() {
    let mut backend = Backend::start(&[("RUST_LOG", "debug")]).await;
    let client = reqwest::Client::new();
    let alice = token("alice");
    let email = "alice.private@example.org";

    let response = client
        .put(backend.url("/v1/me/notification-settings"))
        .bearer_auth(&alice)
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("put settings");
    assert_eq!(response.status(), StatusCode::OK);
    // Failing requests are where details tend to get logged: a bad e-mail, a malformed body, a forged token.
    let response = client
        .put(backend.url("/v1/me/notification-settings"))
        .bearer_auth(&alice)
        .json(&json!({ "email": "not-an-email-but-private@x" }))
        .send()
        .await
        .expect("bad settings");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = client
        .post(backend.url("/v1/tasks"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(format!("{{\"title\": \"mail {email}\", "))
        .send()
        .await
        .expect("malformed body");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    let response = client.get(backend.url("/v1/tasks")).bearer_auth(&forged).send().await.expect("forged");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let status = backend.process.terminate(Duration::from_secs(30)).await.expect("terminates");
    assert!(status.success());

    let output = backend.all_output();
    // The requests were logged (so the search below searched something)...
    assert!(output.matches("request completed").count() >= 4, "access lines missing:\n{output}");
    // ...but never the credentials or the address.
    let signature = alice.rsplit('.').next().expect("signature");
    for secret in
        [alice.as_str(), forged.as_str(), signature, email, "not-an-email-but-private@x", crate::spawned::JWT_SECRET]
    {
        assert!(!output.contains(secret), "`{secret}` leaked into the logs");
    }
    assert!(!output.contains(backend.db.url()), "the database URL leaked into the logs");
}

#[tokio::test]
async fn probes_and_scrapes_produce_no_spans_even_when_the_caller_samples_them() {
    let receiver = testkit::otlp::OtlpReceiver::start().await.expect("OTLP receiver");
    let endpoint = receiver.endpoint();
    let backend = Backend::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("RUST_LOG", "debug"),
    ])
    .await;
    let client = reqwest::Client::new();
    // A sampled parent: any span these requests got would be recorded and exported.
    let probe_trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{probe_trace}-00f067aa0ba902b7-01");
    for _ in 0..3 {
        for path in ["/health/live", "/health/ready", "/health/startup", "/metrics"] {
            let response =
                client.get(backend.url(path)).header("traceparent", &traceparent).send().await.expect("probe");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
    // Spans are exported in the order they end: once this request's span arrived, any probe span would have too.
    let response = client.get(backend.url("/v1/tasks")).bearer_auth(token("alice")).send().await.expect("list request");
    assert_eq!(response.status(), StatusCode::OK);
    receiver
        .wait_for_span(|span| span.name == "GET /v1/tasks", Duration::from_secs(30))
        .await
        .expect("the API request's span reached the collector");

    let spans = receiver.spans();
    let probe_spans: Vec<&str> = spans
        .iter()
        .filter(|span| {
            span.trace_id_hex == probe_trace || span.name.contains("/health") || span.name.contains("/metrics")
        })
        .map(|span| span.name.as_str())
        .collect();
    assert!(probe_spans.is_empty(), "probes and scrapes made spans: {probe_spans:?}");
    // Their metrics are kept.
    let metrics = client.get(backend.url("/metrics")).send().await.expect("scrape").text().await.expect("text");
    let probes = testkit::exposition::metric_sum(
        &metrics,
        "http_server_request_duration_seconds_count",
        &[("http_route", "/health/live")],
    );
    assert_eq!(probes, Some(3.0), "the probes' requests are still counted");
}
