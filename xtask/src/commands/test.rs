//! `cargo xtask test`: every check CI runs, in one command that also works on a fresh machine.
//!
//! Installs missing prerequisites (building the tansu Kafka broker once, exported to tests as
//! `TASKWATCH_TANSU_BIN`; k6 for the load-generator test, exported as `TASKWATCH_K6_BIN`), starts one throwaway Postgres for the whole run (exported as
//! `DATABASE_URL`, so test databases share it), then runs fmt, clippy and the tests. Every step runs
//! even after a failure, so one CI round trip shows every problem; a summary with timings ends the
//! output. Postgres is stopped however the run ends, Ctrl-C included.
//!
//! Tests run under cargo-nextest when it is installed: one process per test suits services whose
//! telemetry initialises once per process, its timeouts turn a hung test into a named failure instead
//! of a stuck job, and it reports processes a test leaks. It skips doctests, so those run separately.
//! Without nextest, plain `cargo test` runs everything.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use testkit::kafka::TANSU_BIN_ENV;

/// Where the load-generator test finds k6 (`tests/tests/load_generator.rs`).
const K6_BIN_ENV: &str = "TASKWATCH_K6_BIN";
use testkit::postgres::{DATABASE_URL_ENV, PostgresServer};

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;
use crate::{cargo, provision};

/// nextest settings for CI (relative to the workspace root).
const NEXTEST_CONFIG: &str = ".ci/nextest.toml";
/// Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;

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
    let installed = provision::ensure(provision::FOR_TESTS).await?;
    let label = match installed.as_slice() {
        [] => "prerequisites (all present)".to_owned(),
        names => format!("prerequisites (installed {})", names.join(", ")),
    };
    summary.record(label, Outcome::Passed, clock.elapsed());

    let clock = Instant::now();
    let tansu = provision::ensure_tansu(&mut interrupt).await?;
    summary.record(format!("Kafka broker at {}", tansu.display()), Outcome::Passed, clock.elapsed());

    let clock = Instant::now();
    let k6 = provision::ensure_k6().await?;
    summary.record(format!("k6 at {}", k6.display()), Outcome::Passed, clock.elapsed());

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
        let outcome = run_step(&step, postgres.url(), &tansu, &k6, &mut interrupt).await?;
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
    // Last, so it never competes with the suites for the cores: the service template still generates a crate that
    // passes fmt, clippy and its own test, and the deployment files still take the new entries.
    steps.push(Step { args: &["xtask", "new-service", "--check"] });
    steps
}

async fn run_step(
    step: &Step,
    database_url: &str,
    tansu: &Path,
    k6: &Path,
    interrupt: &mut Interrupt,
) -> anyhow::Result<Outcome> {
    let mut command = cargo::command();
    command.args(step.args).env(DATABASE_URL_ENV, database_url).env(TANSU_BIN_ENV, tansu).env(K6_BIN_ENV, k6);
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
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Passed => "ok",
            Self::Failed => "FAILED",
            Self::Interrupted => "INTERRUPTED",
            Self::Skipped => "skipped",
        })
    }
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
