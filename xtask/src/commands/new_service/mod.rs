//! `cargo xtask new-service NAME [--port N] [--topic T]`: creates `services/NAME` from the template in
//! `xtask/templates/service` (a Kafka consumer with its own schema, probes, metrics, graceful shutdown and a test
//! on real Postgres and tansu) and enters it in the workspace, compose, Prometheus and the Helm chart.
//! `--check` generates a sample into a temporary copy of the repository and builds, lints and tests it there.
//! The guide is `docs/new-service.md`.

mod check;
mod edits;
mod generate;
mod name;
mod ports;
mod template;

use std::process::ExitCode;

use crate::cargo;
use crate::interrupt::Interrupt;
use name::ServiceName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service name, lowercase kebab-case (e.g. `audit-log`): crate, binary, compose service and chart key.
    #[arg(value_parser = parse_name, required_unless_present = "check", conflicts_with = "check")]
    name: Option<ServiceName>,
    /// Its HTTP port (probes and /metrics); default: the next free one after the highest service port.
    #[arg(long, conflicts_with = "check")]
    port: Option<u16>,
    /// The topic it consumes.
    #[arg(long, default_value = "task-events", conflicts_with = "check")]
    topic: String,
    /// Generate a sample into a temporary copy of the repository and run fmt, clippy, its test, compose and helm
    /// checks there; this repository is not changed.
    #[arg(long)]
    check: bool,
}

fn parse_name(name: &str) -> Result<ServiceName, name::InvalidName> {
    ServiceName::parse(name)
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    let Some(name) = args.name else {
        return check::run(&mut interrupt).await;
    };
    let generated = generate::generate(cargo::workspace_root(), name.clone(), args.port, &args.topic)?;
    println!("{}", generate::report(&name, &args.topic, &generated));
    // The template is formatted for a typical name; rustfmt breaks lines differently around longer ones.
    let formatted = cargo::command().args(["fmt", "-p", name.as_str()]).status().await;
    if !formatted.is_ok_and(|status| status.success()) {
        eprintln!(
            "xtask: `cargo fmt -p {name}` did not succeed; the service is generated, format it before committing"
        );
    }
    Ok(ExitCode::SUCCESS)
}
