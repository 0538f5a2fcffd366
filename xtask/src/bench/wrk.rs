//! Drives one endpoint in a closed loop with wrk (bench/wrk/tasks.lua) from a separate process and reads back its
//! figures. wrk, written in C, spends a fraction of the CPU per request that k6 does, so on two cores the figure
//! is the backend's, not the generator's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::cpu::CpuMeter;
use super::k6::{Endpoint, LoadSummary, run_to_summary};
use super::psql::Psql;
use super::report::LoadRun;
use crate::interrupt::Interrupt;

/// wrk stops by itself at the end of its duration; this is only for a wrk that hangs.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// wrk's threads: one per core, as its documentation advises; the connections are shared between them.
const THREADS: u32 = 2;
/// Completions per second well above what a backend here reaches (about 2,500/s measured): a `complete` run gets this many
/// open tasks per second of its duration.
const COMPLETE_RATE_BOUND: u64 = 4_000;
/// Creations per second to expect at the least when topping up open tasks.
const CREATE_RATE_FLOOR: u64 = 2_000;
/// Top-up runs before a `complete` run goes ahead with what there is.
const TOP_UP_ATTEMPTS: u32 = 3;

/// How to run wrk against one backend.
#[derive(Debug, Clone)]
pub struct WrkRunner<'a> {
    pub wrk: &'a Path,
    pub script: &'a Path,
    pub base_url: String,
    /// Comma-separated bearer tokens, one API user each (`bench-user-001` first).
    pub tokens: &'a str,
    /// Open connections, each with one request in flight.
    pub connections: u32,
    /// Where summaries and task lists go, named `wrk-{label}-{endpoint}.json` and `.tasks`.
    pub results_dir: &'a Path,
    pub label: &'static str,
    /// The backend's database, where `get` and `complete` find the open tasks to work on.
    pub database_url: String,
}

/// A closed loop ready to start: its endpoint and, for `get` and `complete`, the tasks it works on.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    endpoint: Endpoint,
    tasks_path: PathBuf,
    /// Requests the preparation itself sent (tasks created for `complete`): unmeasured, but the backend handled,
    /// logged and traced them.
    filler_requests: u64,
}

/// A measured closed loop, and the unmeasured requests its preparation sent.
#[derive(Debug, Clone)]
pub struct MeasuredRun {
    pub run: LoadRun,
    pub filler_requests: u64,
}

impl WrkRunner<'_> {
    /// Settles the database, prepares the run, then runs `endpoint` for `duration` with CPU sampled around the
    /// run alone.
    pub async fn measure(
        &self,
        endpoint: Endpoint,
        duration: Duration,
        meter: &CpuMeter,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<MeasuredRun> {
        psql.settle(&self.database_url).await?;
        let prepared = self.prepare(endpoint, duration, psql, interrupt).await?;
        let filler_requests = prepared.filler_requests;
        let before = meter.sample()?;
        let summary = self.run(prepared, duration, interrupt).await?;
        let cpu = before.shares_until(&meter.sample()?);
        Ok(MeasuredRun { run: LoadRun { summary, cpu }, filler_requests })
    }

    /// Lists the tasks `endpoint` works on, outside the measured window. A `complete` run of `duration` first gets
    /// enough open tasks to never complete one twice (a 409 would count as a failed request): unmeasured `create`
    /// runs make up any shortfall.
    async fn prepare(
        &self,
        endpoint: Endpoint,
        duration: Duration,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<PreparedRun> {
        let tasks_path = self.results_dir.join(format!("wrk-{}-{}.tasks", self.label, endpoint.name()));
        let mut filler_requests = 0;
        if endpoint == Endpoint::Complete {
            let needed = duration.as_secs().max(1) * COMPLETE_RATE_BOUND;
            for _ in 0..TOP_UP_ATTEMPTS {
                let open = self.open_tasks(psql).await?;
                if open >= needed {
                    break;
                }
                let seconds = (needed - open).div_ceil(CREATE_RATE_FLOOR);
                let filler =
                    PreparedRun { endpoint: Endpoint::Create, tasks_path: tasks_path.clone(), filler_requests: 0 };
                filler_requests += self.run(filler, Duration::from_secs(seconds), interrupt).await?.total_requests;
            }
        }
        if matches!(endpoint, Endpoint::Get | Endpoint::Complete) {
            self.write_open_tasks(psql, &tasks_path).await?;
        }
        Ok(PreparedRun { endpoint, tasks_path, filler_requests })
    }

    /// How many open tasks the bench users have.
    async fn open_tasks(&self, psql: &Psql) -> anyhow::Result<u64> {
        let count = psql
            .query_in(
                &self.database_url,
                "SELECT count(*) FROM backend.tasks WHERE status = 'open' AND owner_id ~ '^bench-user-\\d+$'",
            )
            .await?;
        count.parse().with_context(|| format!("counting open tasks: psql printed {count:?}"))
    }

    /// Runs the closed loop for `duration` (whole seconds, at least one).
    async fn run(
        &self,
        prepared: PreparedRun,
        duration: Duration,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<LoadSummary> {
        let PreparedRun { endpoint, tasks_path, .. } = prepared;
        let summary_path = self.results_dir.join(format!("wrk-{}-{}.json", self.label, endpoint.name()));
        let seconds = duration.as_secs().max(1);
        let mut command = tokio::process::Command::new(self.wrk);
        command
            .args(["--threads", &THREADS.to_string(), "--connections", &self.connections.max(THREADS).to_string()])
            .args(["--duration", &format!("{seconds}s"), "--timeout", "10s", "--script"])
            .arg(self.script)
            .arg(&self.base_url)
            // Passed through the environment, not the command line, where every process could read the tokens.
            .env("BENCH_ENDPOINT", endpoint.name())
            .env("BENCH_TOKENS", self.tokens)
            .env("BENCH_TASKS_FILE", &tasks_path)
            .env("BENCH_THREADS", THREADS.to_string())
            .env("BENCH_SUMMARY_PATH", &summary_path)
            // wrk's own report repeats the summary in prose.
            .stdout(std::process::Stdio::null());
        let run = format!("wrk {endpoint} run");
        run_to_summary("wrk", &run, &mut command, &summary_path, STOP_GRACE, interrupt).await
    }

    /// Every open task of the bench users as `user_index,task_id` lines, oldest first, read from the database
    /// itself: `get` reads them at random, `complete` completes each once.
    async fn write_open_tasks(&self, psql: &Psql, path: &Path) -> anyhow::Result<()> {
        let rows = psql
            .query_in(
                &self.database_url,
                "SELECT (substring(owner_id from 'bench-user-(\\d+)$')::int - 1) || ',' || id FROM backend.tasks \
                 WHERE status = 'open' AND owner_id ~ '^bench-user-\\d+$' ORDER BY created_at",
            )
            .await?;
        if rows.is_empty() {
            bail!("the bench users have no open tasks to read or complete; the create runs should have made them");
        }
        std::fs::write(path, rows + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
