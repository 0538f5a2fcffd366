//! End-to-end harness: start Taskwatch's real service binaries against real dependencies.
//!
//! - [`Stack`]: the whole system for one test — a database (or a dedicated Postgres server), a tansu broker,
//!   an OTLP receiver, an SMTP sink, a webhook receiver, and the four service binaries as processes that
//!   a test can stop, kill, restart and scrape.
//! - [`Api`]: one user's calls to the backend's `/v1` API.
//! - [`kafka`]: raw reads of a topic and byte-exact re-publishing (duplicate deliveries, dead letters).
//! - [`signature`]: the webhook signature, recomputed independently of the service.
//! - [`settle`]: when nothing is in flight any more, so "exactly once" can be counted.
//! - [`time`]: instants for task bodies.
//! - [`monitoring`]: the repo's Prometheus configuration, rules and telemetry registry made testable, a real
//!   Prometheus, `promtool`.
//! - [`alerting`]: the repo's Alertmanager configuration made testable, a real Alertmanager, `amtool`.
//! - [`config_table`]: a service README's configuration table, which compose and the Helm chart are checked
//!   against.
//! - [`grafana`]: the dashboards read into panels and queries, and Grafana's published dashboard JSON Schema.
//! - [`tool_cache`]: offline checking tools (helm, Compose, hadolint, …) installed once at pinned versions.
//! - [`RunningBackend`], [`RunningRecurringTask`]: a single service binary, for tests that need no more.
//!
//! The binaries come from the workspace's `target/` directory (`cargo xtask test` builds them first); a
//! missing binary is reported with the command that builds it.

pub mod alerting;
mod api;
pub mod chaos;
mod commands;
pub mod config_table;
pub mod grafana;
pub mod kafka;
pub mod monitoring;
pub mod pipeline;
mod running;
pub mod settle;
pub mod signature;
pub mod sse;
mod stack;
pub mod time;
pub mod tool_cache;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::process::ChildGuard;

pub use api::{Api, ApiError, TraceParent};
pub use commands::{
    INTERNAL_SERVICE_TOKEN, JWT_SECRET, WEBHOOK_SIGNING_SECRET, backend_command, backend_with_kafka_command,
    recurring_task_command,
};
pub use running::{RunningBackend, RunningRecurringTask};
pub use stack::{Service, Stack, StackBuilder};
pub use testkit::exposition::{metric_samples, metric_sum};

/// Long enough for a debug build on two busy cores; conditions usually hold within a second.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// For an effect that crosses the whole pipeline (relay → broker → consumer → outbox → broker → consumer →
/// SMTP), possibly after a consumer-group rebalance that waits out a killed member's session, on two busy
/// cores with other stacks running. A passing test never waits this long.
pub const PIPELINE_DEADLINE: Duration = Duration::from_secs(120);

/// Why the harness could not start, reach or inspect the system under test (as opposed to a failed assertion).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Binding a probe socket to find a free port failed.
    #[error("no free TCP port on 127.0.0.1: {0}")]
    NoPort(#[source] std::io::Error),
    /// A testkit helper failed: a binary missing from `target/`, a process that would not spawn, a dependency
    /// that would not start.
    #[error(transparent)]
    Testkit(#[from] testkit::Error),
    /// A service's readiness endpoint did not answer 200 within [`DEADLINE`].
    #[error("{service} did not become ready within {DEADLINE:?}; last output:\n{output}")]
    NotReady {
        /// The process's name as its guard reports it.
        service: String,
        /// Its captured stdout then stderr, one line each, for diagnosing why it never came up.
        output: String,
    },
    /// Creating a Kafka client, subscribing or re-publishing failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What the harness was doing, naming the topic where there is one.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A replica index beyond the service's replica count, or a replica waited on while it is stopped or killed.
    #[error("the stack has no {0:?} process")]
    NotStarted(Service),
    /// Consumer lag, outbox rows or pending deliveries were still non-zero after [`DEADLINE`].
    #[error("the pipeline did not settle within {DEADLINE:?}; last scrapes:\n{metrics}")]
    NotSettled {
        /// Each service's last lag, outbox and pending-delivery samples, under a `--- service` heading.
        metrics: String,
    },
}

/// The repository's top-level directory (the parent of this crate's `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Path of a workspace binary built for the current profile.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    Ok(testkit::workspace::binary(name)?)
}

/// A port that was free a moment ago, from below the ephemeral range (see [`testkit::ports::free_port`]).
/// Services take their port from the environment, so the test must choose it.
pub fn free_port() -> Result<u16, HarnessError> {
    testkit::ports::free_port().map_err(HarnessError::NoPort)
}

/// Waits until `GET {base_url}{path}` answers 200, reporting the process's output when it never does.
pub async fn wait_until_ok(process: &ChildGuard, base_url: &str, path: &str) -> Result<(), HarnessError> {
    let client = reqwest::Client::new();
    let url = format!("{base_url}{path}");
    let ok = testkit::wait::until(DEADLINE, || {
        let request = client.get(&url).send();
        async move { matches!(request.await, Ok(response) if response.status() == 200) }
    })
    .await;
    ok.map_err(|_| HarnessError::NotReady {
        service: process.name().to_owned(),
        output: [process.stdout_lines(), process.stderr_lines()].concat().join("\n"),
    })
}

/// Runs `backend token --sub SUBJECT` and returns what it printed.
pub fn mint_token(subject: &str) -> Result<String, HarnessError> {
    let output = Command::new(binary("backend")?)
        .env_clear()
        .env("AUTH_JWT_SECRET", JWT_SECRET)
        .args(["token", "--sub", subject])
        .output()
        .map_err(|source| testkit::Error::Spawn { command: "backend token".into(), source })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
