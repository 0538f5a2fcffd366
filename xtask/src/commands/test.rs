//! `cargo xtask test`: every check CI runs, in one command that also works on a fresh machine.
//!
//! Installs missing prerequisites with `xtask/provision.sh` (apt packages, the tansu broker built once,
//! cargo-machete, k6, the pinned Python tools for the RFC 5545 reference and schemathesis; the steps get their
//! places as the `TASKWATCH_*` variables the script prints), starts one throwaway Postgres for the whole run
//! (exported as `DATABASE_URL`, so test databases share it), then runs fmt, clippy, the tests, the chaos run, the
//! service template's check and a quick benchmark (`cargo xtask bench --quick`). Every step runs
//! even after a failure, so one CI round trip shows every problem; a summary with timings ends the output.
//! Postgres is stopped however the run ends, Ctrl-C included.
//!
//! Tests run under cargo-nextest when it is installed: one process per test suits services whose
//! telemetry initialises once per process, its timeouts turn a hung test into a named failure instead
//! of a stuck job, and it reports processes a test leaks. It skips doctests, so those run separately.
//! Without nextest, plain `cargo test` runs everything.

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use testkit::postgres::{DATABASE_URL_ENV, PostgresServer};

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;
use crate::provision::{self, Provisioned};
use crate::{cargo, disk};

/// The directory of the `cargo-machete` binary the script installed, put first on the steps' `PATH`.
const MACHETE_DIR_ENV: &str = "TASKWATCH_MACHETE_DIR";

/// nextest settings for CI (relative to the workspace root).
const NEXTEST_CONFIG: &str = ".ci/nextest.toml";
/// Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;
/// What a whole run writes under an empty target directory (measured: README "Tests"), plus a margin.
const COLD_RUN_BYTES: u64 = 6 * 1024 * 1024 * 1024;
/// What even a run over a fully built target directory may write: relinked test binaries after a change.
const WARM_RUN_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop after the first failing step instead of running them all.
    #[arg(long)]
    fail_fast: bool,
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    let run_started = Instant::now();
    let mut summary = Summary::default();

    let clock = Instant::now();
    let tools = provision::ensure(provision::Profile::Test, &mut interrupt).await?;
    summary.record(format!("prerequisites ({})", provision::PROVISION_SCRIPT), Outcome::Passed, clock.elapsed());

    let clock = Instant::now();
    let (label, outcome) = check_disk_space();
    summary.record(label, outcome, clock.elapsed());

    let clock = Instant::now();
    let postgres = PostgresServer::start().await.context("starting the throwaway Postgres for the test run")?;
    summary.record(format!("start Postgres at {}", postgres.url()), Outcome::Passed, clock.elapsed());

    let mut any_failed = false;
    for step in steps(cargo::has_subcommand("nextest").await) {
        if interrupt.received().is_some() || (any_failed && args.fail_fast) {
            summary.skip(step.label());
            continue;
        }
        eprintln!("\n==> {}", step.label());
        let clock = Instant::now();
        let outcome = run_step(&step, postgres.url(), &tools, &mut interrupt).await?;
        any_failed |= outcome != Outcome::Passed;
        summary.record(step.label(), outcome, clock.elapsed());
    }

    let clock = Instant::now();
    drop(postgres);
    summary.record("stop Postgres".to_owned(), Outcome::Passed, clock.elapsed());

    summary.print(run_started.elapsed());
    Ok(if interrupt.received().is_some() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One cargo invocation.
#[derive(Debug)]
struct Step {
    args: &'static [&'static str],
}

impl Step {
    fn label(&self) -> String {
        format!("cargo {}", self.args.join(" "))
    }
}

fn steps(nextest: bool) -> Vec<Step> {
    let mut steps = vec![
        Step { args: &["fmt", "--all", "--check"] },
        // No dependency a crate does not use (the manifests list only what the code needs).
        Step { args: &["machete"] },
        // The SLO rules are generated from monitoring/prometheus/slos.yaml: fail when the committed ones are stale.
        Step { args: &["xtask", "slo", "--check"] },
        Step { args: &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"] },
    ];
    if nextest {
        steps.push(Step {
            args: &["nextest", "run", "--workspace", "--config-file", NEXTEST_CONFIG, "--profile", "ci"],
        });
        steps.push(Step { args: &["test", "--workspace", "--doc"] });
    } else {
        steps.push(Step { args: &["test", "--workspace"] });
    }
    // After the suites, alone on the cores: random kills and restarts under steady work, then exactly-once.
    steps.push(Step { args: &["xtask", "chaos", "--minutes", "3"] });
    // Last, so it never competes with the suites for the cores: the service template still generates a crate that
    // passes fmt, clippy and its own test, and the deployment files still take the new entries.
    steps.push(Step { args: &["xtask", "new-service", "--check"] });
    // A short benchmark (release builds, then a few seconds per load): it prints every target's ratio so a
    // regression shows in each CI log, and fails only when it cannot measure, never on a missed target.
    steps.push(Step { args: &["xtask", "bench", "--quick"] });
    steps
}

async fn run_step(
    step: &Step,
    database_url: &str,
    tools: &Provisioned,
    interrupt: &mut Interrupt,
) -> anyhow::Result<Outcome> {
    let mut command = cargo::command();
    command
        .args(step.args)
        .env(DATABASE_URL_ENV, database_url)
        .envs(tools.variables())
        .env("PATH", tools.path_with(MACHETE_DIR_ENV)?)
        // Set because `cargo xtask` itself runs under `cargo run`; cargo subcommands such as cargo-machete take it
        // to mean they were started by a build script, not as `cargo <name>`, and misread their arguments.
        .env_remove("CARGO_PKG_NAME");
    // The same as `cargo xtask up`'s build (see `cargo::INCREMENTAL`), so one build serves both.
    command.env("CARGO_INCREMENTAL", cargo::INCREMENTAL);
    let mut child = children::spawn_group_leader(&step.label(), &mut command)?;
    let ended = children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE)
        .await
        .with_context(|| format!("waiting for `{}`", step.label()))?;
    Ok(match ended {
        Ended::Exited(status) if status.success() => Outcome::Passed,
        Ended::Exited(_) => Outcome::Failed,
        Ended::Interrupted => Outcome::Interrupted,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Interrupted,
    Skipped,
    /// Not a failure by itself, but likely to cause one (shown so a failing run explains itself).
    Warning,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Passed => "ok",
            Self::Failed => "FAILED",
            Self::Interrupted => "INTERRUPTED",
            Self::Skipped => "skipped",
            Self::Warning => "WARNING",
        })
    }
}

/// Free space against what the rest of a cold run would still write under the target directory.
fn check_disk_space() -> (String, Outcome) {
    let target = testkit::workspace::target_dir();
    let measured = disk::available_bytes(&target).and_then(|free| Ok((free, disk::size_of_tree(&target)?)));
    match measured {
        Ok((free, built)) => {
            let label = format!(
                "disk: {} free for {} ({} built there; a run from empty writes about {})",
                disk::gib(free),
                target.display(),
                disk::gib(built),
                disk::gib(COLD_RUN_BYTES),
            );
            if disk_is_short(free, built) {
                eprintln!("xtask: WARNING: {label}; compiling may fail with \"No space left on device\"");
                (label, Outcome::Warning)
            } else {
                (label, Outcome::Passed)
            }
        }
        Err(error) => (format!("disk: free space under {} unknown: {error}", target.display()), Outcome::Warning),
    }
}

/// Whether `free` bytes are less than what the rest of a cold run writes when `built` bytes are already there.
fn disk_is_short(free: u64, built: u64) -> bool {
    free < COLD_RUN_BYTES.saturating_sub(built).max(WARM_RUN_BYTES)
}

/// What ran, how it ended and how long it took, printed at the end of the run.
#[derive(Debug, Default)]
struct Summary {
    rows: Vec<(String, Outcome, Option<Duration>)>,
}

impl Summary {
    fn record(&mut self, label: String, outcome: Outcome, elapsed: Duration) {
        self.rows.push((label, outcome, Some(elapsed)));
    }

    fn skip(&mut self, label: String) {
        self.rows.push((label, Outcome::Skipped, None));
    }

    fn print(&self, total: Duration) {
        eprintln!("\nxtask test summary:");
        for (label, outcome, elapsed) in &self.rows {
            let elapsed = elapsed.map_or_else(String::new, |elapsed| format!("{:.1}s", elapsed.as_secs_f64()));
            eprintln!("  {outcome:<11} {elapsed:>7}  {label}");
        }
        eprintln!("  {:<11} {:>6.1}s", "total", total.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn an_empty_target_needs_the_whole_cold_run() {
        assert!(disk_is_short(COLD_RUN_BYTES - 1, 0));
        assert!(!disk_is_short(COLD_RUN_BYTES, 0));
    }

    #[test]
    fn what_is_already_built_counts_towards_it() {
        assert!(!disk_is_short(2 * GIB, COLD_RUN_BYTES - 2 * GIB));
        assert!(disk_is_short(2 * GIB - 1, COLD_RUN_BYTES - 2 * GIB));
    }

    #[test]
    fn even_a_fully_built_target_needs_room_to_relink() {
        // An old development target, larger than a cold run.
        assert!(disk_is_short(WARM_RUN_BYTES - 1, 10 * COLD_RUN_BYTES));
        assert!(!disk_is_short(WARM_RUN_BYTES, 10 * COLD_RUN_BYTES));
    }
}
