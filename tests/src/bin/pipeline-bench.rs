//! `pipeline-bench [--reminders-per-second N] [--seconds S] [--completions C]`: the pipeline's latencies and every
//! service's memory on the whole system (see `e2e::pipeline`), printed as one JSON line on standard output.
//! `cargo xtask bench` runs it against release-built services (`TASKWATCH_BIN_DIR`) and reports the figures.

use std::process::ExitCode;

use clap::Parser;
use e2e::pipeline::{self, PipelineOptions};

/// Command line of the pipeline bench.
#[derive(Debug, Parser)]
#[command(name = "pipeline-bench", about = "Reminder and recurrence latencies and memory of the running system")]
struct Args {
    /// Reminders falling due per second.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reminders_per_second: u32,
    /// Seconds of reminders.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    seconds: u32,
    /// Recurring tasks completed (five per second).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    completions: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = PipelineOptions {
        reminders_per_second: args.reminders_per_second,
        seconds: args.seconds,
        completions: args.completions,
    };
    match pipeline::run(options).await {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pipeline-bench: writing the figures: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("pipeline-bench: the run could not be made: {error}");
            ExitCode::FAILURE
        }
    }
}
