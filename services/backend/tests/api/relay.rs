//! The outbox relay against a real broker (tansu): rows are published with their key and trace headers and
//! marked; a broker outage leaves the API working and the rows waiting; two relays never share a row.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use backend::config::RelayConfig;
use backend::store::outbox::{self, OutboxMessage};
use messaging::test_util::TopicReader;
use messaging::{IncomingMessage, KafkaConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::kafka::Broker;

use crate::harness::TestApp;

const TOPIC: &str = "task-events";
const DEADLINE: Duration = Duration::from_secs(60);

fn relay_config(broker: &Broker) -> RelayConfig {
    let mut kafka = KafkaConfig::new(broker.bootstrap().parse().expect("bootstrap"), "backend");
    // Short timeouts so an outage shows up as failed attempts within seconds.
    kafka.delivery_timeout = Duration::from_secs(2);
    kafka.request_timeout = Duration::from_secs(2);
    RelayConfig {
        kafka,
        batch_size: 50,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        retention: Duration::from_secs(3600),
    }
}

async fn broker() -> Broker {
    let broker = Broker::start().await.expect("start tansu");
    broker.create_topic(TOPIC, 3).await.expect("create topic");
    broker
}

/// Reads `task-events` from the beginning in its own consumer group.
fn reader(broker: &Broker) -> TopicReader {
    let mut config = KafkaConfig::new(broker.bootstrap().parse().expect("bootstrap"), "relay-test-reader");
    config.session_timeout = Duration::from_secs(6);
    TopicReader::start(&config, TOPIC).expect("reader")
}

async fn unpublished(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM backend.outbox WHERE published_at IS NULL").await
}

async fn wait_until_all_published(app: &TestApp) {
    if testkit::wait::until(DEADLINE, || async { unpublished(app).await == 0 }).await.is_err() {
        let rows: Vec<(i32, Option<String>, bool)> = sqlx::query_as(
            "SELECT attempts, last_error, claimed_until > now() FROM backend.outbox WHERE published_at IS NULL",
        )
        .fetch_all(&app.pool())
        .await
        .expect("rows");
        panic!("rows still unpublished: {rows:?}");
    }
}

#[tokio::test]
async fn publishes_outbox_rows_with_key_and_trace_headers_in_order_and_marks_them() {
    let broker = broker().await;
    let mut reader = reader(&broker);
    let app = TestApp::start_with(|config| config.outbox_relay = Some(relay_config(&broker))).await;

    // A row stored with a trace context, as a traced request leaves it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = OutboxMessage {
        id: uuid::Uuid::now_v7(),
        topic: TOPIC,
        key: "traced-key".into(),
        event_type: "task.created.v1".into(),
        payload: json!({ "specversion": "1.0", "id": "placeholder" }),
        headers: BTreeMap::from([("traceparent".to_owned(), format!("00-{trace_id}-00f067aa0ba902b7-01"))]),
        created_at: chrono::Utc::now(),
    };
    let traced = OutboxMessage {
        payload: json!({
            "specversion": "1.0", "id": traced.id, "source": "/taskwatch/backend", "type": "task.created.v1",
            "time": traced.created_at, "subject": "traced", "datacontenttype": "application/json", "data": {}
        }),
        ..traced
    };
    let mut conn = app.pool().acquire().await.expect("connection");
    outbox::insert(&mut conn, &traced).await.expect("insert");
    drop(conn);

    // Through the API: one task created and completed (one key, two events), another created.
    let task = app.create_simple_task("alice", "Relayed").await;
    let id = task["id"].as_str().expect("id");
    let completed = app.as_user("alice", Method::POST, &format!("/v1/tasks/{id}/complete")).send().await;
    assert_eq!(completed.expect("complete").status(), StatusCode::OK);
    app.create_simple_task("bob", "Also relayed").await;

    let messages = reader.take(4, DEADLINE).await.expect("messages arrive in time");
    wait_until_all_published(&app).await;
    let rows: Vec<(uuid::Uuid, String, serde_json::Value, bool)> = sqlx::query_as(
        "SELECT id, message_key, payload, claimed_until IS NULL FROM backend.outbox WHERE published_at IS NOT NULL",
    )
    .fetch_all(&app.pool())
    .await
    .expect("rows");
    assert_eq!(rows.len(), 4);
    let by_id: HashMap<String, &IncomingMessage> = messages.iter().map(|m| (m.event.id.to_string(), m)).collect();
    assert_eq!(by_id.len(), 4, "each event once");
    for (row_id, key, payload, lease_ended) in &rows {
        let message = by_id.get(&row_id.to_string()).unwrap_or_else(|| panic!("row {row_id} not consumed"));
        assert!(lease_ended);
        assert_eq!(message.key.as_deref(), Some(key.as_bytes()), "keyed by the row's key");
        assert_eq!(message.event.event_type, payload["type"].as_str().expect("type"));
        assert_eq!(Some(message.event.subject.as_str()), payload["subject"].as_str());
        assert_eq!(serde_json::to_value(&message.event).expect("event json"), *payload, "the outbox payload");
    }
    let traced_message = by_id[&traced.id.to_string()];
    let traceparent = traced_message.headers.get_str("traceparent").expect("traceparent header");
    assert_eq!(traceparent.split('-').nth(1), Some(trace_id), "the stored trace continues: {traceparent}");

    // One task's events arrive in the order they were written.
    let of_task: Vec<&str> =
        messages.iter().filter(|m| m.event.subject == id).map(|m| m.event.event_type.as_str()).collect();
    assert_eq!(of_task, ["task.created.v1", "task.completed.v1"]);

    assert!(reader.extra(Duration::from_secs(1)).await.is_empty(), "nothing is published twice");
    let metrics = app.request(Method::GET, "/metrics").send().await.expect("metrics").text().await.expect("text");
    for name in [
        "taskwatch_outbox_pending_events",
        "taskwatch_outbox_publish_lag_seconds_count",
        "taskwatch_outbox_publish_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    reader.stop().await;
}

#[tokio::test]
async fn broker_outage_leaves_the_api_working_and_rows_waiting_until_it_returns() {
    let mut broker = broker().await;
    let app = TestApp::start_with(|config| config.outbox_relay = Some(relay_config(&broker))).await;
    // The relay is up (topics checked) once a first event went through.
    app.create_simple_task("alice", "Before the outage").await;
    wait_until_all_published(&app).await;

    broker.pause().expect("pause broker");
    let mut ids = Vec::new();
    for n in 0..5 {
        let started = std::time::Instant::now();
        let task = app.create_simple_task("alice", &format!("During the outage {n}")).await;
        assert!(started.elapsed() < Duration::from_secs(1), "the API does not wait for the broker");
        ids.push(task["id"].as_str().expect("id").to_owned());
    }
    // The relay tries, fails, and records why; nothing is marked published.
    testkit::wait::until(DEADLINE, || async {
        app.count("SELECT count(*) FROM backend.outbox WHERE attempts > 0 AND last_error IS NOT NULL").await > 0
    })
    .await
    .expect("failed attempts recorded");
    assert_eq!(unpublished(&app).await, 5);

    broker.resume().expect("resume broker");
    wait_until_all_published(&app).await;
    let mut reader = reader(&broker);
    let mut delivered = reader.take(6, DEADLINE).await.expect("messages arrive in time");
    delivered.extend(reader.extra(Duration::from_secs(2)).await);
    for id in &ids {
        let copies = delivered.iter().filter(|m| m.event.subject == *id).count();
        assert!(copies >= 1, "event of task {id} delivered");
    }
    let failures: i64 = app.count("SELECT coalesce(sum(attempts), 0)::bigint FROM backend.outbox").await;
    assert!(failures > 0, "failed attempts are recorded");
    reader.stop().await;
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_row_once() {
    let broker = broker().await;
    let config = relay_config(&broker);
    let app = TestApp::start_with(|c| c.outbox_relay = Some(config.clone())).await;
    let second = backend::relay::new(app.pool(), config).expect("second relay");
    let stop = tokio_util::sync::CancellationToken::new();
    let second = tokio::spawn(second.run(stop.clone()));
    let mut reader = reader(&broker);

    let titles: Vec<String> = (0..30).map(|n| format!("task {n}")).collect();
    futures::future::join_all(titles.iter().map(|title| app.create_simple_task("alice", title))).await;
    wait_until_all_published(&app).await;
    let mut delivered = reader.take(30, DEADLINE).await.expect("messages arrive in time");
    delivered.extend(reader.extra(Duration::from_secs(2)).await);
    let mut ids: Vec<String> = delivered.iter().map(|m| m.event.id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((delivered.len(), ids.len()), (30, 30), "every event exactly once");

    stop.cancel();
    second.await.expect("second relay stops");
    reader.stop().await;
}
