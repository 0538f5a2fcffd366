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
//! with -1; the tail then starts at the partition's end as measured *before* the lookup, a concrete offset, so a
//! message written while the tail is being assigned is still read (librdkafka's own "end" is resolved later and
//! would skip it). tansu 0.6 answers offset 0 instead, so the tail would read the partition from its beginning.
//! It therefore also skips every message whose timestamp is before the start time: on tansu a quiet partition
//! costs one read of what it keeps, never a message that is too old. For the same reason a position the broker
//! no longer holds resets to the earliest offset it keeps, never to the end, which would skip messages silently.

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

/// Why a tail could not start reading. Every case is transient on a broker that serves the topic, so the caller
/// retries; a tail never falls back to reading from "now", which would drop what it was asked to read.
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
    /// Where a partition starts could not be found: its end, or its offset for the start time.
    #[error("finding where partition {partition} of `{topic}` starts failed")]
    Lookup {
        /// The topic.
        topic: String,
        /// The partition (-1 when the lookup failed for the whole topic).
        partition: i32,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
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

/// Where one partition starts: its first message written at or after the start time, or, when it has none,
/// its end before the lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStart {
    /// The partition.
    pub partition: i32,
    /// The first offset read.
    pub offset: i64,
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
            // See the module documentation: never skip to the end.
            .set("auto.offset.reset", "earliest");
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

    /// Assigns every partition of the topic, each from its first message written at or after `since` (or its
    /// end, when it has none). Returns where each partition starts.
    pub async fn start_at(&self, since: SystemTime) -> Result<Vec<PartitionStart>, TailError> {
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
) -> Result<Vec<PartitionStart>, TailError> {
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
    let lookup_failed = |partition, source| TailError::Lookup { topic: topic.to_owned(), partition, source };
    // Each end is measured before the lookup by time: a message written in between is at or after it.
    let ends = partitions
        .iter()
        .map(|&partition| {
            consumer
                .fetch_watermarks(topic, partition, timeout)
                .map(|(_, high)| high)
                .map_err(|source| lookup_failed(partition, source))
        })
        .collect::<Result<Vec<i64>, TailError>>()?;
    let mut by_time = TopicPartitionList::new();
    for partition in &partitions {
        // Cannot fail: the partition is new to this list and the offset is a plain value.
        let _ = by_time.add_partition_offset(topic, *partition, Offset::Offset(since_ms));
    }
    let found = consumer.offsets_for_times(by_time, timeout).map_err(|source| lookup_failed(-1, source))?;
    let mut starts = Vec::with_capacity(partitions.len());
    let mut assignment = TopicPartitionList::new();
    for (&partition, &end) in partitions.iter().zip(&ends) {
        let element = found.find_partition(topic, partition).ok_or_else(|| {
            lookup_failed(partition, KafkaError::OffsetFetch(rdkafka::types::RDKafkaErrorCode::UnknownPartition))
        })?;
        element.error().map_err(|source| lookup_failed(partition, source))?;
        let offset = match element.offset() {
            Offset::Offset(offset) if offset >= 0 => offset,
            // No message that recent (Kafka's -1).
            _ => end,
        };
        let _ = assignment.add_partition_offset(topic, partition, Offset::Offset(offset));
        starts.push(PartitionStart { partition, offset });
    }
    consumer.assign(&assignment).map_err(|source| TailError::Assign { topic: topic.to_owned(), source })?;
    Ok(starts)
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
