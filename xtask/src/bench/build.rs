//! Release builds of the programs under test: benchmarks of a debug build would measure the compiler's
//! settings, not the code.

use std::collections::HashMap;
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
    pub framework_ceiling: PathBuf,
}

pub async fn release_binaries(interrupt: &mut Interrupt) -> anyhow::Result<Binaries> {
    let [backend] = release_build(Build { package: "backend", bins: ["backend"], features: &[] }, interrupt).await?;
    // The bench's own helpers in one build: a build per helper would compile their shared dependencies twice,
    // each time with another feature set.
    let helpers = Build {
        package: "xtask",
        bins: ["bench-telemetry-sink", "bench-framework-ceiling"],
        features: &["telemetry-sink", "framework-ceiling"],
    };
    let [telemetry_sink, framework_ceiling] = release_build(helpers, interrupt).await?;
    Ok(Binaries { backend, telemetry_sink, framework_ceiling })
}

/// One `cargo build --release` of some binaries of one package. (Not of two packages at once: cargo would
/// unify their dependencies' features and build the backend with features it does not have.)
#[derive(Debug, Clone, Copy)]
struct Build<const N: usize> {
    package: &'static str,
    bins: [&'static str; N],
    features: &'static [&'static str],
}

/// Builds `build`'s binaries with `--release` (compiler output goes to the terminal) and returns their paths in
/// the same order, wherever the target directory is.
async fn release_build<const N: usize>(build: Build<N>, interrupt: &mut Interrupt) -> anyhow::Result<[PathBuf; N]> {
    let names = build.bins.join(", ");
    eprintln!("xtask: building {names} (release)…");
    let mut command = cargo::command();
    command.args(["build", "--release", "--package", build.package]);
    for bin in build.bins {
        command.args(["--bin", bin]);
    }
    if !build.features.is_empty() {
        command.args(["--features", &build.features.join(",")]);
    }
    command.arg("--message-format=json-render-diagnostics").stdout(Stdio::piped());
    let mut child = children::spawn_group_leader(&format!("cargo build --release ({names})"), &mut command)?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let executables = tokio::spawn(find_executables(stdout));

    match children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building {names}"),
        Ended::Exited(status) if !status.success() => bail!("building {names} failed ({status})"),
        Ended::Exited(_) => {}
    }
    let mut executables = executables.await.context("reading cargo's build messages")??;
    let mut paths = Vec::with_capacity(N);
    for bin in build.bins {
        paths.push(executables.remove(bin).with_context(|| format!("cargo reported no executable for {bin}"))?);
    }
    paths.try_into().map_err(|_| anyhow::anyhow!("one path per binary"))
}

/// Reads cargo's JSON messages to the end: the executable of each binary target built, by target name.
async fn find_executables(stdout: tokio::process::ChildStdout) -> anyhow::Result<HashMap<String, PathBuf>> {
    let mut lines = BufReader::new(stdout).lines();
    let mut executables = HashMap::new();
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && let (Some(name), Some(path)) = (message["target"]["name"].as_str(), message["executable"].as_str())
        {
            executables.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    Ok(executables)
}
