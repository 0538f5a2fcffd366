//! The real binary against a real broker (tansu) and the real backend (in process, see `support`): a completion
//! the backend wrote is consumed while the backend is down, so the call fails and is retried (the breaker opens,
//! visible in `/metrics`) and the occurrence is created once the backend is back, in the trace of the request
//! that completed the task; a redelivered event creates nothing new; SIGTERM stops the service cleanly.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use events::topics::TASK_EVENTS;
use messaging::{KafkaConfig, MessageHeaders, OutgoingMessage, Producer};
use reqwest::StatusCode;
use serde_json::Value;
use support::{NEXT_DUE, RealBackend, SERVICE_TOKEN, daily_task, trace_id};
use testkit::exposition::series_value;
use testkit::kafka::Broker;
use testkit::process::ChildGuard;

/// Generous for a loaded 2-core machine; passing tests never get near it.
const TIMEOUT: Duration = Duration::from_secs(90);

struct Service {
    process: ChildGuard,
    base_url: String,
}

async fn start_service(broker: &Broker, backend_url: &str) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recurring-task"));
    command
        .env_clear()
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("KAFKA_TOPIC_PARTITIONS", "1")
        .env("KAFKA_COMMIT_INTERVAL", "200ms")
        .env("KAFKA_RETRY_BACKOFF_INITIAL", "100ms")
        .env("KAFKA_RETRY_BACKOFF_MAX", "500ms")
        .env("BACKEND_URL", backend_url)
        .env("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN)
        .env("BACKEND_MAX_RETRIES", "0")
        .env("BACKEND_BREAKER_FAILURE_THRESHOLD", "2")
        // Longer than the longest retry backoff, so retries land in the open window and are rejected unsent.
        .env("BACKEND_BREAKER_OPEN_FOR", "2s")
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
    (response.status(), response.text().await.unwrap())
}

impl Service {
    async fn metrics(&self) -> String {
        get(&format!("{}/metrics", self.base_url)).await.1
    }

    /// Waits until `series` reaches at least `value`.
    async fn wait_for_sample(&self, series: &str, value: f64, what: &str) {
        testkit::wait::until(TIMEOUT, || async { series_value(&self.metrics().await, series) >= Some(value) })
            .await
            .unwrap_or_else(|_| panic!("{what}: {series} never reached {value}"));
    }
}

const CREATED: &str = "taskwatch_recurring_occurrences_created_total";
const UNAVAILABLE: &str = r#"taskwatch_recurring_failures_total{reason="backend_unavailable"}"#;
const CIRCUIT_OPEN: &str = r#"taskwatch_recurring_failures_total{reason="circuit_open"}"#;
const OPENED: &str = r#"taskwatch_circuit_breaker_transitions_total{downstream="backend",to_state="open"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_survives_a_backend_outage_and_redelivery_creates_nothing_new() {
    support::record_traces();
    let broker = Broker::start().await.unwrap();
    let mut backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    let completing_trace = backend.traceparent(completed.id(), "task.completed.v1").await.expect("trace context");
    backend.stop().await;
    let mut service = start_service(&broker, &backend.base_url()).await;
    testkit::wait::until(TIMEOUT, || async {
        get(&format!("{}/health/startup", service.base_url)).await.0.is_success()
    })
    .await
    .expect("the service starts once its topics exist");

    // The completion as the backend's relay publishes it: the outbox row's payload keyed (here) by the series, its
    // stored trace context parenting the producer span.
    let producer =
        Producer::new(&KafkaConfig::new(broker.bootstrap().parse().unwrap(), "recurring-task-test")).unwrap();
    let message = OutgoingMessage::new(TASK_EVENTS, completed.series_id(), completed.event.to_bytes().unwrap())
        .with_headers(MessageHeaders::new().with("traceparent", completing_trace.as_str()));
    producer.send(message.clone()).await.unwrap();

    service.wait_for_sample(UNAVAILABLE, 2.0, "calls to the stopped backend fail").await;
    service.wait_for_sample(OPENED, 1.0, "the breaker opens").await;
    service.wait_for_sample(CIRCUIT_OPEN, 1.0, "the open circuit rejects retries unsent").await;
    assert_eq!(series_value(&service.metrics().await, CREATED), Some(0.0));

    backend.restart().await;
    service.wait_for_sample(CREATED, 1.0, "the occurrence is created after the backend recovers").await;
    let occurrences = backend.open_occurrences(completed.series_id()).await;
    assert_eq!(occurrences.len(), 1, "{occurrences:?}");
    assert_eq!(occurrences[0]["due_at"], NEXT_DUE, "09:00 Berlin after spring-forward");
    // The service continued the consumed trace into its call, and the backend continued it into the creation.
    let creating_trace = backend.traceparent(occurrences[0]["id"].as_str().unwrap(), "task.created.v1").await;
    assert_eq!(creating_trace.as_deref().map(trace_id), Some(trace_id(&completing_trace)));

    // The broker delivers the same event again (e.g. after a rebalance); the backend replays its answer.
    producer.send(message).await.unwrap();
    service.wait_for_sample(CREATED, 2.0, "the redelivered event is handled").await;
    assert_eq!(backend.open_occurrences(completed.series_id()).await, occurrences, "nothing new was created");

    let metrics = service.metrics().await;
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
