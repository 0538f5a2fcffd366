//! `chaos --minutes N [--seed S]`: the whole system under steady work while random parts are killed and
//! restarted, then the exactly-once check (see `e2e::chaos`). Prints the counts; exits 1 when they show a loss,
//! repeats beyond their bound or a wrong number of next occurrences, 2 when the run itself could not be made.
//! Run it through `cargo xtask chaos`, which builds the services and the broker first.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use e2e::chaos::{self, ChaosOptions};

/// Command line of the chaos run.
#[derive(Debug, Parser)]
#[command(name = "chaos", about = "Kill and restart random parts of the running system, then check exactly-once")]
struct Args {
    /// Minutes of work and faults (the check afterwards takes a minute or two more).
    #[arg(long, default_value_t = 3)]
    minutes: u64,
    /// Seed of the fault schedule (random when not given; printed either way so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("chaos: {} minutes, seed {seed} (repeat with --seed {seed})", args.minutes);
    let options = ChaosOptions { duration: Duration::from_secs(args.minutes.saturating_mul(60)), seed };
    match chaos::run(options).await {
        Ok(report) => {
            println!("chaos: {report}");
            match report.verdict() {
                Ok(()) => {
                    println!("chaos: exactly once held");
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    println!("chaos: FAILED: {problems} (seed {seed})");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("chaos: the run could not be made: {error}");
            ExitCode::from(2)
        }
    }
}
