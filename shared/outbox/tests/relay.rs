//! The outbox in a fresh schema, against real Postgres and a real broker (tansu): what is committed is published
//! once, what is rolled back never; one key's events keep their order; two relays never share a row; a broker
//! outage makes rows wait, not vanish; published rows are purged after their retention.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use database::Schema;
use events::{CloudEvent, EventType};
use messaging::test_util::TopicReader;
use messaging::{IncomingMessage, KafkaConfig, TopicSpec};
use outbox::{Outbox, OutboxMessage, Relay, RelayConfig};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use testkit::kafka::Broker;
use testkit::postgres::TestDatabase;
use tokio_util::sync::CancellationToken;

const SCHEMA: Schema = Schema::new("relay_test");
const TOPIC: &str = "outbox-test";
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Numbered {
    sequence: u32,
}

impl EventType for Numbered {
    fn event_type(&self) -> &'static str {
        "test.numbered.v1"
    }
}

fn event(key: &str, sequence: u32) -> OutboxMessage {
    let event = CloudEvent::new("/taskwatch/outbox-tests", key, Numbered { sequence });
    OutboxMessage::from_event(TOPIC, key, &event).unwrap()
}

/// A fresh database with the outbox installed in [`SCHEMA`].
async fn database() -> (TestDatabase, Outbox) {
    let db = TestDatabase::new().await.unwrap();
    let outbox = Outbox::new(SCHEMA);
    outbox.install(&db.pool()).await.unwrap();
    (db, outbox)
}

async fn broker() -> Broker {
    let broker = Broker::start().await.unwrap();
    broker.create_topic(TOPIC, 3).await.unwrap();
    broker
}

fn kafka(bootstrap: &str, client: &str) -> KafkaConfig {
    let mut kafka = KafkaConfig::new(bootstrap.parse().unwrap(), client);
    // Short, so an outage shows up as failed attempts within seconds.
    kafka.delivery_timeout = Duration::from_secs(2);
    kafka.request_timeout = Duration::from_secs(1);
    kafka
}

fn relay_config(bootstrap: &str) -> RelayConfig {
    RelayConfig {
        kafka: kafka(bootstrap, "outbox-test"),
        batch_size: 5,
        lease: Duration::from_secs(10),
        // Long: a prompt publish then proves the NOTIFY trigger works.
        poll_interval: Duration::from_secs(30),
        max_backoff: Duration::from_secs(1),
        retention: Duration::from_secs(3600),
    }
}

/// A relay running in the background until dropped.
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(pool: PgPool, outbox: &Outbox, config: RelayConfig) -> Self {
        Self::relay(Relay::new(pool, outbox.clone(), config).unwrap().ensuring_topics([TopicSpec::new(TOPIC)]))
    }

    fn relay(relay: Relay) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(relay.run(stop.clone()));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(DEADLINE, self.task).await.unwrap().unwrap();
    }
}

/// Reads the topic from the beginning in its own consumer group.
fn reader(broker: &Broker) -> TopicReader {
    let mut config = kafka(&broker.bootstrap(), "outbox-test-reader");
    config.request_timeout = Duration::from_secs(5);
    config.session_timeout = Duration::from_secs(6);
    TopicReader::start(&config, TOPIC).unwrap()
}

async fn commit(pool: &PgPool, outbox: &Outbox, messages: &[OutboxMessage]) {
    let mut tx = pool.begin().await.unwrap();
    let mut receipts = Vec::new();
    for message in messages {
        receipts.push(outbox::enqueue(&mut tx, outbox, message).await.unwrap());
    }
    tx.commit().await.unwrap();
    receipts.into_iter().for_each(outbox::Enqueued::committed);
}

async fn unpublished(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM relay_test.outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_until_all_published(pool: &PgPool) {
    testkit::wait::until(DEADLINE, || async { unpublished(pool).await == 0 }).await.expect("every row published");
}

fn sequence(message: &IncomingMessage) -> u32 {
    message.event.data["sequence"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap()
}

fn key(message: &IncomingMessage) -> String {
    String::from_utf8(message.key.clone().unwrap()).unwrap()
}

#[tokio::test]
async fn a_committed_event_is_published_once_with_its_key_and_trace_headers() {
    let metrics = observability::metrics::install().unwrap();
    outbox::metrics::describe(&["test.numbered.v1"]);
    let (db, outbox) = database().await;
    let broker = broker().await;
    let mut reader = reader(&broker);
    let relay = Running::start(db.pool(), &outbox, relay_config(&broker.bootstrap()));

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut message = event("task-1", 1);
    message.headers = BTreeMap::from([("traceparent".to_owned(), format!("00-{trace_id}-00f067aa0ba902b7-01"))]);
    commit(&db.pool(), &outbox, std::slice::from_ref(&message)).await;

    let received = reader.take(1, DEADLINE).await.expect("messages arrive in time");
    assert_eq!(received[0].event.id, message.id);
    assert_eq!(key(&received[0]), "task-1");
    let traceparent = received[0].headers.get("traceparent").and_then(|value| std::str::from_utf8(value).ok());
    assert!(traceparent.is_some_and(|value| value.contains(trace_id)), "trace continues: {traceparent:?}");
    wait_until_all_published(&db.pool()).await;
    assert!(reader.extra(Duration::from_secs(2)).await.is_empty(), "published once");

    let text = observability::metrics::scrape_text(&metrics);
    for series in [
        "taskwatch_outbox_events_written_total{event_type=\"test.numbered.v1\"} 1",
        "taskwatch_outbox_pending_events 0",
        "taskwatch_outbox_publish_failures_total 0",
    ] {
        assert!(text.lines().any(|line| line == series), "{series} missing from\n{text}");
    }
    assert!(text.contains("taskwatch_outbox_publish_lag_seconds_count 1"), "lag recorded:\n{text}");
    // Its exemplar names the event's trace, in the OpenMetrics a Prometheus scrape asks for.
    let openmetrics = observability::metrics::scrape_openmetrics(&metrics);
    let exemplar = openmetrics
        .lines()
        .find(|line| line.starts_with("taskwatch_outbox_publish_lag_seconds_bucket") && line.contains(" # {"));
    assert!(exemplar.is_some_and(|line| line.contains(&format!("trace_id=\"{trace_id}\""))), "{openmetrics}");
    relay.stop().await;
    reader.stop().await;
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let (db, outbox) = database().await;
    let broker = broker().await;
    let mut reader = reader(&broker);
    let relay = Running::start(db.pool(), &outbox, relay_config(&broker.bootstrap()));

    let rolled_back = event("task-1", 1);
    let mut tx = db.pool().begin().await.unwrap();
    let receipt = outbox::enqueue(&mut tx, &outbox, &rolled_back).await.unwrap();
    tx.rollback().await.unwrap();
    drop(receipt);
    let committed = event("task-1", 2);
    commit(&db.pool(), &outbox, std::slice::from_ref(&committed)).await;

    let received = reader.take(1, DEADLINE).await.expect("messages arrive in time");
    assert_eq!(received[0].event.id, committed.id);
    assert!(reader.extra(Duration::from_secs(2)).await.is_empty(), "the rolled-back event never appears");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM relay_test.outbox").fetch_one(&db.pool()).await.unwrap();
    assert_eq!(rows, 1);
    relay.stop().await;
    reader.stop().await;
}

#[tokio::test]
async fn two_relays_publish_every_row_once_and_each_keys_rows_in_order() {
    let (db, outbox) = database().await;
    let broker = broker().await;
    let mut reader = reader(&broker);
    let first = Running::start(db.pool(), &outbox, relay_config(&broker.bootstrap()));
    let second = Running::start(db.pool(), &outbox, relay_config(&broker.bootstrap()));

    let keys = ["task-a", "task-b", "task-c", "task-d"];
    let mut written = Vec::new();
    for sequence in 0..10 {
        // One transaction per round, each touching every key, as concurrent requests would.
        let round: Vec<OutboxMessage> = keys.iter().map(|key| event(key, sequence)).collect();
        commit(&db.pool(), &outbox, &round).await;
        written.extend(round);
    }

    let received = reader.take(written.len(), DEADLINE).await.expect("messages arrive in time");
    wait_until_all_published(&db.pool()).await;
    let extra = reader.extra(Duration::from_secs(2)).await;
    assert!(extra.is_empty(), "{} message(s) published twice", extra.len());
    let ids: HashSet<_> = received.iter().map(|message| message.event.id).collect();
    assert_eq!(ids, written.iter().map(|message| message.id).collect(), "each row exactly once");
    for key_name in keys {
        let order: Vec<u32> = received.iter().filter(|message| key(message) == key_name).map(sequence).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>(), "order of {key_name}");
    }
    first.stop().await;
    second.stop().await;
    reader.stop().await;
}

#[tokio::test]
async fn while_the_broker_is_paused_rows_wait_and_all_go_out_after_it_resumes() {
    let (db, outbox) = database().await;
    let mut broker = broker().await;
    let mut reader = reader(&broker);
    let relay = Running::start(db.pool(), &outbox, relay_config(&broker.bootstrap()));
    commit(&db.pool(), &outbox, &[event("task-1", 0)]).await;
    reader.take(1, DEADLINE).await.expect("messages arrive in time");
    wait_until_all_published(&db.pool()).await;

    broker.pause().unwrap();
    let during: Vec<OutboxMessage> =
        (1..=4).map(|sequence| event(if sequence % 2 == 0 { "task-2" } else { "task-1" }, sequence)).collect();
    commit(&db.pool(), &outbox, &during).await;
    let failed = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM relay_test.outbox WHERE attempts > 0 AND last_error IS NOT NULL",
        )
        .fetch_one(&db.pool())
        .await
        .unwrap()
            > 0
    };
    testkit::wait::until(DEADLINE, failed).await.expect("publishing fails while the broker is paused");
    assert_eq!(unpublished(&db.pool()).await, 4, "the rows wait");

    broker.resume().unwrap();
    wait_until_all_published(&db.pool()).await;
    // At least once: a send that timed out may have reached the broker, so duplicates are allowed here.
    let mut seen = HashSet::new();
    while seen.len() < during.len() {
        let message = reader.take(1, DEADLINE).await.expect("messages arrive in time").remove(0);
        seen.insert(message.event.id);
    }
    let expected: HashSet<_> = during.iter().map(|message| message.id).collect();
    assert!(expected.is_subset(&seen), "every row written during the outage arrives");
    relay.stop().await;
    reader.stop().await;
}

#[tokio::test]
async fn published_rows_older_than_the_retention_are_purged() {
    let (db, outbox) = database().await;
    let old = event("task-1", 1);
    let recent = event("task-1", 2);
    let pending = event("task-1", 3);
    commit(&db.pool(), &outbox, &[old.clone(), recent.clone(), pending.clone()]).await;
    for (id, published_ago) in [(old.id, "2 hours"), (recent.id, "10 minutes")] {
        sqlx::query("UPDATE relay_test.outbox SET published_at = now() - $2::interval WHERE id = $1")
            .bind(id)
            .bind(published_ago)
            .execute(&db.pool())
            .await
            .unwrap();
    }
    // No broker is needed to purge (so no topics to ensure); the relay purges once at start.
    let mut config = relay_config("127.0.0.1:1");
    config.retention = Duration::from_secs(3600);
    let relay = Running::relay(Relay::new(db.pool(), outbox.clone(), config).unwrap());
    let remaining = || async {
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM relay_test.outbox ORDER BY id")
            .fetch_all(&db.pool())
            .await
            .unwrap()
    };
    testkit::wait::until(DEADLINE, || async { remaining().await.len() == 2 }).await.expect("the old row is purged");
    assert_eq!(remaining().await, [recent.id, pending.id], "only the old published row goes");
    relay.stop().await;
}

#[tokio::test]
async fn install_is_idempotent_and_safe_from_several_replicas_at_once() {
    let db = TestDatabase::new().await.unwrap();
    let outbox = Outbox::new(SCHEMA);
    let pool = db.pool();
    let results = futures::future::join_all((0..4).map(|_| outbox.install(&pool))).await;
    for result in results {
        result.unwrap();
    }
    outbox.install(&pool).await.unwrap();
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'relay_test' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(objects, ["outbox", "outbox_pending", "outbox_pending_by_key", "outbox_pkey", "outbox_published_at"]);
    let triggers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'outbox_notify'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(triggers, 1);
}
