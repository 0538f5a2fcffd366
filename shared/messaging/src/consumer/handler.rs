//! What a service plugs into the consumer loop: a handler for one decoded message at a time.

use std::fmt::Display;
use std::future::Future;

use events::CloudEvent;

use crate::headers::MessageHeaders;

/// A message whose payload is a CloudEvents envelope (`data` still raw JSON, so the handler picks
/// the payload type from `event.event_type`).
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: MessageHeaders,
    pub event: CloudEvent<serde_json::Value>,
}

/// Why a handler did not finish a message; decides what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Transient (database or downstream unavailable): the same message is retried after a backoff,
    /// never skipped and never committed, so the partition's order holds.
    #[error("transient failure, will retry: {0}")]
    Retry(String),
    /// Permanent (the message can never succeed): it goes to the dead-letter topic with this reason,
    /// then the partition moves on.
    #[error("rejected: {0}")]
    Reject(String),
}

impl HandlerError {
    pub fn retry(reason: impl Display) -> Self {
        Self::Retry(reason.to_string())
    }

    pub fn reject(reason: impl Display) -> Self {
        Self::Reject(reason.to_string())
    }
}

/// Handles one message. Return `Ok` only once its effects are durable (the database transaction
/// committed): the offset is stored for commit right after, and a crash before that re-delivers.
///
/// Handlers must be idempotent (dedupe on `event.id`): delivery is at-least-once.
///
/// Any `Fn(IncomingMessage) -> impl Future<Output = Result<(), HandlerError>>` is a handler.
pub trait Handler: Send + Sync {
    fn handle(&self, message: IncomingMessage) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(IncomingMessage) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(&self, message: IncomingMessage) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(message)
    }
}
