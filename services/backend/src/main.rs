//! The backend binary: `serve` (default) runs the API — config → telemetry → migrations → API, relay and
//! chores until a signal → drain → flush, the same process life as every service (`observability::process`);
//! `token` mints a development token; `healthcheck` is the container health check.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use backend::SERVICE;
use backend::config::{AuthConfig, Config};
use backend::store::migrate;
use clap::{Parser, Subcommand};
use observability::config::{DurationValue, Env};
use observability::process::EXIT_CONFIG;
use observability::{Shutdown, TelemetryGuard};

#[derive(Debug, Parser)]
#[command(name = "backend", version, about = "Taskwatch task API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (the default).
    Serve,
    /// Print a development token signed with AUTH_JWT_SECRET (and AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE if set).
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// How long the token stays valid, e.g. 30m, 24h.
        #[arg(long, default_value = "24h")]
        ttl: DurationValue,
    },
    /// Container health check: exit 0 when `GET 127.0.0.1:$PORT/health/ready` answers 2xx, else 1.
    /// Loads no configuration, so it works in an image without a shell.
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            observability::process::main(SERVICE, Config::from_env, |config| &config.telemetry, serve).await
        }
        Command::Token { sub, ttl } => print_token(&sub, ttl.get()),
        Command::Healthcheck => observability::process::healthcheck(),
    }
}

fn print_token(subject: &str, ttl: Duration) -> ExitCode {
    let config = match AuthConfig::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match backend::auth::mint(&config, subject, ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot mint token: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Migrations first: the API is only served over the schema it was written for.
async fn serve(config: &Config, telemetry: &TelemetryGuard) -> anyhow::Result<()> {
    database::migrate(&config.database, migrate::SCHEMA, migrate::migrator())
        .await
        .context("database migrations failed")?;
    let pool = database::connect(&config.database, SERVICE.name);
    let app = backend::app::build(config, pool.clone(), telemetry.metrics());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = Shutdown::on_signals(app.health().clone());
    let mut chores = app.spawn_background(shutdown.token());
    match &config.outbox_relay {
        Some(relay) => {
            let relay = backend::relay::new(pool.clone(), relay.clone()).context("cannot create the Kafka producer")?;
            chores.spawn(relay.run(shutdown.token()));
        }
        None => tracing::warn!("outbox relay disabled (OUTBOX_RELAY_ENABLED=false or KAFKA_BROKERS unset)"),
    }
    app.health().mark_started();

    observability::serve(listener, app.router(), shutdown.clone(), &config.http).await.context("HTTP server failed")?;

    shutdown.trigger();
    while chores.join_next().await.is_some() {}
    pool.close().await;
    Ok(())
}
