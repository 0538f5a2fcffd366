//! What a service plugs into the consumer loop: a handler for one decoded message at a time, whose error says
//! whether trying again can help.

use std::future::Future;

use events::CloudEvent;

use crate::headers::MessageHeaders;

/// A message whose payload is a CloudEvents envelope (`data` still raw JSON, so the handler picks
/// the payload type from `event.event_type`).
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// The topic it was read from.
    pub topic: String,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The message key (Taskwatch keys by aggregate id, so one task's events stay in order).
    pub key: Option<Vec<u8>>,
    /// Its headers, trace context included.
    pub headers: MessageHeaders,
    /// The decoded envelope.
    pub event: CloudEvent<serde_json::Value>,
}

impl IncomingMessage {
    /// `message` as read, with its already parsed `headers` and decoded `event`.
    pub(crate) fn read(
        message: &impl rdkafka::Message,
        headers: MessageHeaders,
        event: CloudEvent<serde_json::Value>,
    ) -> Self {
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            headers,
            event,
        }
    }
}

/// What a handler's failure means for the message that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database or a downstream service is unavailable: the same message is retried after a backoff,
    /// never skipped and never committed, so the partition's order holds.
    Transient,
    /// The message can never succeed: it goes to the dead-letter topic with the error's chain as the reason,
    /// then the partition moves on.
    Permanent,
}

/// A handler's error: an ordinary error that also says whether retrying can help. Its whole source chain is
/// logged and, for a permanent failure, written as the dead letter's reason.
pub trait HandlerFailure: std::error::Error + Send + Sync + 'static {
    /// Whether the message is retried in place or dead-lettered.
    fn failure(&self) -> Failure;
}

/// An error of boxed cause for handlers with no error type of their own (tests, small adapters).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retried in place ([`Failure::Transient`]); reads as its cause.
    #[error(transparent)]
    Retry(Box<dyn std::error::Error + Send + Sync>),
    /// Dead-lettered ([`Failure::Permanent`]); reads as its cause, which becomes the dead letter's reason.
    #[error(transparent)]
    Reject(Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// A transient failure caused by `cause` (an error or a message).
    pub fn retry(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Retry(cause.into())
    }

    /// A permanent failure caused by `cause` (an error or a message).
    pub fn reject(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Reject(cause.into())
    }
}

impl HandlerFailure for HandlerError {
    fn failure(&self) -> Failure {
        match self {
            Self::Retry(_) => Failure::Transient,
            Self::Reject(_) => Failure::Permanent,
        }
    }
}

/// Handles one message. Return `Ok` only once its effects are durable (the database transaction
/// committed): the offset is stored for commit right after, and a crash before that re-delivers.
///
/// Handlers must be idempotent (dedupe on `event.id`): delivery is at-least-once.
///
/// Any `Fn(IncomingMessage) -> impl Future<Output = Result<(), E>>` with `E:` [`HandlerFailure`] is a handler.
pub trait Handler: Send + Sync {
    /// Why a message was not finished, and whether to retry it.
    type Error: HandlerFailure;

    /// Handles `message`; see the trait's documentation.
    fn handle(&self, message: IncomingMessage) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(IncomingMessage) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), E>> + Send,
    E: HandlerFailure,
{
    type Error = E;

    fn handle(&self, message: IncomingMessage) -> impl Future<Output = Result<(), E>> + Send {
        self(message)
    }
}
