//! Everything a Taskwatch service needs to be run and observed.
//!
//! | Piece | Module | What it gives a service |
//! |---|---|---|
//! | Config | [`config`] | typed env vars; one error naming every bad or missing variable; [`Secret`] |
//! | Telemetry | [`telemetry`], [`json_log`], [`otel`], [`metrics`], [`exemplars`] | JSON logs with `trace_id`/`span_id`/`request_id`, OTLP traces, `/metrics` in Prometheus text or OpenMetrics with trace-id exemplars, process resources |
//! | Redaction | [`redact`] | secrets and e-mail addresses never reach a log line |
//! | HTTP server | [`http`] | request ids, server spans, RED metrics, body limit, timeout, panic → problem+json, graceful drain |
//! | Health | [`health`] | `/health/live`, `/health/ready` (checks with timeouts, cached), `/health/startup` |
//! | Shutdown | [`shutdown`] | SIGTERM/SIGINT → not ready → stop accepting → drain → flush |
//! | Client | [`client`] | circuit-broken service-to-service HTTP with retries, trace propagation, fallback cache |
//! | Errors | [`problem`] | RFC 9457 problem+json |
//! | Faults | [`faults`] | demo fault switches (`/admin/faults`): latency, errors, outages, slow or stuck consumers; off by default, refused in production |
//!
//! Metric names live in [`metric_names`], one documented list.
//!
//! # Environment variables read by this crate
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `RUST_LOG` | `info` | log filter (`tracing-subscriber` `EnvFilter` syntax) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP base URL; `/v1/traces` is appended. Unset: no export |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | unset | full traces URL, used verbatim; wins over the base |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | only `http/protobuf` is supported |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` | unset | passed to the exporter |
//! | `OTEL_SERVICE_NAME` | the service's name | `service.name` resource attribute and log `service` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | unset | `key=value,...` (percent-encoded values) |
//! | `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` | `parentbased_always_on` / `1.0` | sampler and ratio |
//! | `OTEL_TRACES_EXPORTER` | `otlp` | `none` turns export off |
//! | `OTEL_SDK_DISABLED` | `false` | `true` turns export off (spans still get ids for log correlation) |
//! | `SENTRY_DSN` | unset | Sentry-compatible error reports ([`error_reporting`]); unset: none are sent |
//! | `HTTP_REQUEST_TIMEOUT` | `10s` | per-request deadline → 504 ([`HttpConfig::from_env`]) |
//! | `HTTP_BODY_LIMIT_BYTES` | `65536` | larger bodies → 413 |
//! | `HTTP_DRAIN_TIMEOUT` | `20s` | bound on draining in-flight requests at shutdown |
//! | `FAULT_INJECTION_ENABLED`, `DEPLOYMENT_ENVIRONMENT`, `FAULT_ADMIN_TOKEN`, `FAULT_SCHEDULE` | off | demo fault switches ([`faults`]) |
//!
//! # Wiring a service
//!
//! Taskwatch's services do not wire this by hand: the `runtime` crate runs every one of them in one order (probes
//! served before the start-up steps, workers after, readiness off before the drain). What it does with these
//! pieces, by hand:
//!
//! `main` reads like a table of contents: config (telemetry settings included, so one report names
//! every bad variable) → telemetry → health → router → instrument → serve until a signal → drain →
//! flush.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::Router;
//! use axum::routing::get;
//! use observability::telemetry::{TelemetrySettings, init_stdout};
//! use observability::{Env, Health, HttpConfig, Secret, ServiceInfo, Shutdown};
//!
//! const SERVICE: ServiceInfo = ServiceInfo { name: "backend", version: env!("CARGO_PKG_VERSION") };
//!
//! struct Config {
//!     telemetry: TelemetrySettings,
//!     http: HttpConfig,
//!     port: u16,
//!     database_url: Secret,
//! }
//!
//! impl Config {
//!     fn from_env() -> Result<Self, observability::ConfigError> {
//!         Env::from_process().load(|env| {
//!             let telemetry = TelemetrySettings::from_env(env, SERVICE);
//!             let http = HttpConfig::from_env(env);
//!             let port = env.with_default("PORT", 8080u16);
//!             let database_url = env.required::<Secret>("DATABASE_URL");
//!             Some(Config { telemetry, http, port, database_url: database_url? })
//!         })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = match Config::from_env() {
//!         Ok(config) => config,
//!         Err(error) => {
//!             eprintln!("{error}"); // names every bad or missing variable
//!             std::process::exit(observability::process::EXIT_CONFIG.into());
//!         }
//!     };
//!     let telemetry = init_stdout(&config.telemetry)?;
//!
//!     // let pool = connect(config.database_url.expose()).await?;
//!     let health = Health::new().with_check("postgres", Duration::from_secs(1), || async {
//!         Ok(()) // e.g. `sqlx::query("SELECT 1").execute(&pool).await.map(drop).map_err(|e| e.to_string())`
//!     });
//!     let shutdown = Shutdown::on_signals();
//!
//!     let router = Router::new()
//!         .route("/v1/hello", get(|| async { "hello" }))
//!         .merge(health.router())
//!         .merge(observability::metrics::router(telemetry.metrics()));
//!     let router = observability::instrument(router, &config.http);
//!
//!     let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
//!     health.mark_started();
//!     observability::serve(listener, router, shutdown.clone(), &config.http).await?;
//!
//!     // Workers watching `shutdown.requested()` finish here; then flush buffered spans.
//!     telemetry.shutdown().await;
//!     Ok(())
//! }
//! ```

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod address;
pub mod backoff;
pub mod breaker;
pub mod client;
pub mod config;
pub mod edge_sampling;
pub mod error_chain;
pub mod error_reporting;
pub mod exemplars;
pub mod faults;
pub mod health;
pub mod http;
pub mod json_log;
pub mod metric_names;
pub mod metrics;
pub mod otel;
pub mod problem;
pub mod process;
pub mod redact;
pub mod service_token;
pub mod shutdown;
pub mod telemetry;
pub mod trace_headers;

pub use backoff::{Backoff, Delays, InvalidBackoff};
pub use client::{BreakerState, ClientConfig, ClientError, ServiceClient};
pub use config::{ConfigError, DurationValue, Env, Secret};
pub use error_chain::{ErrorChain, error_chain, record_exception};
pub use health::{CheckFuture, Health};
pub use http::{HttpConfig, RequestId, instrument, serve};
pub use problem::{FieldError, PROBLEM_TYPE_PREFIX, Problem, ProblemType};
pub use service_token::ServiceToken;
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryError, TelemetryGuard, init};

/// Who is emitting telemetry: stamped on every log line, span and metric scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The built-in service name, e.g. `backend`; `OTEL_SERVICE_NAME` may override it in telemetry.
    pub name: &'static str,
    /// The build's version, usually `env!("CARGO_PKG_VERSION")`; exported as `service.version`.
    pub version: &'static str,
}
