//! Child processes that tests spawn (service binaries), killed and reaped however the test ends.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal;
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::Error;
use crate::collected::Collected;
use crate::command::describe;

/// Signals for [`ChildGuard::send`], re-exported so tests need no `nix` dependency.
pub use nix::sys::signal::Signal;

/// How many trailing output lines a failing test prints for each guarded child.
const LINES_SHOWN_ON_PANIC: usize = 60;
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A spawned child process that is killed (SIGKILL) and reaped when the guard drops, with its stdout
/// and stderr captured line by line so tests can search them.
///
/// Spawn the binary itself (e.g. `env!("CARGO_BIN_EXE_backend")`), not `cargo run`: killing `cargo`
/// would leave its child running. When the guard drops during a panic it prints the child's last
/// lines, so a failing test shows what the service said.
///
/// ```no_run
/// # async fn demo() -> Result<(), testkit::Error> {
/// use std::time::Duration;
/// let mut command = std::process::Command::new("my-service");
/// command.env("PORT", "0");
/// let mut service = testkit::process::ChildGuard::spawn("my-service", command)?;
/// let line = service
///     .wait_for_line(|line| line.contains("listening"), Duration::from_secs(30))
///     .await;
/// assert!(line.is_some(), "service never said it was listening");
/// let status = service.terminate(Duration::from_secs(10)).await?;
/// assert!(status.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    exit_status: Option<ExitStatus>,
    stdout: Arc<Collected<String>>,
    stderr: Arc<Collected<String>>,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout/stderr captured. `name` labels error messages and
    /// the output printed when a test fails.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Result<Self, Error> {
        let name = name.into();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn { command: describe(&command), source })?;
        let stdout = Arc::new(Collected::new());
        let stderr = Arc::new(Collected::new());
        if let Some(pipe) = child.stdout.take() {
            capture_lines(pipe, Arc::clone(&stdout));
        }
        if let Some(pipe) = child.stderr.take() {
            capture_lines(pipe, Arc::clone(&stderr));
        }
        Ok(Self { name, child, exit_status: None, stdout, stderr })
    }

    /// The label given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line so far, without the trailing newline.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.snapshot()
    }

    /// Every stderr line so far, without the trailing newline.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits for the first stdout line (past or future) matching `predicate`.
    ///
    /// `None` when `timeout` passes first, or as soon as stdout closes without a match, so a
    /// crashed service fails the test at once instead of at the deadline.
    pub async fn wait_for_line(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.stdout.wait_for(|line| predicate(line), timeout).await
    }

    /// Like [`ChildGuard::wait_for_line`], on stderr.
    pub async fn wait_for_stderr_line(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.stderr.wait_for(|line| predicate(line), timeout).await
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.exit_status.is_none() {
            self.exit_status =
                self.child.try_wait().map_err(Error::io(format!("checking whether `{}` exited", self.name)))?;
        }
        Ok(self.exit_status)
    }

    /// Waits for the child to exit on its own and for its output to be fully captured.
    ///
    /// `Ok(None)` when it is still running at `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status()? {
                // The pipes drain after the exit; wait so callers can assert on the last lines.
                let remaining = deadline.saturating_duration_since(Instant::now());
                self.stdout.wait_until_finished(remaining).await;
                self.stderr.wait_until_finished(remaining).await;
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(EXIT_POLL_INTERVAL).await;
        }
    }

    /// Asks the child to stop with SIGTERM (a service's graceful shutdown, which flushes telemetry)
    /// and waits up to `grace` for it; after that it is killed.
    pub async fn terminate(&mut self, grace: Duration) -> Result<ExitStatus, Error> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.send(Signal::SIGTERM)?;
        match self.wait_for_exit(grace).await? {
            Some(status) => Ok(status),
            None => self.kill(),
        }
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus, Error> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.child.kill().map_err(Error::io(format!("killing `{}`", self.name)))?;
        let status = self.child.wait().map_err(Error::io(format!("reaping `{}`", self.name)))?;
        self.exit_status = Some(status);
        Ok(status)
    }

    /// Sends `signal` to the child, e.g. SIGSTOP/SIGCONT to simulate a stuck process.
    pub fn send(&self, signal: Signal) -> Result<(), Error> {
        let pid = self.id();
        // Linux pids are at most 2^22 (pid_max), so the conversion to pid_t is lossless.
        let raw_pid = pid as i32;
        signal::kill(Pid::from_raw(raw_pid), signal).map_err(|source| Error::Signal {
            name: self.name.clone(),
            pid,
            signal,
            source,
        })
    }

    fn print_output_tail(&self) {
        for (stream, lines) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let lines = lines.snapshot();
            let skipped = lines.len().saturating_sub(LINES_SHOWN_ON_PANIC);
            eprintln!("----- {} {stream} (last {} of {} lines) -----", self.name, lines.len() - skipped, lines.len());
            for line in &lines[skipped..] {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            eprintln!("testkit: {error}");
        }
        if std::thread::panicking() {
            self.print_output_tail();
        }
    }
}

/// Reads `pipe` on its own thread (the guard must work from any runtime, or none) until end of file.
fn capture_lines(pipe: impl Read + Send + 'static, into: Arc<Collected<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    into.push(line.trim_end_matches(['\n', '\r']).to_owned());
                }
            }
        }
        into.finish();
    });
}

/// A process's resident memory, read from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentMemory {
    /// Resident now (`VmRSS`).
    pub resident_bytes: u64,
    /// The most it was resident at any moment so far (`VmHWM`).
    pub peak_resident_bytes: u64,
}

impl ResidentMemory {
    /// Reads process `pid`'s figures; an error when the process is gone or the kernel reports no such fields.
    pub fn of(pid: u32) -> std::io::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let bytes = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/status has no {field} in kB")))
        };
        Ok(Self { resident_bytes: bytes("VmRSS:")?, peak_resident_bytes: bytes("VmHWM:")? })
    }
}
