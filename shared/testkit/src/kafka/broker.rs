//! A tansu broker process that a test (or `cargo xtask up`) owns.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::binary::{TANSU_FEATURES, tansu_binary};
use crate::Error;
use crate::command::{describe, run_checked};
use crate::postgres::watchdog::Watchdog;
use crate::process::{ChildGuard, Signal};
use crate::wait;

/// Another process may grab the free port we picked before tansu binds it; retry with a new one.
const PORT_ATTEMPTS: usize = 5;
/// A cold tansu answers within a second; this is for a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Variables tansu reads as defaults for its flags; a test's environment must not leak into them
/// (e.g. a test's `OTEL_EXPORTER_OTLP_ENDPOINT` would make the broker export its own traces there).
const TANSU_ENV_VARS: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATA_LAKE",
];

/// A Kafka-protocol broker (tansu) on 127.0.0.1 and a free port, storing its data in SQLite.
///
/// [`stop`](Self::stop) kills the process and [`start_again`](Self::start_again) brings it back on
/// the same port with every topic, message and committed offset: a broker outage, not a new broker.
/// [`pause`](Self::pause) freezes it instead (SIGSTOP: connections hang and requests time out, as
/// with a hung or partitioned broker) until [`resume`](Self::resume).
///
/// Nothing outlives the test: dropping the broker kills it and deletes its files, and watchdogs do
/// the same when the test process dies without running destructors (SIGKILL, a runner's timeout).
///
/// ```no_run
/// # async fn demo() -> Result<(), testkit::Error> {
/// let mut broker = testkit::kafka::Broker::start().await?;
/// broker.create_topic("task-events", 3).await?;
/// let bootstrap = broker.bootstrap(); // "127.0.0.1:PORT", for KAFKA_BROKERS
/// broker.stop(); // clients now fail to connect...
/// broker.start_again().await?; // ...and reconnect: same port, same topics and messages
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Broker {
    binary: PathBuf,
    port: u16,
    /// Working directory of every tansu process of this broker; holds the SQLite database.
    root: PathBuf,
    running: Option<Running>,
    // Declared last so it fires after the process is gone; it removes `root`.
    _files: Watchdog,
}

/// One tansu process. Field order matters: the watchdog drops first and kills the process while it
/// is still our unreaped child (its pid cannot have been reused), then the guard reaps it.
#[derive(Debug)]
struct Running {
    _watchdog: Watchdog,
    process: ChildGuard,
    paused: bool,
}

/// The database file, relative to the broker's working directory (tansu resolves it from there).
const STORAGE_URL: &str = "sqlite://tansu.db";
/// Directory the per-process watchdog is given to remove; created per process, holds nothing.
const PROCESS_MARKER_DIR: &str = "process";

impl Broker {
    /// Starts tansu and waits until it answers Kafka requests.
    pub async fn start() -> Result<Self, Error> {
        let binary = tansu_binary()?;
        let mut attempt = 1;
        loop {
            let root = tempfile::Builder::new()
                .prefix("testkit-tansu-")
                .tempdir()
                .map_err(Error::io("creating a directory for tansu"))?
                .keep();
            // From here on the watchdog owns the directory: any early return below cleans it up.
            let files = Watchdog::arm(&Command::new("true"), &root)?;
            let mut broker = Self { binary: binary.clone(), port: free_port()?, root, running: None, _files: files };
            match broker.launch().await {
                Ok(()) => return Ok(broker),
                Err(Error::CommandFailed { output, .. }) if attempt < PORT_ATTEMPTS && is_port_taken(&output) => {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `127.0.0.1:PORT`, the bootstrap servers for a Kafka client.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port; it stays the same across [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the broker's data; deleted when the broker is dropped.
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    /// Whether the broker process is running (paused counts as running).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Creates `name` with `partitions` partitions (replication factor 1).
    pub async fn create_topic(&self, name: &str, partitions: u16) -> Result<(), Error> {
        run_checked(
            tokio::process::Command::from(self.tansu_command())
                .args(["topic", "create", name, "--partitions", &partitions.to_string(), "--broker"])
                .arg(self.broker_url()),
        )
        .await
        .map(drop)
    }

    /// The names of the topics the broker knows.
    pub async fn topics(&self) -> Result<Vec<String>, Error> {
        let output = run_checked(
            tokio::process::Command::from(self.tansu_command())
                .args(["topic", "list", "--broker"])
                .arg(self.broker_url()),
        )
        .await?;
        parse_topic_names(&output).map_err(|reason| Error::Io {
            context: format!("unexpected `tansu topic list` output: {reason}"),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })
    }

    /// Kills the broker (SIGKILL: no goodbye to clients). Its data stays for
    /// [`start_again`](Self::start_again). Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        drop(self.running.take());
    }

    /// Starts a stopped broker again on the same port with its data. Does nothing if it is running.
    ///
    /// Fails if another process took the port meanwhile.
    pub async fn start_again(&mut self) -> Result<(), Error> {
        if self.running.is_some() {
            return Ok(());
        }
        self.launch().await
    }

    /// Freezes the broker (SIGSTOP): it keeps its data and connections, but answers nothing, so
    /// clients time out as with a hung or unreachable broker.
    pub fn pause(&mut self) -> Result<(), Error> {
        self.signal_running(Signal::SIGSTOP, true)
    }

    /// Lets a paused broker continue (SIGCONT).
    pub fn resume(&mut self) -> Result<(), Error> {
        self.signal_running(Signal::SIGCONT, false)
    }

    /// The broker's output so far (tansu logs to stdout and stderr), for failure messages.
    pub fn output(&self) -> Vec<String> {
        self.running
            .as_ref()
            .map(|running| {
                let mut lines = running.process.stdout_lines();
                lines.extend(running.process.stderr_lines());
                lines
            })
            .unwrap_or_default()
    }

    fn signal_running(&mut self, signal: Signal, paused: bool) -> Result<(), Error> {
        let Some(running) = self.running.as_mut() else {
            return Err(Error::Io {
                context: format!("cannot send {signal} to tansu: it is not running"),
                source: std::io::Error::from(std::io::ErrorKind::NotConnected),
            });
        };
        running.process.send(signal)?;
        running.paused = paused;
        Ok(())
    }

    /// Spawns tansu on `self.port` and waits until it lists topics.
    async fn launch(&mut self) -> Result<(), Error> {
        let url = self.broker_url();
        let marker = self.root.join(PROCESS_MARKER_DIR);
        std::fs::create_dir_all(&marker).map_err(Error::io(format!("creating {}", marker.display())))?;
        let mut command = self.tansu_command();
        command
            .current_dir(&self.root)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", STORAGE_URL]);
        let description = describe(&command);
        let process = ChildGuard::spawn("tansu", command)?;
        let watchdog = arm_watchdog(process.id(), &marker)?;
        let mut running = Running { _watchdog: watchdog, process, paused: false };

        let this = &*self;
        let ready = wait::until_some(READY_TIMEOUT, || {
            let exited = running.process.try_exit_status().ok().flatten();
            async move {
                match exited {
                    Some(status) => Some(Err(status)),
                    None => this.topics().await.ok().map(|_| Ok(())),
                }
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => {
                self.running = Some(running);
                Ok(())
            }
            Ok(Err(status)) => {
                // Let the pipes drain so the error shows why it exited (e.g. the port is taken).
                let _ = running.process.wait_for_exit(Duration::from_secs(5)).await;
                let mut output = output_of(&running.process);
                if output.contains("FeatureNotEnabled") {
                    output.push_str(&format!(
                        "\n(this tansu lacks SQLite storage: build it with `--features {TANSU_FEATURES}`, as \
                         `cargo xtask test` does)"
                    ));
                }
                Err(Error::CommandFailed { command: description, status, output })
            }
            Err(timed_out) => Err(Error::Io {
                context: format!(
                    "tansu on {url} did not answer within {:?}; its output:\n{}",
                    timed_out.timeout,
                    output_of(&running.process)
                ),
                source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            }),
        }
    }

    fn tansu_command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        // Its own process group: a terminal's Ctrl-C reaches its whole foreground group at once, and the broker
        // must outlive the services, which commit their offsets as they stop; its owner stops it last.
        command.process_group(0);
        for name in TANSU_ENV_VARS {
            command.env_remove(name);
        }
        command.env("RUST_LOG", "warn");
        command
    }

    fn broker_url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A stopped process ignores SIGKILL until continued; make sure a paused broker dies too.
        if self.paused {
            let _ = self.process.send(Signal::SIGCONT);
        }
    }
}

/// A watchdog that SIGKILLs `pid` (and removes the empty `dir`) when dropped or when this process dies.
fn arm_watchdog(pid: u32, dir: &Path) -> Result<Watchdog, Error> {
    let mut kill = Command::new("kill");
    kill.args(["-KILL", &pid.to_string()]);
    Watchdog::arm(&kill, dir)
}

fn output_of(process: &ChildGuard) -> String {
    let mut lines = process.stdout_lines();
    lines.extend(process.stderr_lines());
    lines.join("\n")
}

fn is_port_taken(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    lower.contains("address already in use") || lower.contains("addrinuse")
}

/// Topic names from `tansu topic list`, which prints the metadata response's topics as a JSON array.
fn parse_topic_names(output: &str) -> Result<Vec<String>, String> {
    let topics: Vec<serde_json::Value> =
        serde_json::from_str(output.trim()).map_err(|error| format!("{error} in {output:?}"))?;
    Ok(topics.iter().filter_map(|topic| topic.get("name")?.as_str().map(str::to_owned)).collect())
}

/// A port the kernel considers free right now; released before tansu binds it, hence the retry.
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(Error::io("finding a free TCP port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_come_from_the_metadata_json() {
        let output = r#"[{"error_code":0,"name":"abc","partitions":[{"partition_index":0}]},{"name":"d.e"}]"#;
        assert_eq!(parse_topic_names(output), Ok(vec!["abc".to_owned(), "d.e".to_owned()]));
        assert_eq!(parse_topic_names("[]\n"), Ok(Vec::new()));
        assert!(parse_topic_names("garbage").is_err());
    }
}
