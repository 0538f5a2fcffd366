//! `cargo xtask bench`: throughput and latency of the backend's task API with telemetry fully off and fully on,
//! next to the Postgres ceiling of its write path; the figures go to BENCHMARKS.md. A report, not a test: it
//! fails only when it cannot measure, never because a target was missed.
//!
//! The run:
//! 1. install what is missing (Postgres, pgbench, k6) and build the backend and the telemetry sink in release;
//! 2. start a throwaway Postgres; mint one token per virtual user;
//! 3. for telemetry off, then on: a fresh database, the backend (and with telemetry on, the sink that receives
//!    its traces and scrapes its metrics), a warm-up, one closed-loop k6 run per endpoint, one open-loop mixed
//!    run; CPU use is sampled around each;
//! 4. pgbench with the create transaction as the write ceiling;
//! 5. BENCHMARKS.md, keeping its hand-written notes; raw k6 summaries and logs stay in `target/bench/`.

mod backend;
mod build;
mod cpu;
mod k6;
mod machine;
mod pgbench;
mod psql;
mod report;
mod sink;
mod tools;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use testkit::postgres::PostgresServer;
use tokio::process::Command;

use self::backend::{BackendSpec, RunningBackend, Telemetry};
use self::build::Binaries;
use self::cpu::{CpuMeter, CpuShares};
use self::k6::{Endpoint, K6Runner, K6Summary, Scenario};
use self::pgbench::Pgbench;
use self::psql::Psql;
use self::report::{CeilingRun, LoadRun, ModeRun, Report, Settings, TelemetryEvidence};
use self::sink::TelemetrySink;
use self::tools::Tools;
use crate::cargo;
use crate::interrupt::Interrupt;

const K6_SCRIPT: &str = "bench/k6/tasks.js";
const PGBENCH_SCRIPT: &str = "bench/pgbench/create_task.sql";
/// Unreported load before each mode's first measured run.
const WARMUP: Duration = Duration::from_secs(5);
/// How often the sink scrapes `/metrics` with telemetry on: more often than a real Prometheus (15–60 s), so
/// the figure is an upper bound of what scraping costs.
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the machine is watched, idle, before the first load: other work running shows up in the report.
const BACKGROUND_SAMPLE: Duration = Duration::from_secs(3);
/// Bytes of randomness in the run's `AUTH_JWT_SECRET` (the backend requires at least 32).
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Seconds of each closed-loop run (create, get, list, complete), per telemetry mode.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    endpoint_seconds: u64,
    /// Seconds of the mixed open-loop run, per telemetry mode.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    mixed_seconds: u64,
    /// Arrival rate of the mixed run, in requests per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Virtual users of the closed-loop runs, each acting as its own API user.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    vus: u32,
    /// Seconds of the pgbench ceiling run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pgbench_seconds: u64,
    /// Where the report goes, relative to the workspace root.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: PathBuf,
}

impl Args {
    fn settings(&self) -> Settings {
        Settings {
            endpoint_duration: Duration::from_secs(self.endpoint_seconds),
            mixed_duration: Duration::from_secs(self.mixed_seconds),
            rate: self.rate,
            vus: self.vus,
            pgbench_duration: Duration::from_secs(self.pgbench_seconds),
            database_connections: backend::DATABASE_CONNECTIONS,
            scrape_interval: SCRAPE_INTERVAL,
        }
    }
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    let settings = args.settings();
    let root = cargo::workspace_root();

    let tools = tools::ensure().await?;
    let binaries = build::release_binaries(&mut interrupt).await?;
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
        root,
    };
    let measured = bench.measure_all(&mut interrupt).await;
    drop(postgres);
    let Measurements { background, off, on, ceiling } = measured?;

    let report = Report {
        date,
        command: command_line(),
        elapsed: started.elapsed(),
        machine: machine::describe_machine(),
        versions: machine::versions(&tools.k6, &tools.pgbench).await,
        settings,
        background,
        off,
        on,
        ceiling,
    };
    let output = root.join(&args.output);
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

/// Whether the backend runs with telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    TelemetryOff,
    TelemetryOn,
}

impl Mode {
    /// Names its database and its files.
    fn label(self) -> &'static str {
        match self {
            Mode::TelemetryOff => "off",
            Mode::TelemetryOn => "on",
        }
    }

    fn database_name(self) -> String {
        format!("bench_telemetry_{}", self.label())
    }
}

/// Everything a run measured.
#[derive(Debug)]
struct Measurements {
    background: CpuShares,
    off: ModeRun,
    on: ModeRun,
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
    root: &'a Path,
}

impl Bench<'_> {
    async fn measure_all(&self, interrupt: &mut Interrupt) -> anyhow::Result<Measurements> {
        let postmaster = cpu::parent_pid(self.psql.checkpointer_pid().await?)?;
        let jwt_secret = random_secret()?;
        let tokens = mint_tokens(&self.binaries.backend, &jwt_secret, self.settings.vus).await?;
        let background = measure_background(postmaster).await?;
        if background.idle < 0.9 {
            eprintln!(
                "xtask: warning: the machine is {:.0} % busy before the bench starts; the figures will show it",
                (1.0 - background.idle) * 100.0
            );
        }
        let off = self.measure_mode(Mode::TelemetryOff, postmaster, &jwt_secret, &tokens, interrupt).await?;
        let on = self.measure_mode(Mode::TelemetryOn, postmaster, &jwt_secret, &tokens, interrupt).await?;
        // On the telemetry-on database: the schema is there, and the tables hold what the create runs saw.
        let ceiling_database = self.psql.database_url(&Mode::TelemetryOn.database_name());
        let ceiling = self.measure_ceiling(&ceiling_database, postmaster, interrupt).await?;
        Ok(Measurements { background, off, on, ceiling })
    }

    async fn measure_mode(
        &self,
        mode: Mode,
        postmaster: u32,
        jwt_secret: &str,
        tokens: &str,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<ModeRun> {
        let label = mode.label();
        eprintln!("\nxtask bench: telemetry {label}");
        let database_url = self.psql.create_database(&mode.database_name()).await?;
        let address = free_local_address()?;
        let sink = if mode == Mode::TelemetryOn {
            let scrape_url = format!("http://{address}/metrics");
            Some(TelemetrySink::start(&self.binaries.telemetry_sink, &scrape_url, SCRAPE_INTERVAL).await?)
        } else {
            None
        };
        let telemetry = match &sink {
            Some(sink) => Telemetry::On { otlp_endpoint: sink.endpoint().to_owned() },
            None => Telemetry::Off,
        };
        let log_path = self.results_dir.join(format!("backend-telemetry-{label}.log"));
        let spec = BackendSpec {
            binary: &self.binaries.backend,
            database_url: &database_url,
            jwt_secret,
            address,
            telemetry,
            log_path: log_path.clone(),
        };
        let backend = RunningBackend::start(spec, interrupt).await?;
        let meter = CpuMeter {
            postmaster,
            backend: Some(backend.pid()),
            telemetry_sink: sink.as_ref().map(TelemetrySink::pid),
        };
        let k6 = K6Runner {
            k6: &self.tools.k6,
            script: &self.root.join(K6_SCRIPT),
            base_url: backend.base_url(),
            tokens,
            vus: self.settings.vus,
            rate: self.settings.rate,
            results_dir: self.results_dir,
            label,
        };

        let warmup = k6.run(Scenario::Warmup, WARMUP, interrupt).await?;
        let mut requests_sent = warmup.total_requests;
        let mut endpoints = BTreeMap::new();
        for endpoint in Endpoint::ALL {
            let scenario = Scenario::Endpoint(endpoint);
            let run = measured(&meter, k6.run(scenario, self.settings.endpoint_duration, interrupt)).await?;
            requests_sent += run.summary.total_requests;
            endpoints.insert(endpoint, run);
        }
        let mixed = measured(&meter, k6.run(Scenario::Mixed, self.settings.mixed_duration, interrupt)).await?;
        requests_sent += mixed.summary.total_requests;

        // The backend first: stopping flushes its last spans into the still-running sink.
        backend.stop().await?;
        let sink = match sink {
            Some(sink) => Some(sink.stop().await?),
            None => None,
        };
        let (log_lines, log_bytes) = count_lines(&log_path)?;
        Ok(ModeRun { endpoints, mixed, evidence: TelemetryEvidence { log_lines, log_bytes, requests_sent, sink } })
    }

    async fn measure_ceiling(
        &self,
        database_url: &str,
        postmaster: u32,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<CeilingRun> {
        eprintln!("\nxtask bench: pgbench ceiling");
        let pgbench = Pgbench {
            program: &self.tools.pgbench,
            script: &self.root.join(PGBENCH_SCRIPT),
            database_url,
            clients: self.settings.database_connections,
            threads: u32::try_from(machine::describe_machine().cpus).unwrap_or(1),
        };
        let meter = CpuMeter { postmaster, backend: None, telemetry_sink: None };
        let before = meter.sample()?;
        let result = pgbench.run(self.settings.pgbench_duration, interrupt).await?;
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

/// Runs one k6 load and samples CPU use around it.
async fn measured(meter: &CpuMeter, load: impl Future<Output = anyhow::Result<K6Summary>>) -> anyhow::Result<LoadRun> {
    let before = meter.sample()?;
    let summary = load.await?;
    let cpu = before.shares_until(&meter.sample()?);
    Ok(LoadRun { summary, cpu })
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
        let output = Command::new(backend)
            .args(["token", "--sub", &subject, "--ttl", "24h"])
            .env("AUTH_JWT_SECRET", jwt_secret)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running `backend token`")?;
        if !output.status.success() {
            bail!(
                "`backend token --sub {subject}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let token = String::from_utf8(output.stdout).context("the token is not UTF-8")?;
        tokens.push(token.trim().to_owned());
    }
    Ok(tokens.join(","))
}

fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut source| source.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Lines and bytes of a log file.
fn count_lines(path: &Path) -> anyhow::Result<(u64, u64)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = file.metadata().with_context(|| format!("reading the size of {}", path.display()))?.len();
    let mut lines = 0;
    let mut reader = BufReader::new(file);
    let mut buffer = Vec::new();
    while reader.read_until(b'\n', &mut buffer).with_context(|| format!("reading {}", path.display()))? > 0 {
        lines += 1;
        buffer.clear();
    }
    Ok((lines, bytes))
}

/// How this run was started, for the report: `cargo xtask bench` and any options.
fn command_line() -> String {
    let options: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", options.join(" "))
}
