//! `cargo xtask chaos --minutes N`: the chaos run (the `chaos` binary of the `e2e` crate, see `tests/src/chaos.rs`)
//! after installing what it needs and building the services it runs. `cargo xtask test` runs it for a few
//! minutes; run it longer to look for rarer timings, and repeat a failing run with the `--seed` it printed.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use testkit::kafka::TANSU_BIN_ENV;

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;
use crate::{cargo, provision};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Minutes of work and faults; the exactly-once check afterwards takes a minute or two more.
    #[arg(long, default_value_t = 3)]
    minutes: u64,
    /// Seed of the fault schedule, to repeat a run (random when not given; the run prints it).
    #[arg(long)]
    seed: Option<u64>,
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    let tansu = provision::ensure(provision::Profile::Up, &mut interrupt).await?.path(TANSU_BIN_ENV)?;

    // The stack starts the workspace-built services, so build them (and the chaos binary) for this profile.
    let mut build = cargo::command();
    build.args(["build", "--workspace", "--bins"]);
    let mut child = children::spawn_group_leader("cargo build --workspace --bins", &mut build)?;
    match children::wait_or_stop(&mut child, &mut interrupt, cargo::STOP_GRACE).await? {
        Ended::Interrupted => bail!("interrupted while building the services"),
        Ended::Exited(status) if !status.success() => bail!("building the services failed ({status})"),
        Ended::Exited(_) => {}
    }

    let binary = testkit::workspace::binary("chaos").context("the chaos binary is missing after the build")?;
    let mut chaos = tokio::process::Command::new(binary);
    chaos.arg("--minutes").arg(args.minutes.to_string()).env(TANSU_BIN_ENV, &tansu);
    if let Some(seed) = args.seed {
        chaos.arg("--seed").arg(seed.to_string());
    }
    let mut child = children::spawn_group_leader("chaos", &mut chaos)?;
    Ok(match children::wait_or_stop(&mut child, &mut interrupt, cargo::STOP_GRACE).await? {
        Ended::Interrupted => ExitCode::from(130),
        Ended::Exited(status) if status.success() => ExitCode::SUCCESS,
        Ended::Exited(_) => ExitCode::FAILURE,
    })
}
