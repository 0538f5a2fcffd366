//! The long-running processes of `cargo xtask up`: started in order, each waited on until it accepts
//! connections, their output streamed with a name prefix, and stopped in reverse order.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::children;
use crate::interrupt::Interrupt;

/// How long a process may take to accept connections after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a process gets to drain after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// One process of the local stack.
#[derive(Debug)]
pub struct ProcessSpec {
    /// Prefix of its log lines.
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// It counts as ready once this address accepts TCP connections.
    pub ready_at: SocketAddr,
}

/// Why the stack stopped running.
#[derive(Debug)]
pub enum Stopped {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A process ended on its own, which for a server is a failure.
    Exited { name: &'static str, status: String },
}

/// The running processes, in start order.
#[derive(Debug)]
pub struct Supervisor {
    running: Vec<Running>,
    unexpected_exits: mpsc::UnboundedReceiver<(&'static str, io::Result<ExitStatus>)>,
    exit_sender: mpsc::UnboundedSender<(&'static str, io::Result<ExitStatus>)>,
}

#[derive(Debug)]
struct Running {
    name: &'static str,
    stop: oneshot::Sender<()>,
    monitor: JoinHandle<()>,
}

impl Supervisor {
    pub fn new() -> Self {
        let (exit_sender, unexpected_exits) = mpsc::unbounded_channel();
        Self { running: Vec::new(), unexpected_exits, exit_sender }
    }

    /// Starts `spec` and waits until it accepts connections; fails if it exits or a stop is requested
    /// first. Whatever happens, [`Supervisor::stop_all`] stops it.
    pub async fn start(&mut self, spec: ProcessSpec, interrupt: &mut Interrupt) -> anyhow::Result<()> {
        let name = spec.name;
        let address = spec.ready_at;
        // Readiness is "the address accepts connections", which another process could fake.
        if accepts_connections(address).await {
            bail!("{address} is already taken by another process, so {name} cannot listen there");
        }
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = children::spawn_group_leader(name, &mut command)?;
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(stream_lines(stdout, name, Stream::Stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(stream_lines(stderr, name, Stream::Stderr));
        }

        let (stop, stop_requested) = oneshot::channel();
        let exits = self.exit_sender.clone();
        let monitor = tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    // Only fails when nobody listens any more, i.e. during shutdown.
                    exits.send((name, status)).ok();
                }
                // A stop request, or the supervisor dropped on an error path: stop either way.
                _ = stop_requested => {
                    if let Err(error) = children::stop_group(&mut child, Signal::SIGTERM, STOP_GRACE).await {
                        eprintln!("xtask: stopping {name} failed: {error}");
                    }
                }
            }
        });
        self.running.push(Running { name, stop, monitor });

        let ready = testkit::wait::until(READY_TIMEOUT, || accepts_connections(address));
        tokio::select! {
            ready = ready => ready.with_context(|| format!("{name} did not accept connections on {address}")),
            Some((name, status)) = self.unexpected_exits.recv() => {
                bail!("{name} exited before it was ready ({})", describe(&status))
            }
            signal = interrupt.requested() => bail!("{signal} while starting {name}"),
        }
    }

    /// Waits until a stop is requested or a process ends on its own.
    pub async fn watch(&mut self, interrupt: &mut Interrupt) -> Stopped {
        tokio::select! {
            _ = interrupt.requested() => Stopped::Interrupted,
            Some((name, status)) = self.unexpected_exits.recv() => Stopped::Exited {
                name,
                status: describe(&status),
            },
        }
    }

    /// Stops every process, last started first (a service before what it depends on).
    pub async fn stop_all(&mut self) {
        while let Some(Running { name, stop, monitor }) = self.running.pop() {
            // The monitor may already have seen the process exit; then there is nothing to stop.
            stop.send(()).ok();
            if monitor.await.is_err() {
                eprintln!("xtask: the monitor of {name} failed");
            }
            eprintln!("xtask: {name} stopped");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Copies a child's output to ours line by line, prefixed with its name.
async fn stream_lines(pipe: impl AsyncRead + Unpin, name: &'static str, stream: Stream) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match stream {
            Stream::Stdout => println!("{name:>10} | {line}"),
            Stream::Stderr => eprintln!("{name:>10} | {line}"),
        }
    }
}

async fn accepts_connections(address: SocketAddr) -> bool {
    TcpStream::connect(address).await.is_ok()
}

fn describe(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown status: {error}"),
    }
}
