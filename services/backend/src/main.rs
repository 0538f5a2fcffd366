//! The backend binary: `serve` (default) runs the API with the runtime's one process life (`runtime` crate docs)
//! around [`backend::app::build`]; `token` mints a development token; `healthcheck` is the container health check.

use std::process::ExitCode;
use std::time::Duration;

use backend::SERVICE;
use backend::config::{AuthConfig, Config};
use clap::{Parser, Subcommand};
use observability::config::{DurationValue, Env};
use observability::process::EXIT_CONFIG;

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
        Command::Serve => runtime::main(SERVICE, Config::from_env, backend::app::build).await,
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
