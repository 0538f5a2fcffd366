//! What every messaging test needs: a real broker, fast settings, tracing with real trace ids,
//! metrics, and helpers to publish and to read a topic raw.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use events::{CloudEvent, EventType};
use messaging::{Consumer, Handler, KafkaConfig, OutgoingMessage, Producer, Subscription, TopicSpec, ensure_topics};
use observability::Shutdown;
use observability::metrics::PrometheusHandle;
use opentelemetry::trace::TracerProvider as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use testkit::kafka::Broker;
use tokio::task::JoinHandle;
use tracing_subscriber::layer::SubscriberExt as _;

/// Generous for a loaded 2-core machine; passing tests never get near it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The test payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub sequence: u32,
}

impl EventType for Probe {
    fn event_type(&self) -> &'static str {
        "test.probe.v1"
    }
}

pub fn probe(subject: &str, sequence: u32) -> CloudEvent<Probe> {
    CloudEvent::new("/taskwatch/messaging-tests", subject, Probe { sequence })
}

/// Installs, once per process, a subscriber with the OpenTelemetry layer (real trace ids, nothing
/// exported), the W3C propagator, and the Prometheus recorder whose handle is returned.
pub fn telemetry() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            observability::telemetry::install_propagator();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info,librdkafka=warn"))
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("messaging-tests")))
                .with(tracing_subscriber::fmt::layer().with_test_writer());
            tracing::subscriber::set_global_default(subscriber).expect("first subscriber of this process");
            let handle = observability::metrics::install().expect("metrics recorder");
            messaging::metric_names::describe_all();
            handle
        })
        .clone()
}

/// Settings tuned so tests see commits, retries and lag within a fraction of a second.
pub fn config(broker: &Broker, group: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(broker.bootstrap().parse().expect("bootstrap"), group);
    config.commit_interval = Duration::from_millis(100);
    config.retry_backoff =
        observability::Backoff::new(Duration::from_millis(20), Duration::from_millis(200)).expect("bounds");
    config.lag_interval = Duration::from_millis(200);
    config.session_timeout = Duration::from_secs(6);
    config.request_timeout = Duration::from_secs(5);
    config
}

/// A started broker with `topics` created through [`ensure_topics`] (one partition unless given).
pub async fn broker_with(topics: &[(&str, u16)]) -> (Broker, KafkaConfig) {
    telemetry();
    let broker = Broker::start().await.expect("start tansu");
    let config = config(&broker, "tests");
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| {
            TopicSpec::new(*name).with_partitions(messaging::Partitions::new(*partitions).expect("partitions"))
        })
        .collect();
    ensure_topics(&config, &specs).await.expect("create topics");
    (broker, config)
}

/// Publishes `event` keyed by `key` and waits for the acknowledgement.
pub async fn publish<T: Serialize>(producer: &Producer, topic: &str, key: &str, event: &CloudEvent<T>) {
    let message = OutgoingMessage::event(topic, key, event).expect("serialise");
    producer.send(message).await.expect("acknowledged");
}

/// A consumer running in the background until its shutdown fires (or the task is aborted, which
/// drops it mid-flight like a crash).
pub struct Running {
    pub shutdown: Shutdown,
    pub task: JoinHandle<()>,
}

impl Running {
    pub fn start<H: Handler + 'static>(config: &KafkaConfig, subscription: Subscription, handler: H) -> Self {
        let consumer = Consumer::new(config, subscription).expect("create consumer");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(consumer.run(handler, shutdown.clone()));
        Self { shutdown, task }
    }

    /// Clean shutdown: commit what was processed and leave the group.
    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(TIMEOUT, self.task).await.expect("consumer stops in time").expect("consumer task");
    }

    /// A crash: the consumer is dropped wherever it is, with no final commit of its own.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Every message of `topic` from the start, read with a plain client outside any group; waits until
/// there are at least `count`.
pub async fn read_raw(broker: &Broker, topic: &str, count: usize) -> Vec<OwnedMessage> {
    let bootstrap = broker.bootstrap();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "raw-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("raw consumer");
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Beginning).expect("partition 0");
        consumer.assign(&assignment).expect("assign");
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut messages = Vec::new();
        while messages.len() < count && std::time::Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                messages.push(message.detach());
            }
        }
        messages
    })
    .await
    .expect("raw reader")
}

/// The payload's sequence number, for messages the test published.
pub fn sequence(message: &messaging::IncomingMessage) -> u32 {
    message.event.clone().into_typed::<Probe>().expect("a probe").data.sequence
}

/// A value of the rendered metrics, `None` when the series is absent.
pub fn metric_value(handle: &PrometheusHandle, series_prefix: &str) -> Option<f64> {
    handle
        .render()
        .lines()
        .find(|line| line.starts_with(series_prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

pub type Shared<T> = Arc<testkit::collected::Collected<T>>;
