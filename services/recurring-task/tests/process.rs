//! The real binary against a real broker (tansu) and the stand-in backend: a completion event on
//! `task-events` becomes one idempotent create call; while the backend fails, the event is retried (the
//! breaker opens, visible in `/metrics`) and the occurrence is created once it recovers; a redelivered event
//! carries the same `Idempotency-Key`; SIGTERM stops the service cleanly.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use events::task::TaskChange;
use events::topics::TASK_EVENTS;
use messaging::{KafkaConfig, OutgoingMessage, Producer};
use serde_json::Value;
use support::{StandIn, TOKEN};
use testkit::kafka::Broker;
use testkit::process::ChildGuard;

/// Generous for a loaded 2-core machine; passing tests never get near it.
const TIMEOUT: Duration = Duration::from_secs(90);

struct Service {
    process: ChildGuard,
    base_url: String,
}

async fn start_service(broker: &Broker, backend: &StandIn) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recurring-task"));
    command
        .env_clear()
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("KAFKA_TOPIC_PARTITIONS", "1")
        .env("KAFKA_COMMIT_INTERVAL", "200ms")
        .env("KAFKA_RETRY_BACKOFF_INITIAL", "100ms")
        .env("KAFKA_RETRY_BACKOFF_MAX", "500ms")
        .env("BACKEND_URL", &backend.base_url)
        .env("INTERNAL_SERVICE_TOKEN", TOKEN)
        .env("BACKEND_MAX_RETRIES", "0")
        .env("BACKEND_BREAKER_FAILURE_THRESHOLD", "2")
        .env("BACKEND_BREAKER_OPEN_FOR", "500ms")
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("OTEL_SDK_DISABLED", "true")
        .env("RUST_LOG", "info,librdkafka=warn");
    let process = ChildGuard::spawn("recurring-task", command).unwrap();
    let line = process.wait_for_line(|line| line.contains("\"listening\""), TIMEOUT).await.expect("listening line");
    let address = serde_json::from_str::<Value>(&line).unwrap()["address"].as_str().unwrap().to_owned();
    Service { process, base_url: format!("http://{address}") }
}

async fn get(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.text().await.unwrap())
}

/// The value of the first sample of `series` (name with labels, exactly as rendered), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_survives_a_backend_outage_and_redelivery_reuses_the_key() {
    let broker = Broker::start().await.unwrap();
    let backend = StandIn::start().await;
    // Down for three calls (two open the breaker, one failed trial while half-open), then back.
    backend.answer(&[StatusCode::SERVICE_UNAVAILABLE; 3]);
    backend.answer(&[StatusCode::CREATED; 2]);
    let mut service = start_service(&broker, &backend).await;
    testkit::wait::until(TIMEOUT, || async {
        get(&format!("{}/health/startup", service.base_url)).await.0.is_success()
    })
    .await
    .expect("the service starts once its topics exist");

    let completed = support::task_event(TaskChange::Completed, Some("FREQ=DAILY"));
    let producer =
        Producer::new(&KafkaConfig::new(broker.bootstrap().parse().unwrap(), "recurring-task-test")).unwrap();
    let message = OutgoingMessage::event(TASK_EVENTS, completed.data.partition_key(), &completed).unwrap();
    producer.send(message.clone()).await.unwrap();

    testkit::wait::until(TIMEOUT, || async { backend.seen().iter().any(|seen| seen.status == StatusCode::CREATED) })
        .await
        .expect("the occurrence is created after the backend recovers");
    // The broker delivers the same event again (e.g. after a rebalance).
    producer.send(message).await.unwrap();
    testkit::wait::until(TIMEOUT, || async {
        backend.seen().iter().filter(|seen| seen.status == StatusCode::CREATED).count() == 2
    })
    .await
    .expect("the redelivered event is handled too");

    let seen = backend.seen();
    assert_eq!(seen.len(), 5, "three failures, then one call per delivery: {seen:?}");
    for request in &seen {
        assert_eq!(request.headers["idempotency-key"], completed.id.to_string().as_str());
        assert_eq!(request.body["due_at"], "2026-03-29T07:00:00Z", "09:00 Berlin after spring-forward");
        // The call runs inside the consumer's span, so the backend continues the trace.
        assert!(request.headers.contains_key("traceparent"), "{:?}", request.headers);
    }

    let (_, metrics) = get(&format!("{}/metrics", service.base_url)).await;
    assert_eq!(sample(&metrics, "taskwatch_recurring_occurrences_created_total"), Some(2.0), "{metrics}");
    assert_eq!(sample(&metrics, r#"taskwatch_recurring_failures_total{reason="backend_unavailable"}"#), Some(3.0));
    assert!(sample(&metrics, r#"taskwatch_recurring_failures_total{reason="circuit_open"}"#) > Some(0.0), "{metrics}");
    assert!(
        sample(&metrics, r#"taskwatch_circuit_breaker_transitions_total{downstream="backend",to_state="open"}"#)
            >= Some(2.0),
        "{metrics}"
    );
    assert!(metrics.contains("taskwatch_recurrence_calculation_duration_seconds_bucket"), "{metrics}");

    let status = service.process.terminate(TIMEOUT).await.unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_every_variable() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recurring-task"));
    command.env_clear().env("BACKEND_TIMEOUT", "0s");
    let mut process = ChildGuard::spawn("recurring-task", command).unwrap();
    let status = process.wait_for_exit(TIMEOUT).await.unwrap().expect("exits by itself");
    assert_eq!(status.code(), Some(78));
    let stderr = process.stderr_lines().join("\n");
    for name in ["KAFKA_BROKERS", "BACKEND_URL", "INTERNAL_SERVICE_TOKEN", "BACKEND_TIMEOUT"] {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
}
