//! Release builds of the programs under test: benchmarks of a debug build would measure the compiler's
//! settings, not the code.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::cargo;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// The release executables the bench runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub backend: PathBuf,
    pub telemetry_sink: PathBuf,
}

pub async fn release_binaries(interrupt: &mut Interrupt) -> anyhow::Result<Binaries> {
    let backend = release_binary(Target { package: "backend", bin: "backend", features: None }, interrupt).await?;
    let telemetry_sink = release_binary(
        Target { package: "xtask", bin: "bench-telemetry-sink", features: Some("telemetry-sink") },
        interrupt,
    )
    .await?;
    Ok(Binaries { backend, telemetry_sink })
}

#[derive(Debug, Clone, Copy)]
struct Target {
    package: &'static str,
    bin: &'static str,
    features: Option<&'static str>,
}

/// Builds one binary with `--release` (compiler output goes to the terminal) and returns its path, wherever
/// the target directory is.
async fn release_binary(target: Target, interrupt: &mut Interrupt) -> anyhow::Result<PathBuf> {
    eprintln!("xtask: building {} (release)…", target.bin);
    let mut build = cargo::command();
    build
        .args(["build", "--release", "--package", target.package, "--bin", target.bin])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if let Some(features) = target.features {
        build.args(["--features", features]);
    }
    let mut child = children::spawn_group_leader(&format!("cargo build --release --bin {}", target.bin), &mut build)?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let executable = tokio::spawn(find_executable(stdout, target.bin));

    match children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building {}", target.bin),
        Ended::Exited(status) if !status.success() => bail!("building {} failed ({status})", target.bin),
        Ended::Exited(_) => {}
    }
    executable
        .await
        .context("reading cargo's build messages")??
        .with_context(|| format!("cargo reported no executable for {}", target.bin))
}

/// Reads cargo's JSON messages to the end and returns the path of executable `bin`.
async fn find_executable(stdout: tokio::process::ChildStdout, bin: &'static str) -> anyhow::Result<Option<PathBuf>> {
    let mut lines = BufReader::new(stdout).lines();
    let mut executable = None;
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == bin
            && let Some(path) = message["executable"].as_str()
        {
            executable = Some(PathBuf::from(path));
        }
    }
    Ok(executable)
}
