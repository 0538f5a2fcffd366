//! The relay: publishes committed outbox rows to Kafka and marks them published once the broker has acknowledged
//! them.
//!
//! * Claims rows with a lease, so several replicas relay safely; a crashed relay's rows are picked up when its
//!   lease runs out (at-least-once; consumers dedupe on the event id).
//! * Keeps one key's events in order: within a batch a key's rows go one after another; a failure stops the rest
//!   of that key, and its retry delay (held as the row's lease) holds back newer rows of the key everywhere.
//! * Wakes on `NOTIFY` from the table's trigger, with a short poll as the fallback.
//! * Broker down: publishes fail, rows wait with `attempts`/`last_error` and a doubling delay; the service's
//!   writes are not involved at all. The producer recovers by itself once the broker is back.

use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use messaging::{MessageHeaders, OutgoingMessage, Producer, TopicSpec};
use observability::Backoff;
use observability::exemplars::RecordedTrace;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::RelayConfig;
use crate::metrics;
use crate::queue::PendingMessage;
use crate::table::Outbox;

/// How often published rows past their retention are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(300);
const PURGE_BATCH: i64 = 10_000;
/// Ceiling of the first retry delay after a failed publish; doubles per attempt up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Relays one outbox table to Kafka. Build with [`Relay::new`], spawn [`Relay::run`].
#[derive(Debug)]
pub struct Relay {
    pool: PgPool,
    outbox: Outbox,
    producer: Producer,
    config: RelayConfig,
    topics: Vec<TopicSpec>,
}

impl Relay {
    /// Creates the producer; it connects lazily, so this succeeds while the broker is down.
    pub fn new(pool: PgPool, outbox: Outbox, config: RelayConfig) -> Result<Self, messaging::ClientError> {
        let producer = Producer::new(&config.kafka)?;
        Ok(Self { pool, outbox, producer, config, topics: Vec::new() })
    }

    /// Topics created (when missing) before the first publish, e.g. the topics this service's events go to.
    pub fn ensuring_topics(mut self, topics: impl IntoIterator<Item = TopicSpec>) -> Self {
        self.topics.extend(topics);
        self
    }

    /// The producer the relay publishes with, e.g. for a broker readiness check.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Relays until `stop` fires; a batch in flight is finished first (each publish is bounded by
    /// `KAFKA_DELIVERY_TIMEOUT`).
    pub async fn run(self, stop: CancellationToken) {
        if !self.ensure_topics(&stop).await {
            return;
        }
        let mut listener: Option<PgListener> = None;
        let mut purge = tokio::time::interval(PURGE_INTERVAL);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(table = self.outbox.table(), "outbox relay started");
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            self.drain().await;
            tokio::select! {
                () = stop.cancelled() => break,
                result = notified(&mut listener) => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "outbox notifications lost; polling until they are back");
                        listener = None;
                    }
                }
                () = tokio::time::sleep(self.config.poll_interval) => {}
                _ = purge.tick() => self.purge().await,
            }
        }
        tracing::info!(table = self.outbox.table(), "outbox relay stopped");
    }

    /// Publishes batches until nothing is claimable, then samples the backlog.
    async fn drain(&self) {
        loop {
            match self.outbox.claim(&self.pool, self.config.lease, self.config.batch_size).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => {
                    let full = batch.len() >= usize::from(self.config.batch_size);
                    self.publish_batch(batch).await;
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, cause = %error.source, "claiming outbox rows failed; will retry");
                    break;
                }
            }
        }
        match self.outbox.pending_count(&self.pool).await {
            Ok(count) => metrics::pending(count),
            Err(error) => tracing::warn!(%error, cause = %error.source, "counting pending outbox rows failed"),
        }
    }

    /// Publishes each key's rows in order, different keys concurrently.
    async fn publish_batch(&self, batch: Vec<PendingMessage>) {
        // Leave a margin so the lease cannot run out while a publish is still in flight.
        let deadline = Instant::now() + self.config.lease.saturating_sub(self.config.kafka.delivery_timeout);
        join_all(group_by_key(batch).into_iter().map(|rows| self.publish_in_order(rows, deadline))).await;
    }

    async fn publish_in_order(&self, rows: Vec<PendingMessage>, deadline: Instant) {
        let mut rows = rows.into_iter();
        while let Some(row) = rows.next() {
            let attempted = Instant::now() < deadline;
            let published = attempted && self.publish(&row).await;
            if !published {
                // Later rows of this key must wait for this one.
                let mut held_back: Vec<Uuid> = rows.map(|row| row.id).collect();
                if !attempted {
                    // Out of lease before its turn: give it back without counting a failure. (A failed row keeps
                    // its lease as its retry delay.)
                    held_back.push(row.id);
                }
                if !held_back.is_empty()
                    && let Err(error) = self.outbox.release(&self.pool, &held_back).await
                {
                    tracing::warn!(%error, cause = %error.source, "releasing outbox rows failed; their lease will expire");
                }
                return;
            }
        }
    }

    /// Publishes one row and records the outcome; `true` when the broker acknowledged it.
    async fn publish(&self, row: &PendingMessage) -> bool {
        let message = match to_message(row) {
            Ok(message) => message,
            Err(error) => {
                // Cannot happen for a jsonb value; kept as a failure rather than a panic.
                self.failed(row, &format!("payload not serialisable: {error}")).await;
                return false;
            }
        };
        match self.producer.send(message).await {
            Ok(_) => {
                if let Err(error) = self.outbox.mark_published(&self.pool, row.id).await {
                    // Published but not marked: the row is sent again after its lease; consumers dedupe on the id.
                    tracing::warn!(%error, cause = %error.source, event_id = %row.id, "marking an outbox row published failed");
                }
                let lag = (Utc::now() - row.created_at).to_std().unwrap_or_default();
                metrics::published(lag, RecordedTrace::of_headers(&row.headers.0));
                true
            }
            Err(error) => {
                self.failed(row, &format!("{error}: {}", error.source)).await;
                false
            }
        }
    }

    async fn failed(&self, row: &PendingMessage, error: &str) {
        metrics::publish_failed();
        let retry_in = self.backoff().delay_after(u32::try_from(row.attempts).unwrap_or(0).saturating_add(1));
        tracing::warn!(event_id = %row.id, attempts = row.attempts + 1, ?retry_in, error, "outbox publish failed");
        if let Err(store_error) = self.outbox.record_failure(&self.pool, row.id, error, retry_in).await {
            tracing::warn!(error = %store_error, cause = %store_error.source, "recording an outbox publish failure failed");
        }
    }

    async fn purge(&self) {
        let cutoff = Utc::now() - chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::MAX);
        match self.outbox.purge_published_before(&self.pool, cutoff, PURGE_BATCH).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, table = self.outbox.table(), "published outbox rows purged"),
            Err(error) => {
                tracing::warn!(%error, cause = %error.source, "purging published outbox rows failed; will retry")
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let result = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(self.outbox.notify_channel()).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        result.map_err(|error| tracing::warn!(%error, "cannot listen for outbox notifications; polling")).ok()
    }

    /// The retry schedule of publishes and of topic creation: from 1 s, doubling, below `OUTBOX_RELAY_MAX_BACKOFF`.
    fn backoff(&self) -> Backoff {
        Backoff::clamped(FIRST_BACKOFF, self.config.max_backoff)
    }

    /// Creates the relay's topics, retrying while the broker is unreachable; `false` if stopped first.
    async fn ensure_topics(&self, stop: &CancellationToken) -> bool {
        if self.topics.is_empty() {
            return true;
        }
        let mut delays = self.backoff().delays();
        loop {
            let delay = delays.next_delay();
            match messaging::ensure_topics(&self.config.kafka, &self.topics).await {
                Ok(()) => return true,
                Err(error) => tracing::warn!(%error, retry_in = ?delay, "cannot create Kafka topics yet"),
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Waits for the next notification; never returns without a listener (the poll timer takes over).
async fn notified(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Rows grouped by key, each group in claim (creation) order, groups in the order of their first row.
fn group_by_key(batch: Vec<PendingMessage>) -> Vec<Vec<PendingMessage>> {
    let mut groups: Vec<Vec<PendingMessage>> = Vec::new();
    for row in batch {
        match groups.iter_mut().find(|group| group[0].message_key == row.message_key) {
            Some(group) => group.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups
}

fn to_message(row: &PendingMessage) -> Result<OutgoingMessage, serde_json::Error> {
    let payload = serde_json::to_vec(&row.payload.0)?;
    let headers =
        row.headers.0.iter().fold(MessageHeaders::new(), |headers, (name, value)| {
            headers.with(name.as_str(), value.as_bytes().to_vec())
        });
    Ok(OutgoingMessage::new(row.topic.as_str(), row.message_key.as_bytes().to_vec(), payload).with_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, n: u8) -> PendingMessage {
        PendingMessage {
            id: Uuid::from_bytes([n; 16]),
            topic: "t".to_owned(),
            message_key: key.to_owned(),
            payload: sqlx::types::Json(serde_json::Value::Null),
            headers: sqlx::types::Json(Default::default()),
            created_at: Utc::now(),
            attempts: 0,
        }
    }

    #[test]
    fn grouping_keeps_each_keys_order() {
        let groups = group_by_key(vec![row("a", 1), row("b", 2), row("a", 3), row("c", 4), row("b", 5)]);
        let ids: Vec<Vec<u8>> =
            groups.iter().map(|group| group.iter().map(|row| row.id.as_bytes()[0]).collect()).collect();
        assert_eq!(ids, [vec![1, 3], vec![2, 5], vec![4]]);
    }
}
