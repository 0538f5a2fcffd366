//! Running cargo on this workspace.

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

/// Builds binary `bin` of `package` (compiler output goes to the terminal) and returns its path,
/// wherever the target directory is.
pub async fn build_binary(package: &str, bin: &str, interrupt: &mut Interrupt) -> anyhow::Result<PathBuf> {
    let mut build = command();
    build
        .args(["build", "--package", package, "--bin", bin])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = children::spawn_group_leader(&format!("cargo build -p {package}"), &mut build)?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let artifact = tokio::spawn(find_executable(stdout, bin.to_owned()));

    match children::wait_or_stop(&mut child, interrupt, STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building {package}"),
        Ended::Exited(status) if !status.success() => bail!("building {package} failed ({status})"),
        Ended::Exited(_) => {}
    }
    artifact
        .await
        .context("reading cargo's build messages")??
        .with_context(|| format!("cargo reported no executable for {package}/{bin}"))
}

/// Reads cargo's JSON messages until the end and returns the executable path for `bin`.
async fn find_executable(stdout: tokio::process::ChildStdout, bin: String) -> anyhow::Result<Option<PathBuf>> {
    let mut lines = BufReader::new(stdout).lines();
    let mut executable = None;
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_our_binary = message["reason"] == "compiler-artifact"
            && message["target"]["name"] == bin.as_str()
            && message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
        if let (true, Some(path)) = (is_our_binary, message["executable"].as_str()) {
            executable = Some(PathBuf::from(path));
        }
    }
    Ok(executable)
}
