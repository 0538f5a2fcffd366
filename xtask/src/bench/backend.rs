//! The backend under test: its release binary in one of two telemetry modes, with rate limiting off and its
//! logs in a file.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::Signal;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::children;
use crate::interrupt::Interrupt;

/// Start-up includes applying migrations to a fresh database.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Stopping includes draining requests and flushing the last spans to the sink.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The backend's pool size, set explicitly so pgbench can be given the same number of connections.
pub const DATABASE_CONNECTIONS: u32 = 10;

/// How much the backend reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Telemetry {
    /// `RUST_LOG=off` and no trace exporter. (Metrics are still recorded in memory: the backend has no switch
    /// for its recorder; nothing scrapes them.)
    Off,
    /// JSON logs at `info`, every request traced and exported over OTLP/HTTP to `otlp_endpoint`, `/metrics`
    /// scraped (by the sink).
    On { otlp_endpoint: String },
}

#[derive(Debug, Clone)]
pub struct BackendSpec<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub jwt_secret: &'a str,
    pub address: SocketAddr,
    pub telemetry: Telemetry,
    /// Receives stdout (the JSON log lines); stderr goes beside it with the extension `.stderr`.
    pub log_path: PathBuf,
}

/// A running backend, killed if dropped without [`RunningBackend::stop`].
#[derive(Debug)]
pub struct RunningBackend {
    child: Child,
    pid: u32,
    address: SocketAddr,
}

impl RunningBackend {
    /// Starts the backend and waits until it accepts connections, which it does only after its migrations.
    pub async fn start(spec: BackendSpec<'_>, interrupt: &mut Interrupt) -> anyhow::Result<Self> {
        let stdout = create_file(&spec.log_path)?;
        let stderr = create_file(&spec.log_path.with_extension("stderr"))?;
        let mut command = Command::new(spec.binary);
        command.arg("serve").stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr));
        // The caller's own RUST_LOG / OTEL_* settings must not leak into either mode.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| name == "RUST_LOG" || name.starts_with("OTEL_")) {
                command.env_remove(name);
            }
        }
        command.envs(environment(&spec));
        let mut child = children::spawn_group_leader("backend", &mut command)?;
        let pid = child.id().context("the backend exited at once")?;

        let address = spec.address;
        let ready = testkit::wait::until(READY_TIMEOUT, || async move { TcpStream::connect(address).await.is_ok() });
        tokio::select! {
            ready = ready => ready.with_context(|| {
                format!("the backend did not accept connections on {address}; see {}", spec.log_path.display())
            })?,
            status = child.wait() => {
                bail!("the backend exited before it was ready ({}); see {}", describe(status), spec.log_path.display())
            }
            signal = interrupt.requested() => bail!("{signal} while starting the backend"),
        }
        Ok(Self { child, pid, address })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Graceful stop (SIGTERM): drains and flushes telemetry. A non-zero exit is an error: the run's figures
    /// may then be incomplete.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status =
            children::stop_group(&mut self.child, Signal::SIGTERM, STOP_GRACE).await.context("stopping the backend")?;
        if !status.success() {
            bail!("the backend exited with {status} when stopped");
        }
        Ok(())
    }
}

fn environment(spec: &BackendSpec<'_>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", spec.database_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS", DATABASE_CONNECTIONS.to_string()),
        ("AUTH_JWT_SECRET", spec.jwt_secret.to_owned()),
        ("BIND_ADDR", spec.address.ip().to_string()),
        ("PORT", spec.address.port().to_string()),
        // The closed-loop scenarios exist to find the ceiling; a limiter would cap them first.
        ("RATE_LIMIT_ENABLED", "false".to_owned()),
    ];
    match &spec.telemetry {
        Telemetry::Off => env.push(("RUST_LOG", "off".to_owned())),
        Telemetry::On { otlp_endpoint } => env.extend([
            ("RUST_LOG", "info".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint.clone()),
            // Every request traced: the most telemetry the service can be asked for.
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
        ]),
    }
    env
}

fn create_file(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown status: {error}"),
    }
}
