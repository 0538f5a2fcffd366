//! `backend.outbox`: events written in the same transaction as the change they announce.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::error::{Context, StoreError};

/// One message for the relay to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// The CloudEvent id; also the row's primary key, so an event can never be written twice.
    pub id: Uuid,
    pub topic: &'static str,
    /// Kafka message key.
    pub key: String,
    pub event_type: String,
    /// The complete CloudEvent as JSON.
    pub payload: serde_json::Value,
    /// Kafka headers, e.g. `traceparent`.
    pub headers: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut PgConnection, message: &OutboxMessage) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO backend.outbox (id, topic, message_key, event_type, payload, headers, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(message.id)
    .bind(message.topic)
    .bind(&message.key)
    .bind(&message.event_type)
    .bind(Json(&message.payload))
    .bind(Json(&message.headers))
    .bind(message.created_at)
    .execute(conn)
    .await
    .context("insert outbox message")?;
    Ok(())
}
