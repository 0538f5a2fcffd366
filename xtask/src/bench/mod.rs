//! `cargo xtask bench`: throughput, latency, CPU per request and memory of the backend's task API in three telemetry
//! modes (off; the shipped production defaults; everything traced), next to the Postgres ceiling of its write path;
//! the figures go to BENCHMARKS.md. A report, not a test: it fails only when it cannot measure, never because a
//! target was missed. `--quick` is the short run CI makes: the same phases, a few seconds each, written beside the
//! build instead of over BENCHMARKS.md, so every CI log shows the ratios.
//!
//! The run:
//! 1. install what is missing (Postgres, pgbench, wrk, k6) and build in release the backend and the bench's helpers
//!    (the telemetry sink, the framework ceiling);
//! 2. start a throwaway Postgres; mint one token per API user;
//! 3. three backends side by side, each on its own fresh database, each mode with telemetry with a sink of its own
//!    that receives its traces and scrapes its metrics; a warm-up of each (k6); then rounds of one closed-loop wrk
//!    run per endpoint, the modes taking turns (the order rotated each time, so drift over the run hits all alike);
//!    the framework ceiling (`get` and `list` with nothing but axum, sqlx and token checks, on the off mode's
//!    database) takes its turn in the rounds of those two; then one open-loop mixed k6 run per mode. The database
//!    is settled before, and CPU use is sampled around, every measured run; each backend's memory is read idle
//!    after start and again after its loads;
//! 4. pgbench with the create transaction as the write ceiling;
//! 5. the pipeline phase (`pipeline-bench`, tests/src/pipeline.rs): the whole system on the release services,
//!    reminders falling due at a sustained rate and recurring tasks completed, and every service's memory;
//! 6. the report, keeping BENCHMARKS.md's hand-written notes; raw summaries and logs stay in `target/bench/`.

mod backend;
mod build;
mod ceiling;
mod cpu;
mod k6;
mod machine;
mod pgbench;
mod pipeline;
mod psql;
mod report;
mod server;
mod sink;
mod tools;
mod under_test;
mod wrk;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use testkit::postgres::PostgresServer;

use self::build::Binaries;
use self::ceiling::FrameworkCeiling;
use self::cpu::{CpuMeter, CpuShares};
use self::k6::Endpoint;
use self::pgbench::Pgbench;
use self::pipeline::PipelineLoad;
use self::psql::Psql;
use self::report::{CeilingRun, FrameworkCeilingRun, ModeRun, Report, Settings};
use self::sink::TelemetrySink;
use self::tools::Tools;
use self::under_test::{Launch, Mode, ModeUnderTest};
use crate::cargo;
use crate::dev_credentials::{self, random_secret};
use crate::interrupt::Interrupt;

const K6_SCRIPT: &str = "bench/k6/tasks.js";
const WRK_SCRIPT: &str = "bench/wrk/tasks.lua";
const PGBENCH_SCRIPT: &str = "bench/pgbench/create_task.sql";
/// Seconds of unreported load before each mode's first measured run.
const WARMUP_SECONDS: u64 = 5;
/// How often the sink scrapes `/metrics` with telemetry on: more often than a real Prometheus (15–60 s), so
/// the figure is an upper bound of what scraping costs.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the postmaster may take to reap the pgbench connections before the ceiling's CPU is read.
const CONNECTIONS_REAPED: Duration = Duration::from_secs(10);
/// How long the machine is watched, idle, before the first load: other work running shows up in the report.
const BACKGROUND_SAMPLE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The short run CI makes: one round of 3 s per endpoint, 5 s of mixed load and of pgbench, the report in
    /// target/bench/BENCHMARKS-quick.md. Overrides the durations below.
    #[arg(long)]
    quick: bool,
    /// Closed-loop rounds per endpoint (create, get, list, complete) and telemetry mode. Four by default: on get and
    /// list four servers take turns (three modes and the framework ceiling), and over four rounds of the rotated
    /// order each takes every slot once, so drift over the run falls on all alike. (Two rounds left single
    /// endpoints 10 % apart between modes whose controlled A/B showed no difference.)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Seconds of each closed-loop round.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    endpoint_seconds: u64,
    /// Seconds of the mixed open-loop run, per telemetry mode.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    mixed_seconds: u64,
    /// Arrival rate of the mixed run, in requests per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Connections of the closed-loop runs (and k6's users of the warm-up), each acting as its own API user.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1000))]
    vus: u32,
    /// Reminders falling due per second in the pipeline phase.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reminders_per_second: u32,
    /// Seconds of reminders in the pipeline phase.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=600))]
    pipeline_seconds: u32,
    /// Recurring tasks completed in the pipeline phase (five per second).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    completions: u32,
    /// Seconds of the pgbench ceiling run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pgbench_seconds: u64,
    /// Where the report goes, relative to the workspace root (default: BENCHMARKS.md, or
    /// target/bench/BENCHMARKS-quick.md with --quick).
    #[arg(long)]
    output: Option<PathBuf>,
}

impl Args {
    fn settings(&self) -> Settings {
        let seconds = |full: u64, quick: u64| Duration::from_secs(if self.quick { quick } else { full });
        Settings {
            quick: self.quick,
            rounds: if self.quick { 1 } else { self.rounds },
            endpoint_duration: seconds(self.endpoint_seconds, 3),
            mixed_duration: seconds(self.mixed_seconds, 5),
            warm_up: seconds(WARMUP_SECONDS, 2),
            rate: self.rate,
            vus: self.vus,
            pgbench_duration: seconds(self.pgbench_seconds, 5),
            pipeline: PipelineLoad {
                reminders_per_second: self.reminders_per_second,
                seconds: if self.quick { 5 } else { self.pipeline_seconds },
                completions: if self.quick { 10 } else { self.completions },
            },
            database_connections: backend::DATABASE_CONNECTIONS,
            scrape_interval: SCRAPE_INTERVAL,
        }
    }

    /// Where the report goes: `--output`, or the default of the run's kind.
    fn output(&self, results_dir: &Path) -> PathBuf {
        match &self.output {
            Some(output) => cargo::workspace_root().join(output),
            None if self.quick => results_dir.join("BENCHMARKS-quick.md"),
            None => cargo::workspace_root().join("BENCHMARKS.md"),
        }
    }
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    let settings = args.settings();
    let root = cargo::workspace_root();

    let tools = tools::ensure(&mut interrupt).await?;
    let binaries = build::binaries(&mut interrupt).await?;
    let results_dir = results_dir(&binaries.backend)?;
    // The clock starts after the builds: the report states how long the measuring took.
    let started = Instant::now();
    let date = chrono::Utc::now();
    eprintln!("xtask: starting a throwaway Postgres…");
    let postgres = PostgresServer::start().await.context("starting the throwaway Postgres")?;
    let bench = Bench {
        settings: &settings,
        tools: &tools,
        binaries: &binaries,
        psql: Psql::new(&tools.psql, postgres.url()),
        results_dir: &results_dir,
        k6_script: root.join(K6_SCRIPT),
        wrk_script: root.join(WRK_SCRIPT),
        pgbench_script: root.join(PGBENCH_SCRIPT),
    };
    let measured = bench.measure_all(&mut interrupt).await;
    drop(postgres);
    let Measurements { background, modes, framework, ceiling } = measured?;
    // Last, on a machine the API phase has left: the whole system has Postgres and the broker of its own.
    let pipeline = pipeline::run(&binaries, &tools.tansu, settings.pipeline, &mut interrupt).await?;

    let report = Report {
        date,
        command: command_line(),
        elapsed: started.elapsed(),
        machine: machine::describe_machine(),
        versions: machine::versions(&tools).await,
        settings,
        background,
        modes,
        framework,
        ceiling,
        pipeline,
    };
    let output = args.output(&results_dir);
    let previous = std::fs::read_to_string(&output).unwrap_or_default();
    let notes = report::carried_notes(&previous).unwrap_or("No notes yet.");
    std::fs::write(&output, report.render(notes)).with_context(|| format!("writing {}", output.display()))?;

    eprintln!("\nxtask bench: {} written (raw k6 summaries and logs in {})", output.display(), results_dir.display());
    for verdict in report.verdicts() {
        let met = if verdict.met { "met   " } else { "MISSED" };
        eprintln!("  {met} {}: {}", verdict.target, verdict.result);
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything a run measured.
#[derive(Debug)]
struct Measurements {
    background: CpuShares,
    /// In the order of [`Mode::ALL`].
    modes: Vec<ModeRun>,
    framework: FrameworkCeilingRun,
    ceiling: CeilingRun,
}

/// What every phase of a run needs.
#[derive(Debug)]
struct Bench<'a> {
    settings: &'a Settings,
    tools: &'a Tools,
    binaries: &'a Binaries,
    psql: Psql,
    results_dir: &'a Path,
    k6_script: PathBuf,
    wrk_script: PathBuf,
    pgbench_script: PathBuf,
}

impl Bench<'_> {
    async fn measure_all(&self, interrupt: &mut Interrupt) -> anyhow::Result<Measurements> {
        let postmaster = cpu::parent_pid(self.psql.checkpointer_pid().await?)?;
        self.psql.disable_autovacuum().await?;
        let jwt_secret = random_secret()?;
        let tokens = mint_tokens(&self.binaries.backend, &jwt_secret, self.settings.vus).await?;
        let background = measure_background(postmaster).await?;
        if background.idle < 0.9 {
            eprintln!(
                "xtask: warning: the machine is {:.0} % busy before the bench starts; the figures will show it",
                (1.0 - background.idle) * 100.0
            );
        }

        let launch = Launch {
            backend_binary: &self.binaries.backend,
            jwt_secret: &jwt_secret,
            k6: &self.tools.k6,
            k6_script: &self.k6_script,
            wrk: &self.tools.wrk,
            wrk_script: &self.wrk_script,
            tokens: &tokens,
            vus: self.settings.vus,
            rate: self.settings.rate,
            results_dir: self.results_dir,
        };
        eprintln!("xtask: starting the backend three times: telemetry off, production defaults, everything traced…");
        let mut modes = Vec::new();
        for mode in Mode::ALL {
            let address = free_local_address()?;
            // A sink per mode with telemetry: it receives that backend's spans and scrapes that backend alone.
            let sink = if mode.has_telemetry() {
                let scrape_url = format!("http://{address}/metrics");
                Some(TelemetrySink::start(&self.binaries.telemetry_sink, &scrape_url, SCRAPE_INTERVAL).await?)
            } else {
                None
            };
            let endpoint = sink.as_ref().map(TelemetrySink::endpoint);
            let under_test = ModeUnderTest::start(mode, address, endpoint, launch, &self.psql, interrupt).await?;
            modes.push((under_test, sink));
        }
        let meter = |(mode, sink): &(ModeUnderTest<'_>, Option<TelemetrySink>)| CpuMeter {
            postmaster,
            backend: Some(mode.backend_pid()),
            telemetry_sink: sink.as_ref().map(TelemetrySink::pid),
        };

        // On the telemetry-off database, which holds what the off backend's create runs made.
        let mut framework = FrameworkCeiling::start(
            &self.binaries.framework_ceiling,
            free_local_address()?,
            &self.psql.database_url(&Mode::Off.database_name()),
            launch,
            interrupt,
        )
        .await?;
        let framework_meter = CpuMeter { postmaster, backend: Some(framework.pid()), telemetry_sink: None };

        for (mode, _) in &mut modes {
            mode.warm_up(self.settings.warm_up, interrupt).await?;
        }
        for round in 0..self.settings.rounds {
            for (index, endpoint) in Endpoint::ALL.into_iter().enumerate() {
                // Rotating who goes first each time spreads any drift over the run evenly over the modes (and the
                // framework ceiling, last in the turns, where it answers the endpoint).
                let count = modes.len() + usize::from(ceiling::ENDPOINTS.contains(&endpoint));
                let first = (round as usize + index) % count;
                for turn in 0..count {
                    let slot = (first + turn) % count;
                    let duration = self.settings.endpoint_duration;
                    eprint!("xtask bench: round {} of {endpoint}, ", round + 1);
                    let Some(entry) = modes.get_mut(slot) else {
                        eprintln!("framework ceiling");
                        framework.measure_round(endpoint, duration, &framework_meter, &self.psql, interrupt).await?;
                        continue;
                    };
                    eprintln!("{}", entry.0.mode().label());
                    let meter = meter(entry);
                    let mode = &mut entry.0;
                    let run = mode.measure_endpoint(endpoint, duration, &meter, &self.psql, interrupt).await?;
                    mode.record_round(endpoint, run);
                }
            }
        }
        let framework = framework.stop().await?;
        for entry in &mut modes {
            let meter = meter(entry);
            let mode = &mut entry.0;
            eprintln!("xtask bench: mixed load, {}", mode.mode().label());
            let run = mode.measure_mixed(self.settings.mixed_duration, &meter, &self.psql, interrupt).await?;
            mode.record_mixed(run);
        }

        let mut runs = Vec::new();
        for (mode, sink) in modes {
            // The backend before its sink: stopping flushes the last spans into it.
            let stopped = mode.stop().await?;
            let totals = match sink {
                Some(sink) => Some(sink.stop().await?),
                None => None,
            };
            runs.push(stopped.into_run(totals));
        }

        // On the production-defaults database: the schema is there, and the tables hold what the create runs saw.
        let ceiling_database = self.psql.database_url(&Mode::Production.database_name());
        let ceiling = self.measure_ceiling(&ceiling_database, postmaster, interrupt).await?;
        Ok(Measurements { background, modes: runs, framework, ceiling })
    }

    async fn measure_ceiling(
        &self,
        database_url: &str,
        postmaster: u32,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<CeilingRun> {
        eprintln!("xtask bench: pgbench ceiling");
        self.psql.settle(database_url).await?;
        let pgbench = Pgbench {
            program: &self.tools.pgbench,
            script: &self.pgbench_script,
            database_url,
            clients: self.settings.database_connections,
            threads: u32::try_from(machine::describe_machine().cpus).unwrap_or(1),
        };
        let meter = CpuMeter { postmaster, backend: None, telemetry_sink: None };
        let processes = cpu::postgres_processes(postmaster)?;
        let before = meter.sample()?;
        let result = pgbench.run(self.settings.pgbench_duration, interrupt).await?;
        // pgbench's connections end with it; their CPU time reaches the postmaster's account only once it has
        // reaped them, and read before that it would be missing from Postgres's share.
        let reaped = testkit::wait::until(CONNECTIONS_REAPED, || async {
            cpu::postgres_processes(postmaster).is_ok_and(|now| now <= processes)
        })
        .await;
        if reaped.is_err() {
            eprintln!("xtask: warning: Postgres still had pgbench's connections after {CONNECTIONS_REAPED:?}");
        }
        let cpu = before.shares_until(&meter.sample()?);
        eprintln!("pgbench: {:.0} tps, latency avg {:.2} ms", result.tps, result.latency_avg_ms);
        Ok(CeilingRun { result, cpu })
    }
}

/// How busy the machine is with the bench's own processes idle.
async fn measure_background(postmaster: u32) -> anyhow::Result<CpuShares> {
    let meter = CpuMeter { postmaster, backend: None, telemetry_sink: None };
    let before = meter.sample()?;
    tokio::time::sleep(BACKGROUND_SAMPLE).await;
    Ok(before.shares_until(&meter.sample()?))
}

/// `target/bench` (beside the release directory, wherever the target directory is).
fn results_dir(release_binary: &Path) -> anyhow::Result<PathBuf> {
    let target = release_binary
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("no target directory above {}", release_binary.display()))?;
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A port nobody listens on right now (the backend binds it a moment later).
fn free_local_address() -> anyhow::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .context("finding a free port on 127.0.0.1")
}

/// One development token per virtual user (`bench-user-001`, …), minted by the backend's own `token` command.
async fn mint_tokens(backend: &Path, jwt_secret: &str, users: u32) -> anyhow::Result<String> {
    let mut tokens = Vec::new();
    for user in 1..=users {
        let subject = format!("bench-user-{user:03}");
        tokens.push(dev_credentials::mint_token(backend, [("AUTH_JWT_SECRET", jwt_secret)], &subject).await?);
    }
    Ok(tokens.join(","))
}

/// How this run was started, for the report: `cargo xtask bench` and any options.
fn command_line() -> String {
    let options: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", options.join(" "))
}
