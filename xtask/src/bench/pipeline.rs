//! The pipeline phase: `pipeline-bench` (tests/src/pipeline.rs) runs the whole system on the release-built
//! services with their own defaults and the chart's sampler, and prints its figures as one JSON line, read here.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use super::build::Binaries;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// Stopping includes the driver stopping every service gracefully.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// How much pipeline load to offer.
#[derive(Debug, Clone, Copy)]
pub struct PipelineLoad {
    pub reminders_per_second: u32,
    pub seconds: u32,
    pub completions: u32,
}

/// What `pipeline-bench` measured (its JSON line).
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineRun {
    pub reminders_per_second: u32,
    pub seconds: u32,
    /// How far ahead of its instant each reminder's task was created.
    pub planning_lead_ms: u64,
    /// Between two listings while waiting for a next occurrence: the resolution of those latencies.
    pub poll_interval_ms: u64,
    /// Reminder due → mail accepted by the SMTP sink.
    pub reminders: EventLatencies,
    /// Reminders whose task was created after its instant.
    pub planned_late: u64,
    pub duplicated_mails: u64,
    /// Completion answered → next occurrence listed.
    pub next_occurrences: EventLatencies,
    /// Per service, in start order.
    pub memory: Vec<ServiceMemory>,
}

/// Latencies of a set of events, in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct EventLatencies {
    pub expected: u64,
    pub arrived: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl EventLatencies {
    /// Every event arrived.
    pub fn complete(&self) -> bool {
        self.arrived == self.expected && self.expected > 0
    }
}

/// A service's resident memory idle and at its peak under the pipeline load.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceMemory {
    pub service: String,
    pub idle_bytes: u64,
    pub peak_bytes: u64,
}

/// Runs the driver with `load` and reads its figures; the broker is `tansu`.
pub async fn run(
    binaries: &Binaries,
    tansu: &Path,
    load: PipelineLoad,
    interrupt: &mut Interrupt,
) -> anyhow::Result<PipelineRun> {
    eprintln!(
        "xtask bench: pipeline, {} reminders/s for {} s and {} completions on the whole system…",
        load.reminders_per_second, load.seconds, load.completions
    );
    let mut command = Command::new(&binaries.pipeline_driver);
    command
        .args(["--reminders-per-second", &load.reminders_per_second.to_string()])
        .args(["--seconds", &load.seconds.to_string()])
        .args(["--completions", &load.completions.to_string()])
        .env(testkit::workspace::BIN_DIR_ENV, &binaries.services_dir)
        .env(testkit::kafka::TANSU_BIN_ENV, tansu)
        .stdout(Stdio::piped());
    let mut child = children::spawn_group_leader("pipeline-bench", &mut command)?;
    let mut stdout = child.stdout.take().context("the driver's stdout is piped")?;
    let output = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.map(|_| text)
    });
    match children::wait_or_stop(&mut child, interrupt, STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted during the pipeline phase"),
        Ended::Exited(status) if !status.success() => bail!("pipeline-bench failed ({status}); its log is above"),
        Ended::Exited(_) => {}
    }
    let text = output.await.context("reading pipeline-bench's output")?.context("reading pipeline-bench's output")?;
    let line = text.lines().last().context("pipeline-bench printed no figures")?;
    serde_json::from_str(line).with_context(|| format!("pipeline-bench's figures are not what xtask reads: {line}"))
}
