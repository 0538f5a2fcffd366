//! What a group member reports every `KAFKA_LAG_INTERVAL`: its lag (high watermark minus position, per assigned
//! partition), how many partitions of each subscribed topic it owns, and how many each topic has, so a rule
//! can compare what the live members own with what exists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use tokio_util::sync::CancellationToken;

use crate::client_context::TracingContext;
use crate::metric_names::{CONSUMER_ASSIGNED_PARTITIONS, CONSUMER_LAG, CONSUMER_TOPIC_PARTITIONS};

type Partition = (String, i32);

/// Reports every `interval` until `stop` fires. Partitions that moved to another consumer are set to 0
/// here, so summing the lag gauge over replicas stays right.
pub(crate) async fn report(
    consumer: Arc<StreamConsumer<TracingContext>>,
    topics: Vec<String>,
    interval: Duration,
    request_timeout: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported: HashSet<Partition> = HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (client, subscribed) = (Arc::clone(&consumer), topics.clone());
        // Metadata and watermark queries are blocking network calls.
        let sampled = tokio::task::spawn_blocking(move || {
            report_ownership(&client, &subscribed, request_timeout);
            measure(&client, request_timeout)
        })
        .await;
        let Ok(measured) = sampled else { continue };
        let current: HashSet<Partition> = measured.iter().map(|(partition, _)| partition.clone()).collect();
        for (topic, partition) in reported.difference(&current) {
            metrics::gauge!(CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string()).set(0.0);
        }
        for ((topic, partition), lag) in measured {
            #[allow(clippy::cast_precision_loss, reason = "lag far below 2^52 messages")]
            let lag = lag as f64;
            metrics::gauge!(CONSUMER_LAG, "topic" => topic, "partition" => partition.to_string()).set(lag);
        }
        reported = current;
    }
}

/// Sets the assigned-partitions gauge of every subscribed topic (0 when none is owned) and, when the broker
/// answers, the topic's partition count.
fn report_ownership(consumer: &StreamConsumer<TracingContext>, topics: &[String], timeout: Duration) {
    let owned = owned_partitions(consumer, topics);
    for topic in topics {
        #[allow(clippy::cast_precision_loss, reason = "a few thousand partitions at most")]
        let count = owned.get(topic.as_str()).copied().unwrap_or(0) as f64;
        metrics::gauge!(CONSUMER_ASSIGNED_PARTITIONS, "topic" => topic.clone()).set(count);
        if let Some(partitions) = topic_partitions(consumer, topic, timeout) {
            #[allow(clippy::cast_precision_loss, reason = "a few thousand partitions at most")]
            let partitions = partitions as f64;
            metrics::gauge!(CONSUMER_TOPIC_PARTITIONS, "topic" => topic.clone()).set(partitions);
        }
    }
}

/// How many partitions of each subscribed topic this member owns now (librdkafka's local view).
pub(crate) fn owned_partitions<'a>(
    consumer: &StreamConsumer<TracingContext>,
    topics: &'a [String],
) -> HashMap<&'a str, usize> {
    let mut owned: HashMap<&str, usize> = topics.iter().map(|topic| (topic.as_str(), 0)).collect();
    if let Ok(assignment) = consumer.assignment() {
        for element in assignment.elements() {
            if let Some(count) = owned.get_mut(element.topic()) {
                *count += 1;
            }
        }
    }
    owned
}

/// The partition count of `topic` from the broker's metadata; `None` when it cannot be had.
pub(crate) fn topic_partitions(
    consumer: &StreamConsumer<TracingContext>,
    topic: &str,
    timeout: Duration,
) -> Option<usize> {
    match consumer.fetch_metadata(Some(topic), timeout) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .find(|found| found.name() == topic && found.error().is_none())
            .map(|found| found.partitions().len()),
        Err(error) => {
            tracing::debug!(%error, topic, "no metadata");
            None
        }
    }
}

/// Lag of each assigned partition: high watermark minus where this consumer will read next. A partition not
/// fetched from yet has no position; it counts from the group's committed offset, or, with none, from the low
/// watermark (`auto.offset.reset=earliest`), so a consumer that is stuck from the start still shows its lag.
fn measure(consumer: &StreamConsumer<TracingContext>, timeout: Duration) -> Vec<(Partition, i64)> {
    let positions = match consumer.position() {
        Ok(positions) => positions,
        Err(error) => {
            tracing::debug!(%error, "could not read consumer positions for lag");
            return Vec::new();
        }
    };
    // Only asked for when some partition lacks a position: it is a round trip to the group coordinator.
    let needs_committed = positions.elements().iter().any(|element| !matches!(element.offset(), Offset::Offset(_)));
    let committed = if needs_committed { consumer.committed(timeout).ok() } else { None };
    let committed_offset = |topic: &str, partition: i32| match committed
        .as_ref()
        .and_then(|list| list.find_partition(topic, partition))
        .map(|element| element.offset())
    {
        Some(Offset::Offset(offset)) => Some(offset),
        _ => None,
    };
    positions
        .elements()
        .iter()
        .filter_map(|element| {
            let (topic, partition) = (element.topic(), element.partition());
            let (low, high) = match consumer.fetch_watermarks(topic, partition, timeout) {
                Ok(watermarks) => watermarks,
                Err(error) => {
                    tracing::debug!(%error, topic, partition, "no watermarks");
                    return None;
                }
            };
            let next = match element.offset() {
                Offset::Offset(position) => position,
                _ => committed_offset(topic, partition).unwrap_or(low),
            };
            Some(((topic.to_owned(), partition), (high - next).max(0)))
        })
        .collect()
}
