//! Reading a whole topic without a consumer group: every partition, from a point in time, in every replica.
//!
//! A consumer group shares a topic's partitions among its members, so each event reaches one replica. Fan-out
//! needs the opposite: every replica must see every event (the backend's task stream serves the clients
//! connected to *it*). A group per replica would work but leaves a group behind at every restart and depends on
//! the broker's group coordination; a [`TopicTail`] assigns every partition itself, commits nothing, and starts
//! each partition at its first message written at or after a given time. Every replica therefore reads each
//! partition in the same offset order.
//!
//! Partitions added to the topic after [`TopicTail::start_at`] are not read until the tail is started again.
//!
//! Finding the start asks the broker for offsets by time (ListOffsets). Kafka answers "no message that recent"
//! with -1, which starts the partition at its end; tansu 0.6 answers offset 0 instead, so the tail would read the
//! partition from its beginning. It therefore also skips every message whose timestamp is before the start time:
//! on tansu a quiet partition costs one read of what it keeps, never a message that is too old.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use events::CloudEvent;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message as _, Offset, TopicPartitionList};

use crate::client_context::TracingContext;
use crate::config::KafkaConfig;
use crate::consumer::IncomingMessage;
use crate::error::ClientError;
use crate::headers::MessageHeaders;

/// Why a tail could not start reading.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The client could not be created from the configuration.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The topic's partitions could not be listed (broker unreachable, unknown topic).
    #[error("listing the partitions of `{topic}` failed")]
    Metadata {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The broker knows the topic but reports no partition for it.
    #[error("topic `{topic}` has no partitions")]
    NoPartitions {
        /// The topic.
        topic: String,
    },
    /// The partitions could not be assigned.
    #[error("assigning the partitions of `{topic}` failed")]
    Assign {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A blocking client call could not be run (the runtime is shutting down).
    #[error("a Kafka client call could not run: {0}")]
    Blocking(String),
}

/// Where one partition starts: an offset found for the start time, or the partition's end when it has no
/// message that recent (or the broker could not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStart {
    /// The partition.
    pub partition: i32,
    /// The first offset read; `None` for the partition's end at the time of the assignment.
    pub offset: Option<i64>,
}

/// Where a started tail reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailStart {
    /// Each partition's first offset.
    pub partitions: Vec<PartitionStart>,
    /// Whether the broker looked the offsets up by time. When it could not, every partition starts at its end:
    /// what was written between the start time and now is not read.
    pub by_time: bool,
}

/// Every partition of one topic, read by this process alone (see the module documentation).
pub struct TopicTail {
    consumer: Arc<StreamConsumer<TracingContext>>,
    topic: String,
    request_timeout: Duration,
    /// Unix milliseconds of the start time: older messages are skipped (see the module documentation).
    since_ms: AtomicI64,
}

impl std::fmt::Debug for TopicTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicTail").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl TopicTail {
    /// A tail of `topic`; nothing is read before [`TopicTail::start_at`]. Connecting happens in the background,
    /// so this succeeds while the broker is down.
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self, ClientError> {
        let mut client = config.client_config();
        client
            // librdkafka wants a group id for any consumer; this one never joins (no subscribe) and never commits.
            .set("group.id", format!("{}-tail", config.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "latest");
        let consumer: StreamConsumer<TracingContext> = client
            .create_with_context(TracingContext)
            .map_err(|source| ClientError { role: "topic tail", brokers: config.brokers.to_string(), source })?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            request_timeout: config.request_timeout,
            since_ms: AtomicI64::new(0),
        })
    }

    /// Assigns every partition of the topic, each from its first message written at or after `since`.
    ///
    /// A partition with no such message starts at its end; so does every partition when the broker cannot look
    /// offsets up by time (logged), which narrows what the tail has seen to what arrives from now on.
    pub async fn start_at(&self, since: SystemTime) -> Result<TailStart, TailError> {
        let consumer = Arc::clone(&self.consumer);
        let (topic, timeout) = (self.topic.clone(), self.request_timeout);
        let since_ms = since.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis());
        let since_ms = i64::try_from(since_ms).unwrap_or(i64::MAX);
        self.since_ms.store(since_ms, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || assign_from(&consumer, &topic, since_ms, timeout))
            .await
            .map_err(|error| TailError::Blocking(error.to_string()))?
    }

    /// The next message written at or after the start time that is a CloudEvent. Messages that are not
    /// CloudEvents are skipped with a warning: the topic's group consumers dead-letter them, and a tail has nothing
    /// to add. An error is the broker's (unreachable, restarting); librdkafka reconnects by itself, so the caller
    /// waits a little and asks again.
    pub async fn recv(&self) -> Result<IncomingMessage, KafkaError> {
        loop {
            let message = self.consumer.recv().await?;
            if message.timestamp().to_millis().is_some_and(|written| written < self.since_ms.load(Ordering::Relaxed)) {
                continue;
            }
            match CloudEvent::decode(message.payload().unwrap_or_default()) {
                Ok(event) => {
                    return Ok(IncomingMessage::read(&message, MessageHeaders::from_kafka(message.headers()), event));
                }
                Err(error) => tracing::warn!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    %error,
                    "skipping a message that is not a CloudEvent"
                ),
            }
        }
    }

    /// How many messages the tail has still to read, summed over its partitions (high watermark − position);
    /// an error when the broker did not answer within the request timeout.
    pub async fn lag(&self) -> Result<i64, KafkaError> {
        let consumer = Arc::clone(&self.consumer);
        let (topic, timeout) = (self.topic.clone(), self.request_timeout);
        tokio::task::spawn_blocking(move || total_lag(&consumer, &topic, timeout))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}

fn assign_from(
    consumer: &StreamConsumer<TracingContext>,
    topic: &str,
    since_ms: i64,
    timeout: Duration,
) -> Result<TailStart, TailError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| TailError::Metadata { topic: topic.to_owned(), source })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|described| described.name() == topic)
        .flat_map(|described| described.partitions().iter().map(|partition| partition.id()))
        .collect();
    if partitions.is_empty() {
        return Err(TailError::NoPartitions { topic: topic.to_owned() });
    }
    let mut by_time = TopicPartitionList::new();
    for partition in &partitions {
        // Cannot fail: the partition is new to this list and the offset is a plain value.
        let _ = by_time.add_partition_offset(topic, *partition, Offset::Offset(since_ms));
    }
    let (found, looked_up) = match consumer.offsets_for_times(by_time, timeout) {
        Ok(found) => (found, true),
        Err(error) => {
            tracing::warn!(topic, %error, "the broker cannot look offsets up by time; reading from the end");
            (TopicPartitionList::new(), false)
        }
    };
    let starts: Vec<PartitionStart> = partitions
        .iter()
        .map(|&partition| {
            let offset =
                found.find_partition(topic, partition).filter(|element| element.error().is_ok()).and_then(|element| {
                    match element.offset() {
                        Offset::Offset(offset) if offset >= 0 => Some(offset),
                        _ => None,
                    }
                });
            PartitionStart { partition, offset }
        })
        .collect();
    let mut assignment = TopicPartitionList::new();
    for start in &starts {
        let offset = start.offset.map_or(Offset::End, Offset::Offset);
        let _ = assignment.add_partition_offset(topic, start.partition, offset);
    }
    consumer.assign(&assignment).map_err(|source| TailError::Assign { topic: topic.to_owned(), source })?;
    Ok(TailStart { partitions: starts, by_time: looked_up })
}

fn total_lag(consumer: &StreamConsumer<TracingContext>, topic: &str, timeout: Duration) -> Result<i64, KafkaError> {
    let positions = consumer.position()?;
    let mut lag = 0;
    for element in positions.elements_for_topic(topic) {
        let (low, high) = consumer.fetch_watermarks(topic, element.partition(), timeout)?;
        let position = match element.offset() {
            Offset::Offset(offset) => offset,
            // Nothing fetched yet: the tail sits at the end it was assigned, or the beginning of what is kept.
            Offset::End | Offset::Invalid => high,
            _ => low,
        };
        lag += (high - position).max(0);
    }
    Ok(lag)
}
