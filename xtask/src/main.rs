//! Developer entry points for Taskwatch, run as `cargo xtask <command>`.
//!
//! - `cargo xtask test`: every check CI runs, on a fresh machine too (installs what is missing).
//! - `cargo xtask up`: the four services running locally with a throwaway Postgres, broker and SMTP sink.
//! - `cargo xtask bench`: throughput and latency of the backend, telemetry off and on; writes BENCHMARKS.md.
//! - `cargo xtask chaos --minutes N`: random kills and restarts of services, broker and Postgres under steady
//!   work, then the exactly-once check.
//! - `cargo xtask slo`: generates the SLO recording and burn-rate rules from `monitoring/prometheus/slos.yaml`
//!   (`--check`: fail when the committed rules are stale).
//! - `cargo xtask new-service NAME`: a new service from the template, entered in compose, Prometheus and the chart
//!   (`--check`: generate a sample in a temporary copy and build, lint and test it).
//!
//! Each command lives in its own module under `commands/` (the bench, with its several parts, in `bench/`); the shared machinery (prerequisites,
//! child processes, signals, cargo) sits beside them.

mod bench;
mod cargo;
mod children;
mod commands;
mod dev_credentials;
mod disk;
mod interrupt;
mod provision;
mod supervisor;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::interrupt::Interrupt;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Taskwatch developer entry points")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check CI runs: fmt, clippy (-D warnings) and all tests against a throwaway Postgres.
    Test(commands::test::Args),
    /// Run the four services locally (throwaway Postgres, tansu broker, SMTP sink); print the URLs and a dev token.
    Up(commands::up::Args),
    /// Benchmark the backend (release build) with telemetry off and on, against a pgbench ceiling; writes BENCHMARKS.md.
    Bench(bench::Args),
    /// Kill and restart random services, the broker and Postgres under steady work for N minutes, then check
    /// that every reminder arrived once and every completed series continued once.
    Chaos(commands::chaos::Args),
    /// Generate the SLO rules from monitoring/prometheus/slos.yaml; `--check` fails when the committed rules are stale.
    Slo(commands::slo::Args),
    /// Create services/NAME from the service template and enter it in compose, Prometheus and the chart;
    /// `--check` builds and tests a sample in a temporary copy of the repository.
    NewService(commands::new_service::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Installed before any child starts, so Ctrl-C and SIGTERM always reach our cleanup.
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Test(args) => commands::test::run(args, interrupt).await,
        Command::Up(args) => commands::up::run(args, interrupt).await,
        Command::Bench(args) => bench::run(args, interrupt).await,
        Command::Slo(args) => commands::slo::run(&args),
        Command::Chaos(args) => commands::chaos::run(args, interrupt).await,
        Command::NewService(args) => commands::new_service::run(args, interrupt).await,
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("xtask: {error:#}");
        ExitCode::FAILURE
    })
}
