//! The `notification` binary: config → telemetry → migrations → app → probes served → topics → deliver and
//! consume until a signal → drain → flush.

use std::process::ExitCode;

use anyhow::Context as _;
use notification::app::App;
use notification::channel::guard::TargetPolicy;
use notification::config::Config;
use notification::store::SCHEMA;
use notification::{SERVICE, consumer};
use observability::{Shutdown, TelemetryGuard};

#[tokio::main]
async fn main() -> ExitCode {
    observability::process::main(SERVICE, |env| Config::from_env(env, SERVICE), |config| &config.telemetry, run).await
}

async fn run(config: &Config, telemetry: &TelemetryGuard) -> anyhow::Result<()> {
    if config.webhook.targets == TargetPolicy::AllowPrivate {
        tracing::warn!(
            "WEBHOOK_ALLOW_PRIVATE_TARGETS=true: webhooks may reach loopback and private networks (development only)"
        );
    }
    database::migrate(&config.database, SCHEMA, notification::migrator())
        .await
        .context("database migrations failed")?;
    let pool = database::connect(&config.database, SERVICE.name);
    let app = App::build(config, pool.clone(), telemetry.metrics()).context("cannot build the service")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = Shutdown::on_signals(app.health().clone());
    let http = config.http.clone();
    let router = app.router();
    let probes = shutdown.clone();
    let server = tokio::spawn(async move { observability::serve(listener, router, probes, &http).await });
    let pool_gauges = tokio::spawn(database::metrics::sample_pool(
        pool.clone(),
        SERVICE.name,
        database::metrics::POOL_SAMPLE_INTERVAL,
        shutdown.token(),
    ));
    let worker = tokio::spawn(app.worker().clone().run(shutdown.clone()));

    let consumed = match consumer::ensure_topics(&config.kafka, config.startup_timeout).await {
        Ok(()) => {
            app.health().mark_started();
            consumer::run(&config.kafka, app.intake().clone(), shutdown.clone()).await
        }
        Err(error) => Err(error),
    };

    // The consumer returns once shutdown was requested, or when it could not start: stop everything either way.
    shutdown.trigger();
    worker.await.context("delivery worker failed")?;
    let _ = pool_gauges.await;
    server.await.context("HTTP server task failed")?.context("HTTP server failed")?;
    consumed.context("consumer failed")?;
    pool.close().await;
    Ok(())
}
