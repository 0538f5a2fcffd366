//! Taskwatch backend: the task API over Postgres with a transactional outbox.
//!
//! Layers, inside out: [`domain`] (rules, no I/O) → [`store`] (SQL) → [`service`] (use cases, one transaction
//! each) → [`api`] (HTTP). [`app`] wires them into a router; `main.rs` runs it.

/// The backend's name and version, as telemetry and Kafka clients report them.
pub const SERVICE: observability::ServiceInfo =
    observability::ServiceInfo { name: "backend", version: env!("CARGO_PKG_VERSION") };

pub mod api;
pub mod app;
pub mod audit_log;
pub mod auth;
pub mod config;
pub mod domain;
pub mod idempotency;
pub mod metrics;
pub mod relay;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod stream;
