//! The `reminder` binary: config → telemetry → app → probes served → migrations, outbox table, topics →
//! consume, schedule and relay until a signal → drain → flush.

use std::process::ExitCode;

use anyhow::Context as _;
use observability::{Shutdown, TelemetryGuard};
use reminder::SERVICE;
use reminder::app::App;
use reminder::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    observability::process::main(SERVICE, |env| Config::from_env(env, SERVICE), |config| &config.telemetry, run).await
}

async fn run(config: &Config, telemetry: &TelemetryGuard) -> anyhow::Result<()> {
    let app = App::build(config, telemetry.metrics()).context("cannot build the service")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = Shutdown::on_signals(app.health().clone());
    let http = config.http.clone();
    let router = app.router();
    let probes = shutdown.clone();
    let server = tokio::spawn(async move { observability::serve(listener, router, probes, &http).await });

    let worked = match app.prepare(config).await {
        Ok(()) => {
            app.health().mark_started();
            app.run(config, shutdown.clone()).await
        }
        Err(error) => Err(error),
    };

    // The workers return once shutdown was requested, or when they could not start: stop serving either way.
    shutdown.trigger();
    server.await.context("HTTP server task failed")?.context("HTTP server failed")?;
    worked.context("reminder failed")?;
    Ok(())
}
