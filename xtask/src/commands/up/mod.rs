//! `cargo xtask up`: the whole system running locally, for trying it by hand.
//!
//! Builds the four services, starts a throwaway Postgres, a tansu broker and an SMTP sink that keeps every mail
//! as a `.eml` file, starts each service in order and waits until it accepts connections, then Prometheus and
//! Alertmanager with the repo's monitoring configs ([`monitoring`]), prints where everything is with a freshly
//! minted dev token, then streams the logs until Ctrl-C, when it stops everything it
//! started (services first). Which process gets which setting is [`stack`].

mod monitoring;
mod stack;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use testkit::kafka::Broker;
use testkit::postgres::PostgresServer;
use testkit::smtp::SmtpSink;

use self::stack::{Service, StackSettings};
use crate::dev_credentials::{self, random_secret};
use crate::interrupt::Interrupt;
use crate::supervisor::{Stopped, Supervisor};
use crate::{cargo, provision};

/// Where the SMTP sink listens: the port every mail-catcher uses, so mail clients' presets work.
const SMTP_PORT: u16 = 2525;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port of the backend API on 127.0.0.1; reminder, recurring-task and notification take the next three.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// User id (`sub`) of the printed development token.
    #[arg(long, default_value = "alice")]
    user: String,
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    // The broker is built (once) before anything starts; testkit finds it where the script put it.
    provision::ensure(provision::Profile::Up, &mut interrupt).await?;
    eprintln!("xtask: building the workspace (the same build `cargo xtask test` makes, so one serves both)…");
    let packages: Vec<&str> = Service::ALL.iter().map(|service| service.name()).collect();
    let mut built = cargo::build_binaries(&packages, &mut interrupt).await?;
    let binaries = Service::ALL
        .iter()
        .copied()
        .map(|service| Ok((service, built.remove(service.name()).context("built above")?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let postgres = PostgresServer::start().await.context("starting the throwaway Postgres")?;
    let broker = Broker::start().await.context("starting the tansu broker")?;
    // Everything this run keeps on disk: mail, Prometheus' and Alertmanager's data. A fresh stack starts empty
    // (the sink numbers its mail files from 1 again).
    let state_dir = cargo::workspace_root().join("target/taskwatch-up");
    match std::fs::remove_dir_all(&state_dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("emptying {}", state_dir.display()));
        }
        _ => {}
    }
    let mail_dir = state_dir.join("mail");
    let smtp = SmtpSink::start_on(SMTP_PORT, Some(mail_dir.clone()))
        .await
        .with_context(|| format!("starting the SMTP sink on 127.0.0.1:{SMTP_PORT}"))?;
    let settings = StackSettings {
        binaries,
        backend_port: args.port,
        database_url: postgres.url().to_owned(),
        kafka_brokers: broker.bootstrap(),
        smtp_address: smtp.address(),
        jwt_secret: secret_from_env_or_random("AUTH_JWT_SECRET")?,
        internal_service_token: random_secret()?,
        webhook_signing_secret: secret_from_env_or_random("WEBHOOK_SIGNING_SECRET")?,
    };
    let token = mint_token(&settings, &args.user).await?;

    let mut supervisor = Supervisor::new();
    let outcome = run_stack(&settings, &mut supervisor, &mut interrupt, &token, &args.user, &state_dir).await;
    supervisor.stop_all().await;
    drop(smtp);
    drop(broker);
    eprintln!("xtask: broker and SMTP sink stopped");
    drop(postgres);
    eprintln!("xtask: Postgres stopped");
    outcome
}

async fn run_stack(
    settings: &StackSettings,
    supervisor: &mut Supervisor,
    interrupt: &mut Interrupt,
    token: &str,
    user: &str,
    state_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let monitoring = monitoring::processes(settings, cargo::workspace_root(), state_dir)?;
    for process in settings.processes().into_iter().chain(monitoring) {
        eprintln!("xtask: starting {}…", process.name);
        supervisor.start(process, interrupt).await?;
    }
    print_banner(settings, token, user, &state_dir.join("mail"));
    Ok(match supervisor.watch(interrupt).await {
        Stopped::Interrupted => ExitCode::SUCCESS,
        Stopped::Exited { name, status } => {
            eprintln!("xtask: {name} exited unexpectedly ({status}); stopping the rest");
            ExitCode::FAILURE
        }
    })
}

fn print_banner(settings: &StackSettings, token: &str, user: &str, mail_dir: &Path) {
    let api = format!("http://{}", settings.address(Service::Backend));
    let probes: String = Service::ALL
        .iter()
        .copied()
        .map(|service| {
            let base = format!("http://{}", settings.address(service));
            format!("\n  {:<15} {base}/metrics  {base}/health/ready", service.name())
        })
        .collect();
    println!(
        "\n\
         Taskwatch is running (Ctrl-C stops everything):\n\
         \n  API            {api}/v1/tasks\
         \n  Docs           {api}/docs\
         \n  OpenAPI        {api}/openapi.json\
         \n{probes}\
         \n\
         \n  Postgres       {database}\
         \n  Kafka          {brokers} (topics task-events, reminders, notifications.dlq)\
         \n  SMTP sink      {smtp}, every mail saved as a file in {mail}\
         \n  Prometheus     http://{prometheus}/alerts (the repo's rules and SLOs)\
         \n  Alertmanager   http://{alertmanager} (the demo routing: alerts arrive as mails in the SMTP sink)\
         \n\
         \n  Dev token for user `{user}` (valid 24h):\
         \n  export TOKEN={token}\
         \n  curl -H \"Authorization: Bearer $TOKEN\" {api}/v1/tasks\
         \n  Reminders go to the e-mail / webhook saved with PUT {api}/v1/me/notification-settings\
         \n  (webhooks to http://127.0.0.1 are allowed in this development stack).\n",
        database = settings.database_url,
        brokers = settings.kafka_brokers,
        smtp = settings.smtp_address,
        mail = mail_dir.display(),
        prometheus = monitoring::PROMETHEUS_ADDRESS,
        alertmanager = monitoring::ALERTMANAGER_ADDRESS,
    );
}

/// Mints a development token with the backend's own `token` command and the stack's secret.
async fn mint_token(settings: &StackSettings, user: &str) -> anyhow::Result<String> {
    let backend = settings.binary(Service::Backend).context("the backend was not built")?;
    dev_credentials::mint_token(backend, settings.env(Service::Backend), user).await
}

/// A secret from the environment if set (so tokens and signatures stay valid across restarts), else random.
fn secret_from_env_or_random(name: &str) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(secret) if !secret.is_empty() => Ok(secret),
        _ => random_secret(),
    }
}
