//! Installing what the commands need on a fresh Debian 12 machine; nothing happens when it is present.

use std::process::Stdio;

use anyhow::{Context as _, bail};
use nix::unistd::Uid;
use tokio::process::Command;

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

/// What `cargo xtask test` needs; later issues append the broker, promtool, and so on.
pub const FOR_TESTS: &[&Requirement] = &[&POSTGRES];

/// What `cargo xtask up` needs.
pub const FOR_UP: &[&Requirement] = &[&POSTGRES];

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
