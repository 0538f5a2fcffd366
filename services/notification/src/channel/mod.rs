//! The two ways a reminder reaches its owner, and how a send can fail.
//!
//! Each sender knows nothing of the database or retries: it makes one attempt and classifies the outcome, so the
//! worker can decide between "sent", "try again later" and "give up now".

pub mod email;
pub mod guard;
pub mod signature;
pub mod webhook;

use std::fmt;
use std::str::FromStr;

/// A delivery channel; one delivery per (event, channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A mail through the configured SMTP server to the owner's e-mail address.
    Email,
    /// A signed JSON `POST` to the owner's webhook URL.
    Webhook,
}

impl Channel {
    /// Every channel, in a fixed order (e.g. for per-channel metrics and gauges).
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Webhook];

    /// The metric label and the database value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is neither `email` nor `webhook`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery channel `{0}`")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            other => Err(UnknownChannel(other.to_owned())),
        }
    }
}

/// What a failed attempt says about the destination and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The destination is down or unreachable (refused, timed out, 5xx, 4xx SMTP reply): retry later, and count
    /// it against the destination's circuit breaker.
    Unavailable,
    /// The destination is up but turned this message away for now (e.g. a 4xx webhook answer): retry later; the
    /// breaker stays closed.
    Refused,
    /// This message can never be delivered there (a forbidden destination, a malformed address, a permanent
    /// SMTP rejection): dead-letter it now.
    Permanent,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendFailure {
    /// Whether to retry, and whether the failure counts against the destination's circuit breaker.
    pub kind: FailureKind,
    /// Safe to log and to put into the dead letter: names no recipient address and no message content.
    pub message: String,
}

impl SendFailure {
    /// A failure of `kind`; `message` is logged and dead-lettered, so it must name no recipient or content.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Whether the destination itself should be considered healthy after this failure.
    pub fn destination_healthy(&self) -> bool {
        self.kind != FailureKind::Unavailable
    }
}
