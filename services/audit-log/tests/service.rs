//! The real binary against a real Postgres and a real broker (tansu): the three probes answer; every change of a
//! task is recorded once, with what it changed, however often it is delivered; the internal API serves the
//! history to the service credential only, and only the owner's; records cannot be updated; retention deletes
//! what is older than `AUDIT_RETENTION`; SIGTERM stops it cleanly; bad configuration exits 78 naming every
//! variable. Expected field changes are written out by hand from the events sent, not computed.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use events::CloudEvent;
use events::task::{TaskChange, TaskEvent, TaskSnapshot, TaskStatus};
use messaging::{KafkaConfig, OutgoingMessage, Producer};
use serde_json::{Value, json};
use testkit::exposition::series_value;
use testkit::kafka::Broker;
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;
use uuid::Uuid;

use audit_log::app::SOURCE_TOPIC;
use audit_log::metrics::{RECORDS_EXPIRED_TOTAL, TASK_EVENTS_TOTAL};

/// Generous for a loaded 2-core machine; passing tests never get near it.
const TIMEOUT: Duration = Duration::from_secs(90);
/// The internal API's credential in these tests.
const SERVICE_TOKEN: &str = "audit-log-test-service-token-0123456789";

struct Service {
    process: ChildGuard,
    base_url: String,
}

async fn start_service(database: &TestDatabase, broker: &Broker) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-log"));
    command
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("KAFKA_TOPIC_PARTITIONS", "1")
        .env("KAFKA_COMMIT_INTERVAL", "200ms")
        .env("KAFKA_RETRY_BACKOFF_INITIAL", "100ms")
        .env("KAFKA_RETRY_BACKOFF_MAX", "500ms")
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("OTEL_SDK_DISABLED", "true")
        .env("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN)
        .env("AUDIT_RETENTION", "1d")
        .env("AUDIT_RETENTION_INTERVAL", "200ms")
        .env("RUST_LOG", "info,librdkafka=warn");
    let process = ChildGuard::spawn("audit-log", command).unwrap();
    let line = process.wait_for_line(|line| line.contains("\"listening\""), TIMEOUT).await.expect("listening line");
    let address = serde_json::from_str::<Value>(&line).unwrap()["address"].as_str().unwrap().to_owned();
    Service { process, base_url: format!("http://{address}") }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn counter(service: &Service, series: &str) -> Option<f64> {
    let (_, metrics) = get(&format!("{}/metrics", service.base_url)).await;
    series_value(&metrics, series)
}

async fn outcome_count(service: &Service, outcome: &str) -> Option<f64> {
    // Concatenated: the braces of a label set would need escaping in a format string.
    counter(service, &[TASK_EVENTS_TOTAL, "{outcome=\"", outcome, "\"}"].concat()).await
}

/// `GET /internal/v1/tasks/{task}/history?owner_id={owner}` with `token`: the status and the body.
async fn history(service: &Service, task: &str, owner: Option<&str>, token: Option<&str>) -> (u16, Value) {
    let mut url = format!("{}/internal/v1/tasks/{task}/history", service.base_url);
    if let Some(owner) = owner {
        url.push_str(&format!("?owner_id={owner}"));
    }
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Alice's history of `task_id` once it has `count` entries.
async fn history_of(service: &Service, task_id: Uuid, count: usize) -> Vec<Value> {
    testkit::wait::until_some(TIMEOUT, || async {
        let (status, body) = history(service, &task_id.to_string(), Some("alice"), Some(SERVICE_TOKEN)).await;
        let entries = body["entries"].as_array().cloned().unwrap_or_default();
        (status == 200 && entries.len() == count).then_some(entries)
    })
    .await
    .unwrap_or_else(|_| panic!("{count} entries of {task_id}"))
}

/// Alice's open task, version 1, with a fresh id (the shared fixture every test starts from).
fn task() -> TaskSnapshot {
    events::fixtures::task()
}

fn message(change: TaskChange, task: &TaskSnapshot) -> (CloudEvent<TaskEvent>, OutgoingMessage) {
    let event = TaskEvent { change, task: task.clone() }.into_cloud_event();
    let message = OutgoingMessage::event(SOURCE_TOPIC, event.data.partition_key(), &event).unwrap();
    (event, message)
}

fn changes(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|entry| entry["change"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_recorded_once_with_what_it_changed_and_served_only_to_the_owner() {
    let database = TestDatabase::new().await.unwrap();
    let broker = Broker::start().await.unwrap();
    let mut service = start_service(&database, &broker).await;
    testkit::wait::until(TIMEOUT, || async { get(&format!("{}/health/ready", service.base_url)).await.0 == 200 })
        .await
        .expect("ready once Postgres and the broker answer");
    testkit::wait::until(TIMEOUT, || async { get(&format!("{}/health/startup", service.base_url)).await.0 == 200 })
        .await
        .expect("started once migrations ran and the topics exist");
    assert_eq!(get(&format!("{}/health/live", service.base_url)).await.0, 200);
    let (_, ready) = get(&format!("{}/health/ready", service.base_url)).await;
    for check in ["postgres", "kafka"] {
        assert!(ready.contains(check), "{check} missing from {ready}");
    }
    let producer = Producer::new(&KafkaConfig::new(broker.bootstrap().parse().unwrap(), "service-test")).unwrap();

    // Created, renamed, completed; the rename and the completion each delivered twice.
    let created = task();
    let renamed = TaskSnapshot { title: "Water the garden".into(), version: 2, ..created.clone() };
    let done_at = Utc::now().trunc_subsecs(6);
    let completed =
        TaskSnapshot { status: TaskStatus::Completed, completed_at: Some(done_at), version: 3, ..renamed.clone() };
    let (created_event, created_message) = message(TaskChange::Created, &created);
    let (_, renamed_message) = message(TaskChange::Updated, &renamed);
    let (_, completed_message) = message(TaskChange::Completed, &completed);
    for message in
        [created_message, renamed_message.clone(), renamed_message, completed_message.clone(), completed_message]
    {
        producer.send(message).await.unwrap();
    }
    let entries = history_of(&service, created.id, 3).await;
    testkit::wait::until(TIMEOUT, || async { outcome_count(&service, "duplicate").await == Some(2.0) })
        .await
        .expect("both second copies are consumed");
    assert_eq!(outcome_count(&service, "applied").await, Some(3.0));
    assert_eq!(history_of(&service, created.id, 3).await, entries, "a redelivery added nothing");

    assert_eq!(changes(&entries), ["created", "updated", "completed"]);
    assert_eq!(entries[0]["event_id"], created_event.id.to_string());
    assert_eq!(entries[0]["fields"]["title"], json!({ "before": null, "after": "Water the plants" }));
    assert_eq!(entries[0]["fields"]["owner_id"], json!({ "before": null, "after": "alice" }));
    assert_eq!(entries[1]["fields"], json!({ "title": { "before": "Water the plants", "after": "Water the garden" } }));
    assert_eq!(
        entries[2]["fields"],
        json!({
            "status": { "before": "open", "after": "completed" },
            "completed_at": { "before": null, "after": serde_json::to_value(done_at).unwrap() },
        })
    );
    for entry in &entries {
        assert_eq!((entry["actor"].as_str(), entry["before_known"].as_bool()), (Some("alice"), Some(true)));
    }
    assert_eq!(entries.iter().map(|entry| entry["task_version"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);

    // Deleted: every field it had, gone.
    producer.send(message(TaskChange::Deleted, &completed).1).await.unwrap();
    let entries = history_of(&service, created.id, 4).await;
    assert_eq!(entries[3]["change"], "deleted");
    assert_eq!(entries[3]["fields"]["title"], json!({ "before": "Water the garden", "after": null }));

    // Only the owner's, only with the credential, only for a well-formed request.
    let task_id = created.id.to_string();
    assert_eq!(history(&service, &task_id, Some("bob"), Some(SERVICE_TOKEN)).await, (200, json!({ "entries": [] })));
    for token in [None, Some("alice-user-token"), Some("audit-log-test-service-token-012345678")] {
        let (status, body) = history(&service, &task_id, Some("alice"), token).await;
        assert_eq!((status, body["status"].as_u64()), (401, Some(401)), "{token:?}: {body}");
    }
    assert_eq!(history(&service, "not-a-uuid", Some("alice"), Some(SERVICE_TOKEN)).await.0, 400);
    assert_eq!(history(&service, &task_id, None, Some(SERVICE_TOKEN)).await.0, 400);

    // Append-only: the database itself refuses to change a record.
    let rewrite = sqlx::query("UPDATE audit_log.task_changes SET actor = 'mallory' WHERE task_id = $1")
        .bind(created.id)
        .execute(&database.pool())
        .await
        .expect_err("an update is refused");
    assert!(rewrite.to_string().contains("append-only"), "{rewrite}");

    let status = service.process.terminate(TIMEOUT).await.unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_older_than_the_retention_are_deleted_and_recent_ones_kept() {
    let database = TestDatabase::new().await.unwrap();
    let broker = Broker::start().await.unwrap();
    let service = start_service(&database, &broker).await;
    testkit::wait::until(TIMEOUT, || async { get(&format!("{}/health/startup", service.base_url)).await.0 == 200 })
        .await
        .expect("started");
    let producer = Producer::new(&KafkaConfig::new(broker.bootstrap().parse().unwrap(), "service-test")).unwrap();
    // Made two days ago (the service keeps one day), and one made now.
    let (old, recent) = (task(), task());
    let (mut old_event, _) = message(TaskChange::Created, &old);
    old_event.time = Utc::now() - chrono::Duration::days(2);
    let old_message = OutgoingMessage::event(SOURCE_TOPIC, old_event.data.partition_key(), &old_event).unwrap();
    producer.send(old_message).await.unwrap();
    producer.send(message(TaskChange::Created, &recent).1).await.unwrap();

    history_of(&service, recent.id, 1).await;
    testkit::wait::until(TIMEOUT, || async { counter(&service, RECORDS_EXPIRED_TOTAL).await == Some(1.0) })
        .await
        .expect("the old record is deleted");
    assert_eq!(outcome_count(&service, "applied").await, Some(2.0), "both were recorded first");
    assert_eq!(
        history(&service, &old.id.to_string(), Some("alice"), Some(SERVICE_TOKEN)).await.1["entries"],
        json!([])
    );
    assert_eq!(history_of(&service, recent.id, 1).await[0]["change"], "created");
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_every_variable() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-log"));
    command.env_clear().env("STARTUP_TIMEOUT", "soon");
    let mut process = ChildGuard::spawn("audit-log", command).unwrap();
    let status = process.wait_for_exit(TIMEOUT).await.unwrap().expect("exits by itself");
    assert_eq!(status.code(), Some(78));
    let stderr = process.stderr_lines().join("\n");
    for name in ["DATABASE_URL", "KAFKA_BROKERS", "STARTUP_TIMEOUT"] {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
}
