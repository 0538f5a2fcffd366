//! The machine and the tools a run was made with: figures mean little without them.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::tools::Tools;
use crate::cargo;

#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    /// `hypervisor` in the CPU flags: the cores are virtual and may be shared with other guests.
    pub virtualised: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Versions {
    pub rustc: String,
    pub k6: String,
    pub wrk: String,
    pub pgbench: String,
    /// Commit of the code under test, with `-dirty` when the work tree has changes.
    pub commit: String,
}

const UNKNOWN: &str = "unknown";

pub fn describe_machine() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let os_release = read("/etc/os-release");
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: field(&cpuinfo, "model name", ':').unwrap_or(UNKNOWN).to_owned(),
        memory_gib: field(&meminfo, "MemTotal", ':')
            .and_then(|value| value.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
        os: field(&os_release, "PRETTY_NAME", '=').unwrap_or(UNKNOWN).trim_matches('"').to_owned(),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        virtualised: field(&cpuinfo, "flags", ':')
            .is_some_and(|flags| flags.split(' ').any(|flag| flag == "hypervisor")),
    }
}

pub async fn versions(tools: &Tools) -> Versions {
    let rustc = first_line(Command::new("rustc").arg("--version")).await;
    let k6 = first_line(Command::new(&tools.k6).arg("version")).await;
    let wrk = wrk_version(&tools.wrk).await;
    let pgbench = first_line(Command::new(&tools.pgbench).arg("--version")).await;
    let root = cargo::workspace_root();
    let head = first_line(Command::new("git").arg("-C").arg(root).args(["rev-parse", "--short=12", "HEAD"])).await;
    let changes = output(Command::new("git").arg("-C").arg(root).args(["status", "--porcelain"])).await;
    let commit = match changes {
        Some(changes) if !changes.trim().is_empty() => format!("{head}-dirty"),
        _ => head,
    };
    Versions { rustc, k6, wrk, pgbench, commit }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the first `key<separator>value` line.
fn field<'a>(text: &'a str, key: &str, separator: char) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(separator)?;
        (name.trim() == key).then(|| value.trim())
    })
}

async fn first_line(command: &mut Command) -> String {
    output(command).await.and_then(|text| text.lines().next().map(str::to_owned)).unwrap_or_else(|| UNKNOWN.to_owned())
}

/// wrk's first line, up to its copyright: `wrk debian/4.1.0-3+b2 [epoll]`. (`wrk --version` prints its usage
/// after the version and exits with 1.)
async fn wrk_version(wrk: &Path) -> String {
    let output = Command::new(wrk).arg("--version").stdin(Stdio::null()).stderr(Stdio::null()).output().await;
    output
        .ok()
        .and_then(|output| {
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let line = text.lines().next()?;
            Some(line.split(" Copyright").next().unwrap_or(line).trim().to_owned())
        })
        .filter(|line| line.starts_with("wrk"))
        .unwrap_or_else(|| UNKNOWN.to_owned())
}

async fn output(command: &mut Command) -> Option<String> {
    let output = command.stdin(Stdio::null()).stderr(Stdio::null()).output().await.ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_by_key() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu hypervisor\n";
        assert_eq!(field(text, "model name", ':'), Some("AMD EPYC"));
        assert_eq!(field("NAME=\"Debian\"\nPRETTY_NAME=\"Debian 12\"", "PRETTY_NAME", '='), Some("\"Debian 12\""));
        assert_eq!(field(text, "missing", ':'), None);
    }
}
