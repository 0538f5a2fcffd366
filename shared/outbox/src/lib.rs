//! The transactional outbox for any Taskwatch service: an event is written into the service's own
//! `<schema>.outbox` table in the same transaction as the change it announces, and a relay publishes committed
//! rows to Kafka. Nothing is published inside a request; nothing is lost while the broker is down.
//!
//! | Piece | Item | What it gives a service |
//! |---|---|---|
//! | Table | [`Outbox::new`] / [`Outbox::install`] | `<schema>.outbox` with its indexes and NOTIFY trigger, created idempotently |
//! | Write | [`OutboxMessage::from_event`] + [`enqueue`] | a CloudEvent + topic + key + the current trace context, in the caller's transaction |
//! | Relay | [`Relay`] | `FOR UPDATE SKIP LOCKED` + lease + advisory lock, LISTEN/NOTIFY with poll fallback, per-key order, backoff, retention |
//! | Config | [`RelayConfig::from_env`] | the variables below |
//! | Metrics | [`metrics`] | `taskwatch_outbox_events_written_total{event_type}`, `taskwatch_outbox_pending_events`, `taskwatch_outbox_publish_lag_seconds`, `taskwatch_outbox_publish_failures_total` |
//!
//! # Environment variables (besides `KAFKA_*` from `messaging`)
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `OUTBOX_RELAY_BATCH_SIZE` | `100` | rows claimed per round trip (1–1000) |
//! | `OUTBOX_RELAY_LEASE` | `90s` | how long a claim is exclusive; must exceed twice `KAFKA_DELIVERY_TIMEOUT` |
//! | `OUTBOX_RELAY_POLL_INTERVAL` | `500ms` | fallback wake-up when no NOTIFY arrives |
//! | `OUTBOX_RELAY_MAX_BACKOFF` | `30s` | longest retry delay after failed publishes (doubles from 1s) |
//! | `OUTBOX_RETENTION` | `7d` | how long published rows are kept |
//!
//! # Usage
//!
//! ```no_run
//! use database::Schema;
//! use messaging::{KafkaConfig, TopicSpec};
//! use outbox::{Outbox, OutboxMessage, Relay, RelayConfig};
//! use observability::config::{ConfigError, Env};
//! use tokio_util::sync::CancellationToken;
//!
//! const SCHEMA: Schema = Schema::new("reminder");
//! # const SERVICE: observability::ServiceInfo = observability::ServiceInfo { name: "reminder", version: "0" };
//!
//! // Config: read KAFKA_* once, hand it to the relay's settings.
//! fn load(env: Env) -> Result<RelayConfig, ConfigError> {
//!     env.load(|env| {
//!         let kafka = KafkaConfig::from_env(env, SERVICE);
//!         RelayConfig::from_env(env, kafka)
//!     })
//! }
//!
//! # async fn demo(pool: sqlx::PgPool, event: events::CloudEvent<serde_json::Value>, stop: CancellationToken)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! // Start-up, after the service's own migrations (`database::migrate`):
//! let outbox = Outbox::new(SCHEMA);
//! outbox.install(&pool).await?;
//! outbox::metrics::describe(&["reminder.due.v1"]);
//! let relay = Relay::new(pool.clone(), outbox.clone(), load(Env::from_process())?)?
//!     .ensuring_topics([TopicSpec::new(events::topics::REMINDERS)]);
//! tokio::spawn(relay.run(stop.clone()));
//!
//! // In a use case: the change and its event in one transaction.
//! let mut tx = pool.begin().await?;
//! // … UPDATE reminder.jobs … on `&mut *tx`
//! let message = OutboxMessage::from_event(events::topics::REMINDERS, "task-42", &event)?;
//! let enqueued = outbox::enqueue(&mut tx, &outbox, &message).await?;
//! tx.commit().await?;
//! enqueued.committed(); // counts taskwatch_outbox_events_written_total
//! # Ok(()) }
//! ```

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod error;
mod message;
pub mod metrics;
mod queue;
mod relay;
mod table;

pub use config::RelayConfig;
pub use error::OutboxError;
pub use message::{Enqueued, OutboxMessage, enqueue};
pub use relay::Relay;
pub use table::Outbox;
