//! The live task stream, `GET /v1/tasks/stream`: each user's task changes as Server-Sent Events.
//!
//! ```text
//!  task-events ──► feed (TopicTail: every partition, no group) ──► hub (resume log + per-user streams) ──► SSE
//! ```
//!
//! - **Every replica sees every change.** The [`feed`] of each replica reads all of `task-events` itself, so a
//!   client gets its changes whichever replica it is connected to.
//! - **Resuming.** The SSE `id` of each change is its event id. A client that reconnects with `Last-Event-ID`
//!   (to any replica) gets every later change of its own, once, in order: `task-events` is keyed by owner, so one
//!   user's changes sit in one partition and every replica reads them in the same order. The log keeps
//!   `TASK_STREAM_RESUME_WINDOW` (and at most `TASK_STREAM_RESUME_EVENTS` changes); an id outside it is answered
//!   410, and the client lists its tasks again and reconnects without `Last-Event-ID`.
//! - **Limits.** `TASK_STREAM_MAX_PER_USER` streams per user (429) and `TASK_STREAM_MAX_CONNECTIONS` per replica
//!   (503). A client that does not read fast enough is closed and resumes.
//! - **Shutdown** closes every stream, so none holds the HTTP server's drain.

pub mod feed;
pub mod hub;

use std::time::Duration;

use messaging::KafkaConfig;
use observability::config::{DurationValue, Env};

pub use hub::{Hub, HubLimits, Refused, StreamEvent, Subscription};

/// The task stream's settings; `None` in the backend's configuration when the stream is off.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The broker the feed reads `task-events` from.
    pub kafka: KafkaConfig,
    /// Resume window and connection limits.
    pub limits: HubLimits,
    /// How often an idle stream gets a comment line, so proxies and load balancers keep it open.
    pub heartbeat: Duration,
    /// The reconnection delay the stream asks clients to wait (SSE `retry`).
    pub reconnect: Duration,
}

impl StreamConfig {
    /// Reads `TASK_STREAM_*` for a stream fed from `kafka` (`None` when the Kafka settings were invalid, which
    /// `env` has recorded; the stream's own settings are still checked).
    pub fn from_env(env: &mut Env, kafka: Option<KafkaConfig>) -> Option<Self> {
        let limits = HubLimits {
            resume_window: env.with_default("TASK_STREAM_RESUME_WINDOW", DurationValue::from_secs(600)).get(),
            resume_events: env.with_default("TASK_STREAM_RESUME_EVENTS", 10_000usize),
            resume_wait: env.with_default("TASK_STREAM_RESUME_WAIT", DurationValue::from_secs(5)).get(),
            max_per_user: env.with_default("TASK_STREAM_MAX_PER_USER", 5usize),
            max_total: env.with_default("TASK_STREAM_MAX_CONNECTIONS", 1_000usize),
        };
        let heartbeat = env.with_default("TASK_STREAM_HEARTBEAT", DurationValue::from_secs(15)).get();
        let reconnect = env.with_default("TASK_STREAM_RECONNECT", DurationValue::from_secs(3)).get();
        for (name, value) in [
            ("TASK_STREAM_RESUME_EVENTS", limits.resume_events),
            ("TASK_STREAM_MAX_PER_USER", limits.max_per_user),
            ("TASK_STREAM_MAX_CONNECTIONS", limits.max_total),
        ] {
            if value == 0 {
                env.invalid(name, "must be at least 1");
            }
        }
        if heartbeat.is_zero() {
            env.invalid("TASK_STREAM_HEARTBEAT", "must be longer than 0");
        }
        Some(Self { kafka: kafka?, limits, heartbeat, reconnect })
    }
}
