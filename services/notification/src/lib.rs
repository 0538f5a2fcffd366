//! Taskwatch `notification`: delivers due reminders by e-mail (SMTP) and webhook, exactly once in effect per
//! event and channel, with retries, per-destination circuit breakers and dead letters.
//!
//! Inside out: [`channel`] (rendering, signing, the SSRF guard, one send attempt each; no database) →
//! [`retry`] and [`breaker`] (when to try again) → [`store`] (the delivery log and queue) → [`settings`] (the
//! circuit-broken backend lookup) → [`intake`] (an event becomes deliveries) and [`worker`] (deliveries are
//! sent; the intake's `messaging::Handler` impl is the Kafka side) → [`app`] (the service for the runtime:
//! checks, start-up steps, workers). `main.rs` runs it.

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod breaker;
pub mod channel;
pub mod config;
pub mod dead_letter;
pub mod intake;
pub mod metrics;
pub mod retry;
pub mod settings;
pub mod store;
pub mod worker;

use observability::ServiceInfo;

/// The service's name and version, stamped on its telemetry; the name is also the default Kafka client and
/// consumer group id.
pub const SERVICE: ServiceInfo = ServiceInfo { name: "notification", version: env!("CARGO_PKG_VERSION") };

/// The service's migrations, applied into [`store::SCHEMA`] at start-up.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}
