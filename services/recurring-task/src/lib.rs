//! Taskwatch `recurring-task`: when a recurring task is completed, computes its next occurrence in the task's
//! time zone and creates it through the backend's internal API, exactly once however often the event arrives.
//!
//! Inside out: [`decision`] (what an event asks for; pure, no I/O) → [`backend`] (the circuit-broken call) →
//! [`handler`] (one event end to end; its `messaging::Handler` impl is the Kafka side) → [`app`] (the service
//! for the runtime: checks, start-up steps, the consumer). `main.rs` runs it.

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod backend;
pub mod config;
pub mod decision;
pub mod handler;
pub mod metrics;

use observability::ServiceInfo;

/// The service's name and version, as telemetry and Kafka clients report them (the name is also the
/// default Kafka client and consumer group id).
pub const SERVICE: ServiceInfo = ServiceInfo { name: "recurring-task", version: env!("CARGO_PKG_VERSION") };
