//! One telemetry mode under test: its own database, its backend, and the runs made against it so far (closed loops
//! with wrk, the warm-up and the open loop with k6).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::backend::{self, BackendSpec, Telemetry};
use super::cpu::CpuMeter;
use super::k6::{Endpoint, K6Runner, Scenario};
use super::psql::Psql;
use super::report::{LoadRun, MemoryUse, ModeRun, Rounds, TelemetryEvidence};
use super::server::{Memory, RunningServer};
use super::sink::SinkTotals;
use super::wrk::WrkRunner;
use crate::interrupt::Interrupt;

/// How much telemetry the backend runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// No logs, no traces: the reference the others are compared with.
    Off,
    /// The shipped production defaults: JSON logs at info, one new trace in ten, `/metrics` scraped.
    Production,
    /// Every request traced and exported, logs at info, `/metrics` scraped.
    Traced,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Off, Mode::Production, Mode::Traced];

    /// Names its database and its files.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Production => "production",
            Mode::Traced => "traced",
        }
    }

    /// How the report names it.
    pub fn title(self) -> &'static str {
        match self {
            Mode::Off => "Telemetry off",
            Mode::Production => "Production defaults",
            Mode::Traced => "Everything traced",
        }
    }

    /// Whether its backend exports spans and is scraped (by a telemetry sink of its own).
    pub fn has_telemetry(self) -> bool {
        self != Mode::Off
    }

    pub fn database_name(self) -> String {
        format!("bench_telemetry_{}", self.label())
    }

    fn telemetry(self, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
        let endpoint = || {
            otlp_endpoint
                .map(str::to_owned)
                .with_context(|| format!("telemetry {} needs an OTLP endpoint", self.label()))
        };
        Ok(match self {
            Mode::Off => Telemetry::Off,
            Mode::Production => Telemetry::Production { otlp_endpoint: endpoint()? },
            Mode::Traced => Telemetry::Traced { otlp_endpoint: endpoint()? },
        })
    }
}

/// What starting a mode needs besides the mode itself.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    pub backend_binary: &'a Path,
    pub jwt_secret: &'a str,
    pub k6: &'a Path,
    pub k6_script: &'a Path,
    pub wrk: &'a Path,
    pub wrk_script: &'a Path,
    /// Comma-separated bearer tokens, one API user each.
    pub tokens: &'a str,
    pub vus: u32,
    pub rate: u32,
    pub results_dir: &'a Path,
}

impl<'a> Launch<'a> {
    /// wrk's closed loops against the server at `base_url`, whose database is `database_url`; `label` names the
    /// files.
    pub fn wrk_runner(&self, base_url: String, label: &'static str, database_url: &str) -> WrkRunner<'a> {
        WrkRunner {
            wrk: self.wrk,
            script: self.wrk_script,
            base_url,
            tokens: self.tokens,
            connections: self.vus,
            results_dir: self.results_dir,
            label,
            database_url: database_url.to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct ModeUnderTest<'a> {
    mode: Mode,
    database_url: String,
    backend: RunningServer,
    k6: K6Runner<'a>,
    wrk: WrkRunner<'a>,
    log_path: PathBuf,
    idle_memory: Memory,
    requests_sent: u64,
    endpoints: BTreeMap<Endpoint, Rounds>,
    mixed: Option<LoadRun>,
}

impl<'a> ModeUnderTest<'a> {
    /// Creates the mode's database and starts its backend on `address`; with telemetry, `otlp_endpoint` is where
    /// its spans go.
    pub async fn start(
        mode: Mode,
        address: SocketAddr,
        otlp_endpoint: Option<&str>,
        launch: Launch<'a>,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<Self> {
        let database_url = psql.create_database(&mode.database_name()).await?;
        let log_path = launch.results_dir.join(format!("backend-telemetry-{}.log", mode.label()));
        let spec = BackendSpec {
            binary: launch.backend_binary,
            database_url: &database_url,
            jwt_secret: launch.jwt_secret,
            address,
            telemetry: mode.telemetry(otlp_endpoint)?,
            log_path: log_path.clone(),
        };
        let backend = backend::start(spec, interrupt).await?;
        // Started and migrated, nothing asked of it yet.
        let idle_memory = backend.memory()?;
        let k6 = K6Runner {
            k6: launch.k6,
            script: launch.k6_script,
            base_url: backend.base_url(),
            tokens: launch.tokens,
            vus: launch.vus,
            rate: launch.rate,
            results_dir: launch.results_dir,
            label: mode.label(),
        };
        let wrk = launch.wrk_runner(backend.base_url(), mode.label(), &database_url);
        Ok(Self {
            mode,
            database_url,
            backend,
            k6,
            wrk,
            log_path,
            idle_memory,
            requests_sent: 0,
            endpoints: BTreeMap::new(),
            mixed: None,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn backend_pid(&self) -> u32 {
        self.backend.pid()
    }

    /// Unmeasured load: pools fill, caches warm, and `get` has tasks to read.
    pub async fn warm_up(&mut self, duration: Duration, interrupt: &mut Interrupt) -> anyhow::Result<()> {
        let summary = self.k6.run(Scenario::Warmup, duration, interrupt).await?;
        self.requests_sent += summary.total_requests;
        Ok(())
    }

    /// Settles the database, then runs `endpoint` in a closed loop with wrk for `duration`, CPU sampled around it.
    pub async fn measure_endpoint(
        &mut self,
        endpoint: Endpoint,
        duration: Duration,
        meter: &CpuMeter,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<LoadRun> {
        let measured = self.wrk.measure(endpoint, duration, meter, psql, interrupt).await?;
        self.requests_sent += measured.filler_requests + measured.run.summary.total_requests;
        Ok(measured.run)
    }

    /// Settles the database, then runs the mixed open loop with k6 for `duration`, CPU sampled around it.
    pub async fn measure_mixed(
        &mut self,
        duration: Duration,
        meter: &CpuMeter,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<LoadRun> {
        psql.settle(&self.database_url).await?;
        let before = meter.sample()?;
        let summary = self.k6.run(Scenario::Mixed, duration, interrupt).await?;
        let cpu = before.shares_until(&meter.sample()?);
        self.requests_sent += summary.total_requests;
        Ok(LoadRun { summary, cpu })
    }

    /// Adds a closed-loop round to the figures of `endpoint`.
    pub fn record_round(&mut self, endpoint: Endpoint, run: LoadRun) {
        self.endpoints.entry(endpoint).or_default().runs.push(run);
    }

    pub fn record_mixed(&mut self, run: LoadRun) {
        self.mixed = Some(run);
    }

    /// Stops the backend gracefully (it flushes its telemetry) and reads what it logged.
    pub async fn stop(self) -> anyhow::Result<StoppedMode> {
        let mixed = self.mixed.with_context(|| format!("telemetry {} has no mixed run", self.mode.label()))?;
        let loaded = self.backend.memory()?;
        self.backend.stop().await?;
        let (log_lines, log_bytes) = count_lines(&self.log_path)?;
        Ok(StoppedMode {
            mode: self.mode,
            endpoints: self.endpoints,
            mixed,
            memory: MemoryUse { idle: self.idle_memory, loaded },
            evidence: TelemetryEvidence { log_lines, log_bytes, requests_sent: self.requests_sent, sink: None },
        })
    }
}

/// A mode whose backend has stopped; the telemetry sink's totals complete its figures.
#[derive(Debug)]
pub struct StoppedMode {
    mode: Mode,
    endpoints: BTreeMap<Endpoint, Rounds>,
    mixed: LoadRun,
    memory: MemoryUse,
    evidence: TelemetryEvidence,
}

impl StoppedMode {
    pub fn into_run(self, sink: Option<SinkTotals>) -> ModeRun {
        ModeRun {
            mode: self.mode,
            endpoints: self.endpoints,
            mixed: self.mixed,
            memory: self.memory,
            evidence: TelemetryEvidence { sink, ..self.evidence },
        }
    }
}

/// Lines and bytes of a log file.
fn count_lines(path: &Path) -> anyhow::Result<(u64, u64)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = file.metadata().with_context(|| format!("reading the size of {}", path.display()))?.len();
    let mut reader = BufReader::new(file);
    let mut lines = 0;
    let mut buffer = Vec::new();
    while reader.read_until(b'\n', &mut buffer).with_context(|| format!("reading {}", path.display()))? > 0 {
        lines += 1;
        buffer.clear();
    }
    Ok((lines, bytes))
}
