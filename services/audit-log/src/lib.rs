//! Taskwatch `audit-log`, generated from the service template (`cargo xtask new-service audit-log`): the audit
//! trail of every task change. Each `task-events` change is stored once, by its event id, however often Kafka
//! delivers it, as an append-only record of who changed what and when, with each changed field's value before
//! and after. Records older than `AUDIT_RETENTION` are deleted. The backend reads a task's history through the
//! internal API and serves it as `GET /v1/tasks/{id}/history`.
//!
//! Inside out: [`diff`] (what a change changed, pure) → [`store`] (Postgres: the record and the task's last
//! state in one transaction) → [`handler`] (one event end to end; its `messaging::Handler` impl is the Kafka
//! side) → [`api`] (the internal history API) and [`retention`] → [`app`] (the service for the runtime: checks,
//! start-up steps, routes, workers). `main.rs` runs it.

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod app;
pub mod config;
pub mod diff;
pub mod handler;
pub mod metrics;
pub mod retention;
pub mod store;

use observability::ServiceInfo;

/// The service's name: log field, metric pool label, Kafka group id default.
pub const NAME: &str = "audit-log";

/// Name and version, in logs, traces and metrics.
pub const SERVICE: ServiceInfo = ServiceInfo { name: NAME, version: env!("CARGO_PKG_VERSION") };
