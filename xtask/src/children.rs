//! Child processes led into their own process groups, so one signal reaches their whole tree
//! (`cargo` and the test binaries it runs) and nothing of ours is left behind.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::interrupt::Interrupt;

/// Spawns `command` as the leader of a new process group, with stdin closed (a child in a background
/// group that touched the terminal would be stopped by it).
pub fn spawn_group_leader(what: &str, command: &mut Command) -> anyhow::Result<Child> {
    command.process_group(0).stdin(Stdio::null()).kill_on_drop(true);
    command.spawn().with_context(|| format!("starting {what}"))
}

/// Sends `signal` to the child's whole process group, waits up to `grace` for the child to exit,
/// then kills the group.
pub async fn stop_group(child: &mut Child, signal: Signal, grace: Duration) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let Some(pid) = child.id() else {
        return child.wait().await;
    };
    signal_group(pid, signal);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            child.wait().await
        }
    }
}

fn signal_group(leader: u32, signal: Signal) {
    // Linux pids fit in pid_t (pid_max ≤ 2^22). ESRCH only means the group is already gone.
    if let Err(error) = killpg(Pid::from_raw(leader as i32), signal)
        && error != nix::Error::ESRCH
    {
        eprintln!("xtask: could not send {signal} to process group {leader}: {error}");
    }
}

/// How a child we waited on ended.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    /// It finished on its own.
    Exited(ExitStatus),
    /// A stop was requested and we stopped it.
    Interrupted,
}

/// Waits for `child` to finish; if a stop is requested first, forwards it as SIGINT to the child's
/// group (cargo and test binaries handle it like a terminal's Ctrl-C) and waits up to `grace`.
pub async fn wait_or_stop(child: &mut Child, interrupt: &mut Interrupt, grace: Duration) -> io::Result<Ended> {
    tokio::select! {
        status = child.wait() => status.map(Ended::Exited),
        _ = interrupt.requested() => {
            stop_group(child, Signal::SIGINT, grace).await?;
            Ok(Ended::Interrupted)
        }
    }
}
