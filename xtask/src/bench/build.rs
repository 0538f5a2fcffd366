//! Release builds of the programs under test: benchmarks of a debug build would measure the compiler's
//! settings, not the code. (Only the pipeline's driver, which measures nothing of its own, is built as the tests
//! build it.)

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use testkit::services::Service;

use crate::cargo;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// The executables the bench runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub backend: PathBuf,
    /// Where every service's release executable is (`TASKWATCH_BIN_DIR` of the pipeline driver).
    pub services_dir: PathBuf,
    pub telemetry_sink: PathBuf,
    pub framework_ceiling: PathBuf,
    /// `pipeline-bench` of the end-to-end crate: it only drives and watches, so its own build is the test
    /// suite's (unoptimised, already built by `cargo xtask test`).
    pub pipeline_driver: PathBuf,
}

/// Builds every service and the bench's helpers in release, and the pipeline driver as the tests build it.
pub async fn binaries(interrupt: &mut Interrupt) -> anyhow::Result<Binaries> {
    // Every service in one build, the backend of the API phase among them. (One build of several packages
    // compiles their dependencies with the union of the features they enable; the Dockerfile builds each service
    // alone. That changes which features are compiled into a dependency, not which code the backend runs.)
    let services: Vec<&str> = Service::ALL.iter().map(|service| service.name()).collect();
    let mut built =
        cargo_build(Build { release: true, packages: &services, bins: &services, features: &[] }, interrupt).await?;
    let backend = take(&mut built, "backend")?;
    let services_dir = backend.parent().context("the backend's executable has a directory")?.to_path_buf();
    // The bench's own helpers in one build: a build per helper would compile their shared dependencies twice,
    // each time with another feature set.
    let helpers = Build {
        release: true,
        packages: &["xtask"],
        bins: &["bench-telemetry-sink", "bench-framework-ceiling"],
        features: &["telemetry-sink", "framework-ceiling"],
    };
    let mut built = cargo_build(helpers, interrupt).await?;
    let telemetry_sink = take(&mut built, "bench-telemetry-sink")?;
    let framework_ceiling = take(&mut built, "bench-framework-ceiling")?;
    let driver = Build { release: false, packages: &["e2e"], bins: &["pipeline-bench"], features: &[] };
    let pipeline_driver = take(&mut cargo_build(driver, interrupt).await?, "pipeline-bench")?;
    Ok(Binaries { backend, services_dir, telemetry_sink, framework_ceiling, pipeline_driver })
}

/// One `cargo build` of some binaries.
#[derive(Debug, Clone, Copy)]
struct Build<'a> {
    /// `--release`, or the dev profile the tests use.
    release: bool,
    packages: &'a [&'a str],
    bins: &'a [&'a str],
    /// Features of the one package built (cargo takes bare feature names only with one package).
    features: &'a [&'a str],
}

/// The executable of `bin` among those built.
fn take(built: &mut HashMap<String, PathBuf>, bin: &str) -> anyhow::Result<PathBuf> {
    built.remove(bin).with_context(|| format!("cargo reported no executable for {bin}"))
}

/// Runs `build` (compiler output goes to the terminal) and returns the executables it reported, by binary name,
/// wherever the target directory is.
async fn cargo_build(build: Build<'_>, interrupt: &mut Interrupt) -> anyhow::Result<HashMap<String, PathBuf>> {
    let names = build.bins.join(", ");
    let profile = if build.release { "release" } else { "dev" };
    eprintln!("xtask: building {names} ({profile})…");
    let mut command = cargo::command();
    command.arg("build");
    if build.release {
        command.arg("--release");
    }
    for package in build.packages {
        command.args(["--package", package]);
    }
    for bin in build.bins {
        command.args(["--bin", bin]);
    }
    if !build.features.is_empty() {
        command.args(["--features", &build.features.join(",")]);
    }
    command.arg("--message-format=json-render-diagnostics").stdout(Stdio::piped());
    let mut child = children::spawn_group_leader(&format!("cargo build ({names}, {profile})"), &mut command)?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let executables = tokio::spawn(find_executables(stdout));

    match children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building {names}"),
        Ended::Exited(status) if !status.success() => bail!("building {names} failed ({status})"),
        Ended::Exited(_) => {}
    }
    executables.await.context("reading cargo's build messages")?
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
