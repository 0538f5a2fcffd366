//! Running cargo on this workspace.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// How long cargo gets to wind down after Ctrl-C before its process group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// `cargo` (the same one that runs us, so rustup's toolchain choice holds) in the workspace root.
pub fn command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Whether `cargo <name>` is installed, e.g. `nextest`.
pub async fn has_subcommand(name: &str) -> bool {
    command()
        .args([name, "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// The arguments of the one workspace build that `cargo xtask test` (nextest builds these same targets) and
/// `cargo xtask up` share: the same targets resolve the same features, so whichever runs second finds every
/// binary fresh instead of rebuilding the services with a different feature set.
const WORKSPACE_BUILD: &[&str] = &["build", "--workspace", "--bins", "--tests"];

/// Builds the workspace as `cargo xtask test` does (compiler output goes to the terminal) and returns the path of
/// each of `bins`, wherever the target directory is.
pub async fn build_binaries(bins: &[&str], interrupt: &mut Interrupt) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut build = command();
    build
        .args(WORKSPACE_BUILD)
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_INCREMENTAL", INCREMENTAL)
        .stdout(Stdio::piped());
    let mut child = children::spawn_group_leader("cargo build --workspace", &mut build)?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let wanted: Vec<String> = bins.iter().map(|bin| (*bin).to_owned()).collect();
    let artifacts = tokio::spawn(find_executables(stdout, wanted));

    match children::wait_or_stop(&mut child, interrupt, STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building the workspace"),
        Ended::Exited(status) if !status.success() => bail!("building the workspace failed ({status})"),
        Ended::Exited(_) => {}
    }
    let found = artifacts.await.context("reading cargo's build messages")??;
    if let Some(missing) = bins.iter().find(|bin| !found.contains_key(**bin)) {
        bail!("cargo reported no executable `{missing}`");
    }
    Ok(found)
}

/// `CARGO_INCREMENTAL` for every build of the workspace: part of each artifact's fingerprint, so it must be the
/// same for `test` and `up`; off, because a whole-suite run gains little from incremental caches, which would be
/// the largest part of a cold target directory (README "Tests").
pub const INCREMENTAL: &str = "0";

/// Reads cargo's JSON messages until the end and returns the executable path of each of `bins`.
async fn find_executables(
    stdout: tokio::process::ChildStdout,
    bins: Vec<String>,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut lines = BufReader::new(stdout).lines();
    let mut executables = BTreeMap::new();
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(name) = message["target"]["name"].as_str().filter(|name| bins.iter().any(|bin| bin == name)) else {
            continue;
        };
        let is_binary = message["reason"] == "compiler-artifact"
            && message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
            && message["profile"]["test"] == false;
        if let (true, Some(path)) = (is_binary, message["executable"].as_str()) {
            executables.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    Ok(executables)
}
