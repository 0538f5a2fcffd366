//! Taskwatch `reminder`: keeps reminder jobs from task events and fires each due job exactly once, as a
//! `reminder.due.v1` event on the `reminders` topic.
//!
//! Inside out: [`plan`], [`decision`], [`lateness`], [`due_event`] (pure rules) → [`store`] (Postgres) →
//! [`handler`] (one task event; its `messaging::Handler` impl is the Kafka side) and [`scheduler`] (due jobs →
//! outbox) → [`app`] (the service for the runtime: relay, checks, start-up steps, workers). `main.rs` runs it.

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod config;
pub mod decision;
pub mod due_event;
pub mod handler;
pub mod housekeeping;
pub mod lateness;
pub mod metrics;
pub mod plan;
pub mod scheduler;
pub mod store;
pub mod trace_context;

use observability::ServiceInfo;

/// The service's name and version, in logs, traces and metrics.
pub const SERVICE: ServiceInfo = ServiceInfo { name: "reminder", version: env!("CARGO_PKG_VERSION") };
