//! Postgres persistence: one module per table, plain runtime queries (no compile-time database needed).
//!
//! Functions take a `&mut PgConnection` so the caller decides the transaction: a use case that writes a task
//! and its outbox event passes the same transaction to both.

pub mod error;
pub mod idempotency;
pub mod migrate;
pub mod occurrences;
pub mod outbox;
pub mod settings;
pub mod tasks;

pub use error::StoreError;
