//! Installing what a command needs on a fresh Debian 12 machine: [`PROVISION_SCRIPT`] does the work (apt, the tansu
//! broker, cargo-machete, k6, the pinned Python tools) and tells where the tools are; nothing happens when they are
//! present.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::AsyncReadExt as _;

use crate::cargo;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// The provisioning script, relative to the workspace root; its header documents the profiles and the pins.
pub const PROVISION_SCRIPT: &str = "xtask/provision.sh";

/// What a command needs installed: one of the script's profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo xtask test`: everything the checks and tests use.
    Test,
    /// `cargo xtask up` and `chaos`: Postgres, the build tools, the monitoring servers and the broker.
    Up,
    /// `cargo xtask bench`: Postgres with pgbench and psql, the build tools, wrk, the broker and k6.
    Bench,
}

impl Profile {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Up => "up",
            Self::Bench => "bench",
        }
    }
}

/// Where the script put the tools: the `NAME=VALUE` lines it printed, for the environment of the commands that use
/// them (`TASKWATCH_TANSU_BIN`, `TASKWATCH_K6_BIN`, `TASKWATCH_PYTHON_TOOLS`, `TASKWATCH_MACHETE_DIR`).
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    variables: BTreeMap<String, String>,
}

impl Provisioned {
    /// The path the script printed for `name`, or an error naming it when the profile does not install it.
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.variables.get(name).map(PathBuf::from).with_context(|| format!("{PROVISION_SCRIPT} did not print {name}"))
    }

    /// Every variable, to pass on to a child's environment.
    pub fn variables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.variables.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// `PATH` with the directory in `name` first (cargo finds subcommands such as `cargo machete` on it).
    pub fn path_with(&self, name: &str) -> anyhow::Result<OsString> {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(self.path(name)?).chain(std::env::split_paths(&rest));
        std::env::join_paths(paths).context("a directory on PATH contains a `:`")
    }
}

/// Runs the script for `profile` (in its own process group, so Ctrl-C stops an apt or `cargo install` it started)
/// and reads where it put the tools.
pub async fn ensure(profile: Profile, interrupt: &mut Interrupt) -> anyhow::Result<Provisioned> {
    let script = cargo::workspace_root().join(PROVISION_SCRIPT);
    let mut command = tokio::process::Command::new("bash");
    command.arg(&script).arg(profile.as_arg()).stdout(Stdio::piped());
    let label = format!("{PROVISION_SCRIPT} {}", profile.as_arg());
    let mut child = children::spawn_group_leader(&label, &mut command)?;
    let mut stdout = child.stdout.take().context("the script's output was not captured")?;
    let mut printed = String::new();
    let (read, ended) = tokio::join!(
        stdout.read_to_string(&mut printed),
        children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE)
    );
    read.with_context(|| format!("reading what `{label}` printed"))?;
    match ended.with_context(|| format!("waiting for `{label}`"))? {
        Ended::Interrupted => bail!("interrupted during `{label}`"),
        Ended::Exited(status) if !status.success() => bail!("`{label}` failed ({status}); its messages are above"),
        Ended::Exited(_) => parse(&printed).with_context(|| format!("reading what `{label}` printed")),
    }
}

fn parse(printed: &str) -> anyhow::Result<Provisioned> {
    let variables = printed
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').with_context(|| format!("not a NAME=VALUE line: {line:?}"))?;
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Provisioned { variables })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's pins, as `NAME=VALUE` assignments (and the Python requirements array) in its text.
    fn script() -> String {
        std::fs::read_to_string(cargo::workspace_root().join(PROVISION_SCRIPT)).expect("the script is readable")
    }

    #[test]
    fn provision_script_pins_match_what_testkit_looks_for() {
        let script = script();
        let kafka = [
            format!("TANSU_VERSION={}\n", testkit::kafka::TANSU_VERSION),
            format!("TANSU_FEATURES={}\n", testkit::kafka::TANSU_FEATURES),
        ];
        for pin in kafka {
            assert!(script.contains(&pin), "{PROVISION_SCRIPT} lacks `{}`", pin.trim());
        }
        assert!(script.contains("TANSU_ROOT_NAME=tansu-$TANSU_VERSION-libsql\n"), "tansu's install root moved");
        assert_eq!(testkit::kafka::INSTALL_ROOT_NAME, format!("tansu-{}-libsql", testkit::kafka::TANSU_VERSION));
        let python = format!("PYTHON_REQUIREMENTS=({})", testkit::python::REQUIREMENTS.join(" "));
        assert!(script.contains(&python), "{PROVISION_SCRIPT} lacks `{python}`");
        assert!(script.contains(&format!("\"$CACHE/{}\"", testkit::python::TOOLS_NAME)), "python tools moved");
    }

    #[test]
    fn printed_variables_are_read_and_other_lines_refused() {
        let provisioned = parse("TASKWATCH_K6_BIN=/cache/k6/bin/k6\n\nTASKWATCH_MACHETE_DIR=/cache/m/bin\n").unwrap();
        assert_eq!(provisioned.path("TASKWATCH_K6_BIN").unwrap(), PathBuf::from("/cache/k6/bin/k6"));
        assert!(provisioned.path("TASKWATCH_TANSU_BIN").is_err());
        assert_eq!(provisioned.variables().count(), 2);
        assert!(parse("building tansu…\n").is_err());
    }
}
