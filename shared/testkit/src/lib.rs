//! Test harness shared by every Taskwatch test suite: real parts, started and cleaned up for you.
//!
//! - [`postgres`]: a throwaway Postgres 15 server ([`postgres::PostgresServer`]) and a fresh database
//!   per test on a shared server ([`postgres::TestDatabase`], feature `database`).
//! - [`otlp`]: an in-test OTLP/HTTP trace receiver ([`otlp::OtlpReceiver`], feature `otlp`).
//! - [`kafka`]: a throwaway Kafka-protocol broker, tansu ([`kafka::Broker`], feature `kafka`).
//! - [`smtp`]: an in-test SMTP server that keeps the mail it received ([`smtp::SmtpSink`], feature `smtp`).
//! - [`webhook`]: an in-test HTTP server recording webhook calls ([`webhook::WebhookReceiver`], feature
//!   `webhook`).
//! - [`process`]: [`process::ChildGuard`] kills and reaps a spawned service binary and keeps its output
//!   searchable.
//! - [`python`]: the pinned Python tools (independent references, schemathesis) in a cached virtualenv.
//! - [`wait`]: wait for a condition with a deadline instead of sleeping.
//! - [`exposition`]: read a service's `/metrics` by metric name and labels.
//! - [`collected`]: an append-only list that tests can wait on ([`collected::Collected`]).
//!
//! Nothing started here outlives the test process: servers carry a watchdog that cleans up even when
//! the process is killed, and guards clean up on drop.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testkit::Error> {
//! let db = testkit::postgres::TestDatabase::new().await?;
//! sqlx::query("SELECT 1").execute(&db.pool()).await.ok();
//! # Ok(()) }
//! ```

pub mod collected;
mod command;
mod error;
pub mod exposition;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod python;
pub mod services;
#[cfg(feature = "smtp")]
pub mod smtp;
pub mod wait;
#[cfg(feature = "webhook")]
pub mod webhook;
pub mod workspace;

pub use error::Error;
