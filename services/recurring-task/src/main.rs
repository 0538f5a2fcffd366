//! The `recurring-task` binary: config → telemetry → app → probes served → topics → consume until a signal →
//! drain → flush.

use std::process::ExitCode;

use anyhow::Context as _;
use observability::{Shutdown, TelemetryGuard};
use recurring_task::SERVICE;
use recurring_task::app::App;
use recurring_task::config::Config;
use recurring_task::consumer;

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

    let consumed = match consumer::ensure_topics(&config.kafka, config.startup_timeout).await {
        Ok(()) => {
            app.health().mark_started();
            consumer::run(&config.kafka, app.handler().clone(), shutdown.clone()).await
        }
        Err(error) => Err(error),
    };

    // The consumer returns once shutdown was requested, or when it could not start: stop serving either way.
    shutdown.trigger();
    server.await.context("HTTP server task failed")?.context("HTTP server failed")?;
    consumed.context("consumer failed")?;
    Ok(())
}
