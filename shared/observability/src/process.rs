//! The life of a service process, the same for every Taskwatch binary: read the configuration (a bad one exits
//! with [`EXIT_CONFIG`] and a message naming every offending variable), initialise telemetry, run the service,
//! log how it ended, flush telemetry, and turn the outcome into the exit code.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use observability::config::{ConfigError, Env};
//! use observability::telemetry::TelemetrySettings;
//! use observability::{ServiceInfo, TelemetryGuard};
//!
//! const SERVICE: ServiceInfo = ServiceInfo { name: "example", version: "0.1.0" };
//!
//! struct Config { telemetry: TelemetrySettings }
//!
//! fn load(env: Env) -> Result<Config, ConfigError> {
//!     env.load(|env| Some(Config { telemetry: TelemetrySettings::from_env(env, SERVICE) }))
//! }
//!
//! async fn run(config: &Config, telemetry: &TelemetryGuard) -> Result<(), std::io::Error> {
//!     let _ = (config, telemetry); // serve until a signal, then drain
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     observability::process::main(SERVICE, load, |config| &config.telemetry, run).await
//! }
//! ```

use std::fmt::Display;
use std::process::ExitCode;

use crate::config::{ConfigError, Env};
use crate::telemetry::TelemetrySettings;
use crate::{ServiceInfo, TelemetryGuard};

/// Exit code for configuration errors (sysexits `EX_CONFIG`): orchestrators can tell "fix the settings" apart
/// from a crash.
pub const EXIT_CONFIG: u8 = 78;

/// Runs a service process from configuration to flushed telemetry; see the [module docs](self).
///
/// `run`'s error is logged with its whole chain (`{:#}`) before telemetry is flushed, so it reaches the log
/// pipeline; the process then exits with failure.
pub async fn main<C, E>(
    service: ServiceInfo,
    load: impl FnOnce(Env) -> Result<C, ConfigError>,
    telemetry_settings: impl FnOnce(&C) -> &TelemetrySettings,
    run: impl AsyncFnOnce(&C, &TelemetryGuard) -> Result<(), E>,
) -> ExitCode
where
    E: Display,
{
    let config = match load(Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let telemetry = match crate::telemetry::init_with(telemetry_settings(&config), std::io::stdout) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("cannot initialise telemetry: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let outcome = run(&config, &telemetry).await;
    match &outcome {
        Ok(()) => tracing::info!("{} stopped", service.name),
        Err(error) => tracing::error!(error = format!("{error:#}"), "{} stopped with an error", service.name),
    }
    telemetry.shutdown().await;
    if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
