//! Taskwatch `reminder`: keeps reminder jobs from task events and fires each due job exactly once, as a
//! `reminder.due.v1` event on the `reminders` topic.
//!
//! Inside out: [`plan`], [`decision`], [`lateness`], [`due_event`] (pure rules) → [`store`] (Postgres) →
//! [`handler`] (one task event, transport-neutral) and [`scheduler`] (due jobs → outbox) → [`consumer`] (Kafka) →
//! [`app`] (relay, probes, metrics, start-up, workers). `main.rs` runs it.

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod config;
pub mod consumer;
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

pub const SERVICE: ServiceInfo = ServiceInfo { name: "reminder", version: env!("CARGO_PKG_VERSION") };
