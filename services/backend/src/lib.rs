//! Taskwatch backend: the task API over Postgres with a transactional outbox.
//!
//! Layers, inside out: [`domain`] (rules, no I/O) → [`store`] (SQL) → [`service`] (use cases, one transaction
//! each) → [`api`] (HTTP). [`app`] wires them into a router; `main.rs` runs it.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod idempotency;
pub mod metrics;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod trace_context;
