//! Periodic consumer-lag measurement: high watermark minus position, per assigned partition.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use tokio_util::sync::CancellationToken;

use crate::client_context::TracingContext;
use crate::metric_names::CONSUMER_LAG;

type Partition = (String, i32);

/// Measures lag every `interval` until `stop` fires. Partitions that moved to another consumer are
/// set to 0 here, so summing the gauge over replicas stays right.
pub(crate) async fn report_lag(
    consumer: Arc<StreamConsumer<TracingContext>>,
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
        let consumer = Arc::clone(&consumer);
        // Watermark queries are blocking network calls.
        let measured = tokio::task::spawn_blocking(move || measure(&consumer, request_timeout)).await;
        let Ok(measured) = measured else { continue };
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
