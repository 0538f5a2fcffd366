//! The real binary against a real Postgres and a real broker (tansu): a task created with a reminder already due
//! becomes exactly one `reminder.due.v1` on `reminders` with the task's fields and a trace context continuing the
//! task event's trace, however often the task event is delivered; probes and metrics answer; SIGTERM stops it
//! cleanly; bad configuration exits 78.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use events::reminder::{REMINDER_DUE_V1, ReminderDue};
use events::task::{Reminder, TaskChange};
use events::topics::{REMINDERS, TASK_EVENTS};
use messaging::{Consumer, HandlerError, IncomingMessage, KafkaConfig, OutgoingMessage, Producer, Subscription};
use observability::Shutdown;
use serde_json::Value;
use support::{Db, minutes, now, task};
use testkit::collected::Collected;
use testkit::exposition::series_value;
use testkit::kafka::Broker;
use testkit::process::ChildGuard;

/// Generous for a loaded 2-core machine; passing tests never get near it.
const TIMEOUT: Duration = Duration::from_secs(90);

struct Service {
    process: ChildGuard,
    base_url: String,
}

async fn start_service(db: &Db, broker: &Broker) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reminder"));
    command
        .env_clear()
        .env("DATABASE_URL", db.database.url())
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("KAFKA_TOPIC_PARTITIONS", "1")
        .env("KAFKA_COMMIT_INTERVAL", "200ms")
        .env("KAFKA_RETRY_BACKOFF_INITIAL", "100ms")
        .env("KAFKA_RETRY_BACKOFF_MAX", "500ms")
        .env("REMINDER_POLL_INTERVAL", "200ms")
        .env("OUTBOX_RELAY_POLL_INTERVAL", "200ms")
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("OTEL_SDK_DISABLED", "true")
        .env("RUST_LOG", "info,librdkafka=warn");
    let process = ChildGuard::spawn("reminder", command).unwrap();
    let line = process.wait_for_line(|line| line.contains("\"listening\""), TIMEOUT).await.expect("listening line");
    let address = serde_json::from_str::<Value>(&line).unwrap()["address"].as_str().unwrap().to_owned();
    Service { process, base_url: format!("http://{address}") }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Collects everything published to `reminders` (a consumer group of its own) until dropped.
struct ReminderReader {
    seen: Arc<Collected<IncomingMessage>>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl ReminderReader {
    fn start(broker: &Broker) -> Self {
        let config = KafkaConfig::new(broker.bootstrap().parse().unwrap(), "reminder-test-reader");
        let subscription = Subscription::new([REMINDERS], "reminders.test-reader.dlq").unwrap();
        let consumer = Consumer::new(&config, subscription).unwrap();
        let seen = Arc::new(Collected::new());
        let shutdown = Shutdown::new();
        let into = Arc::clone(&seen);
        let task = tokio::spawn(consumer.run(
            move |message: IncomingMessage| {
                into.push(message);
                async { Ok::<(), HandlerError>(()) }
            },
            shutdown.clone(),
        ));
        Self { seen, shutdown, task }
    }

    fn due_for(&self, task_id: uuid::Uuid) -> Vec<IncomingMessage> {
        self.seen.snapshot().into_iter().filter(|message| message.event.subject == task_id.to_string()).collect()
    }

    async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(TIMEOUT, self.task).await.expect("reader stops").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_reminder_is_published_once_with_its_trace() {
    let db = Db::migrated().await;
    let broker = Broker::start().await.unwrap();
    let mut service = start_service(&db, &broker).await;
    testkit::wait::until(TIMEOUT, || async { get(&format!("{}/health/ready", service.base_url)).await.0 == 200 })
        .await
        .expect("ready once Postgres and the broker answer");
    let reader = ReminderReader::start(&broker);
    let producer = Producer::new(&KafkaConfig::new(broker.bootstrap().parse().unwrap(), "reminder-test")).unwrap();

    // Due in 30 s with a reminder one minute before: already late, so it fires at once.
    let due_at = now() + chrono::TimeDelta::seconds(30);
    let created = task(Some(due_at), vec![Reminder::BeforeDue { minutes: 1 }]);
    let event = support::event(TaskChange::Created, &created);
    let message = OutgoingMessage::event(TASK_EVENTS, event.data.partition_key(), &event)
        .unwrap()
        .with_headers(support::trace_headers());
    producer.send(message.clone()).await.unwrap();

    let fired = reader
        .seen
        .wait_for(|message| message.event.subject == created.id.to_string(), TIMEOUT)
        .await
        .expect("the reminder is published");
    assert_eq!(fired.event.event_type, REMINDER_DUE_V1);
    assert_eq!(fired.key.as_deref(), Some(created.id.to_string().as_bytes()));
    let due: ReminderDue = serde_json::from_value(fired.event.data.clone()).unwrap();
    assert_eq!(due.task_id, created.id);
    assert_eq!(due.owner_id, "alice");
    assert_eq!(due.title, "Water the plants");
    assert_eq!(due.due_at, Some(due_at));
    assert_eq!(due.remind_at, due_at - minutes(1));
    // The producer span of the relay continues the task event's trace.
    let traceparent = fired.headers.get_str("traceparent").expect("a traceparent header");
    assert!(traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{traceparent}");

    // The same task event delivered again, then a marker task behind it on the same partition: once the marker's
    // reminder is out, the duplicate was processed, and it fired nothing.
    producer.send(message).await.unwrap();
    let marker = task(None, vec![Reminder::At { at: now() }]);
    let marker_event = support::event(TaskChange::Created, &marker);
    producer
        .send(OutgoingMessage::event(TASK_EVENTS, marker_event.data.partition_key(), &marker_event).unwrap())
        .await
        .unwrap();
    reader
        .seen
        .wait_for(|message| message.event.subject == marker.id.to_string(), TIMEOUT)
        .await
        .expect("the marker's reminder is published");
    assert_eq!(reader.due_for(created.id).len(), 1, "one reminder.due per job");

    let (_, metrics) = get(&format!("{}/metrics", service.base_url)).await;
    assert_eq!(series_value(&metrics, "taskwatch_reminders_fired_total"), Some(2.0), "{metrics}");
    assert_eq!(series_value(&metrics, "taskwatch_reminders_missed_total"), Some(0.0), "{metrics}");
    assert_eq!(
        series_value(&metrics, r#"taskwatch_reminder_task_events_total{outcome="duplicate"}"#),
        Some(1.0),
        "{metrics}"
    );
    for name in [
        "taskwatch_reminder_jobs_pending",
        "taskwatch_reminder_fire_delay_seconds_bucket",
        "taskwatch_outbox_publish_lag_seconds_bucket",
        "db_client_connection_max",
        r#"taskwatch_health_check_status{check="kafka"}"#,
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }

    reader.stop().await;
    let status = service.process.terminate(TIMEOUT).await.unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_every_variable() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reminder"));
    command.env_clear().env("REMINDER_MAX_LATENESS", "0s");
    let mut process = ChildGuard::spawn("reminder", command).unwrap();
    let status = process.wait_for_exit(TIMEOUT).await.unwrap().expect("exits by itself");
    assert_eq!(status.code(), Some(78));
    let stderr = process.stderr_lines().join("\n");
    for name in ["DATABASE_URL", "KAFKA_BROKERS", "REMINDER_MAX_LATENESS"] {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
}
