//! The one life of every Taskwatch service. A service describes itself as a [`Service`] (its routes, readiness
//! checks, start-up steps and workers) and this crate runs it, in `main` and in tests alike:
//!
//! ```text
//! main:  runtime::main(SERVICE, Config::from_env, app::build)
//! tests: app::build(&config, metrics)?.bind().await?.run_until_stopped(shutdown).await
//! ```
//!
//! # Start-up and shutdown, the same order for every service
//!
//! 1. **Configuration**: every variable read and validated at once ([`BaseConfig`] plus the service's own); a bad
//!    one exits with 78 (`EX_CONFIG`) and one report naming every offending variable.
//! 2. **Telemetry**: JSON logs, traces, the metrics recorder.
//! 3. **Build**, without I/O: pools connect lazily and producers in the background, so this succeeds while
//!    Postgres or the broker are still starting.
//! 4. **Bind and serve**: `/health/*`, `/metrics`, `/admin/faults` and the service's routes. `/health/startup`
//!    and `/health/ready` answer 503, and the service's routes 503 problem+json, until step 6. Readiness checks
//!    are sampled every 10 s from here on, so their gauges do not depend on a probe.
//! 5. **Start-up steps**, in order, each bounded by its own timeout: migrations (`DATABASE_STARTUP_TIMEOUT`),
//!    tables, Kafka topics (`STARTUP_TIMEOUT`). One that fails stops the process with an error; a signal
//!    meanwhile abandons them.
//! 6. **Started**: `/health/startup` turns 200 and the workers start (consumer, relay, scheduler, samplers).
//! 7. **Run** until SIGTERM/SIGINT, or until a worker fails or returns on its own (then the others are stopped
//!    and the process exits with failure, so the orchestrator restarts it).
//! 8. **Stop**: readiness turns 503 first, the listener stops accepting, in-flight requests drain (at most
//!    `HTTP_DRAIN_TIMEOUT`), every worker finishes what it has in flight, pools close, telemetry flushes.

mod config;
mod service;

use std::process::ExitCode;

use observability::config::{ConfigError, Env};
use observability::metrics::PrometheusHandle;
use observability::{ServiceInfo, Shutdown};

pub use crate::config::{BaseConfig, DEFAULT_STARTUP_TIMEOUT, startup_timeout};
pub use crate::service::{Bound, BoxError, RunError, Service, WorkerOutcome};

/// The whole process of a service: reads its configuration with `load`, initialises telemetry, assembles the
/// service with `build`, then binds and runs it until a signal (see the [crate documentation](crate)).
/// `SERVICE healthcheck` is the container health check instead ([`observability::process::healthcheck`]).
pub async fn main<C, E>(
    info: ServiceInfo,
    load: impl FnOnce(Env) -> Result<C, ConfigError>,
    build: impl FnOnce(&C, PrometheusHandle) -> Result<Service, E>,
) -> ExitCode
where
    C: AsRef<BaseConfig>,
    E: Into<BoxError>,
{
    observability::process::main(
        info,
        load,
        |config| &config.as_ref().telemetry,
        async |config, telemetry| {
            let service = build(config, telemetry.metrics()).map_err(|error| RunError::Build(error.into()))?;
            service.bind().await?.run_until_stopped(Shutdown::on_signals()).await
        },
    )
    .await
}
