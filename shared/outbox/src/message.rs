//! What goes into the outbox: one Kafka message, written in the caller's transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events::CloudEvent;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::OutboxError;
use crate::metrics;
use crate::table::Outbox;

/// One message for the relay to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// The CloudEvent id; also the row's primary key, so an event can never be written twice.
    pub id: Uuid,
    /// The Kafka topic to publish to, e.g. [`events::topics::REMINDERS`].
    pub topic: &'static str,
    /// Kafka message key: one key's messages are published in the order they were written.
    pub key: String,
    /// The CloudEvent `type`, e.g. `reminder.due.v1` (a bounded label value).
    pub event_type: String,
    /// The complete CloudEvent as JSON.
    pub payload: serde_json::Value,
    /// Kafka headers, e.g. `traceparent`.
    pub headers: BTreeMap<String, String>,
    /// When the event was created (its CloudEvent `time`): orders one key's messages and starts the publish-lag
    /// clock.
    pub created_at: DateTime<Utc>,
}

impl OutboxMessage {
    /// `event` for `topic` under `key`, carrying the current span's trace context, so the relay's producer span
    /// continues the trace of the request or message that caused the event.
    pub fn from_event<T: Serialize>(
        topic: &'static str,
        key: impl Into<String>,
        event: &CloudEvent<T>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: event.id,
            topic,
            key: key.into(),
            event_type: event.event_type.clone(),
            payload: event.to_json()?,
            headers: observability::trace_headers::current(),
            created_at: event.time,
        })
    }
}

/// Proof that a message was written in a transaction. Call [`Enqueued::committed`] once that transaction has
/// committed, so `taskwatch_outbox_events_written_total` counts only events that really exist.
#[derive(Debug)]
#[must_use = "call `committed()` after the transaction commits, so the event is counted"]
pub struct Enqueued {
    event_type: String,
}

impl Enqueued {
    /// Counts the event in `taskwatch_outbox_events_written_total{event_type}`.
    pub fn committed(self) {
        metrics::event_written(self.event_type);
    }
}

/// Writes `message` into `outbox` on `conn` — the caller's transaction, so the message exists exactly when the
/// change it announces does. Nothing is published here; the relay does that after the commit.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool, outbox: outbox::Outbox, event: events::CloudEvent<serde_json::Value>)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = pool.begin().await?;
/// // … the change itself, on `&mut *tx` …
/// let message = outbox::OutboxMessage::from_event(events::topics::REMINDERS, "task-42", &event)?;
/// let enqueued = outbox::enqueue(&mut tx, &outbox, &message).await?;
/// tx.commit().await?;
/// enqueued.committed();
/// # Ok(()) }
/// ```
pub async fn enqueue(
    conn: &mut PgConnection,
    outbox: &Outbox,
    message: &OutboxMessage,
) -> Result<Enqueued, OutboxError> {
    sqlx::query(outbox.sql().insert.clone())
        .bind(message.id)
        .bind(message.topic)
        .bind(&message.key)
        .bind(&message.event_type)
        .bind(Json(&message.payload))
        .bind(Json(&message.headers))
        .bind(message.created_at)
        .execute(conn)
        .await
        .map_err(outbox.error("insert outbox message"))?;
    Ok(Enqueued { event_type: message.event_type.clone() })
}
