//! Raw access to the broker from the test side: read every message of a topic exactly as the services see
//! it, and publish byte-for-byte copies (a redelivery the services must absorb).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::collected::Collected;
use tokio::task::JoinHandle;

use crate::HarnessError;

/// How long a copy may wait for the broker's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as it sits on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The topic it was read from, or is to be published to.
    pub topic: String,
    /// Where it was read; not used when publishing, where the key picks the partition.
    pub partition: i32,
    /// Its position in the partition; not used when publishing.
    pub offset: i64,
    /// The message key, `None` for a message without one.
    pub key: Option<Vec<u8>>,
    /// The value bytes, empty for a message without a payload.
    pub payload: Vec<u8>,
    /// Header names and values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RawMessage {
    /// A message for `topic` whose payload is not a CloudEvent, keyed `key`: every consumer dead-letters it.
    pub fn not_a_cloud_event(topic: &str, key: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            partition: 0,
            offset: 0,
            key: Some(key.as_bytes().to_vec()),
            payload: b"this is not a CloudEvent".to_vec(),
            headers: Vec::new(),
        }
    }

    /// The payload as JSON (every Taskwatch message is a JSON CloudEvent).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }

    /// The first header called `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }
}

/// Reads a topic from its beginning in the background, in a consumer group of its own (so it never takes
/// partitions away from a service), keeping every message for the test to wait on. Stops when dropped.
#[derive(Debug)]
pub struct TopicTap {
    messages: Arc<Collected<RawMessage>>,
    reader: JoinHandle<()>,
}

impl TopicTap {
    /// Subscribes to `topic` on the broker at `bootstrap` and starts reading in a Tokio task; an error when the
    /// consumer cannot be created or subscribed. Read errors later on are printed and retried, not returned.
    pub fn start(bootstrap: &str, topic: &str) -> Result<Self, HarnessError> {
        static TAPS: AtomicU64 = AtomicU64::new(0);
        let tap = TAPS.fetch_add(1, Ordering::Relaxed);
        let group = format!("e2e-tap-{topic}-{}-{tap}", std::process::id());
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .map_err(|source| HarnessError::Kafka { context: format!("creating a reader for {topic}"), source })?;
        consumer
            .subscribe(&[topic])
            .map_err(|source| HarnessError::Kafka { context: format!("subscribing to {topic}"), source })?;
        let messages = Arc::new(Collected::new());
        let sink = Arc::clone(&messages);
        let reader = tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(message) => sink.push(RawMessage {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        headers: message
                            .headers()
                            .map(|headers| {
                                headers
                                    .iter()
                                    .map(|header| {
                                        (header.key.to_owned(), header.value.map(<[u8]>::to_vec).unwrap_or_default())
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }),
                    // The broker may be restarting under the test; librdkafka reconnects by itself.
                    Err(error) => eprintln!("e2e: reading a topic failed (retrying): {error}"),
                }
            }
        });
        Ok(Self { messages, reader })
    }

    /// Every message read so far.
    pub fn messages(&self) -> Vec<RawMessage> {
        self.messages.snapshot()
    }

    /// The first message (read already or still to come) matching `predicate`.
    pub async fn wait_for(&self, predicate: impl Fn(&RawMessage) -> bool, timeout: Duration) -> Option<RawMessage> {
        self.messages.wait_for(predicate, timeout).await
    }
}

impl Drop for TopicTap {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Publishes exact copies of messages: same topic, key (so the same partition), payload and headers.
pub async fn republish(bootstrap: &str, message: &RawMessage) -> Result<(), HarnessError> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(|source| HarnessError::Kafka { context: "creating a producer".into(), source })?;
    let headers = message.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header { key: key.as_str(), value: Some(value.as_slice()) })
    });
    let mut record = FutureRecord::to(&message.topic).payload(&message.payload).headers(headers);
    if let Some(key) = &message.key {
        record = record.key(key);
    }
    producer
        .send(record, PUBLISH_TIMEOUT)
        .await
        .map(drop)
        .map_err(|(source, _)| HarnessError::Kafka { context: format!("re-publishing to {}", message.topic), source })
}
