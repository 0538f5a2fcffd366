//! A server process the bench runs (the backend, the framework ceiling): started with its output in files,
//! ready once it accepts connections, measured from `/proc`, stopped gracefully.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
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

/// Resident memory of a process (`VmRSS`, and `VmHWM` as the peak).
pub use testkit::process::ResidentMemory as Memory;

/// A running server, killed if dropped without [`RunningServer::stop`].
#[derive(Debug)]
pub struct RunningServer {
    name: &'static str,
    child: Child,
    pid: u32,
    address: SocketAddr,
}

impl RunningServer {
    /// Spawns `command` with stdout into `log_path` (stderr beside it, extension `.stderr`) and waits until it
    /// accepts connections on `address`.
    pub async fn start(
        name: &'static str,
        mut command: Command,
        address: SocketAddr,
        log_path: &Path,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<Self> {
        let stdout = create_file(log_path)?;
        let stderr = create_file(&log_path.with_extension("stderr"))?;
        command.stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr));
        let mut child = children::spawn_group_leader(name, &mut command)?;
        let pid = child.id().with_context(|| format!("the {name} exited at once"))?;

        let ready = testkit::wait::until(READY_TIMEOUT, || async move { TcpStream::connect(address).await.is_ok() });
        tokio::select! {
            ready = ready => ready.with_context(|| {
                format!("the {name} did not accept connections on {address}; see {}", log_path.display())
            })?,
            status = child.wait() => {
                bail!("the {name} exited before it was ready ({}); see {}", describe(status), log_path.display())
            }
            signal = interrupt.requested() => bail!("{signal} while starting the {name}"),
        }
        Ok(Self { name, child, pid, address })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its resident memory now and at its peak so far, from `/proc`.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid).with_context(|| format!("reading the memory of the {} (pid {})", self.name, self.pid))
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Graceful stop (SIGTERM): drains and flushes telemetry. A non-zero exit is an error: the run's figures
    /// may then be incomplete.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let name = self.name;
        let status = children::stop_group(&mut self.child, Signal::SIGTERM, STOP_GRACE)
            .await
            .with_context(|| format!("stopping the {name}"))?;
        if !status.success() {
            bail!("the {name} exited with {status} when stopped");
        }
        Ok(())
    }
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
