//! The backend under test: its release binary in one of three telemetry modes, with rate limiting off and its
//! logs in a file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use testkit::services::{PRODUCTION_TRACES_SAMPLER, PRODUCTION_TRACES_SAMPLER_RATIO};
use tokio::process::Command;

use super::server::RunningServer;
use crate::interrupt::Interrupt;

/// The backend's pool size, set explicitly so pgbench can be given the same number of connections.
pub const DATABASE_CONNECTIONS: u32 = 10;

/// How much the backend reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Telemetry {
    /// `RUST_LOG=off` and no trace exporter. (Metrics are still recorded in memory: the backend has no switch
    /// for its recorder; nothing scrapes them.)
    Off,
    /// The shipped production defaults: JSON logs at `info`, the chart's sampler (`parentbased_traceidratio` at
    /// [`PRODUCTION_TRACES_SAMPLER_RATIO`]) exporting over OTLP/HTTP to `otlp_endpoint`, `/metrics` scraped (by the sink).
    Production { otlp_endpoint: String },
    /// As [`Telemetry::Production`], but every request traced and exported (`parentbased_always_on`).
    Traced { otlp_endpoint: String },
}

#[derive(Debug, Clone)]
pub struct BackendSpec<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub jwt_secret: &'a str,
    pub address: SocketAddr,
    pub telemetry: Telemetry,
    /// Receives stdout (the JSON log lines); stderr goes beside it with the extension `.stderr`.
    pub log_path: PathBuf,
}

/// Starts the backend in `spec`'s mode and waits until it accepts connections, which it does only after its
/// migrations.
pub async fn start(spec: BackendSpec<'_>, interrupt: &mut Interrupt) -> anyhow::Result<RunningServer> {
    let mut command = Command::new(spec.binary);
    command.arg("serve");
    // The caller's own RUST_LOG / OTEL_* settings must not leak into any mode.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|name| name == "RUST_LOG" || name.starts_with("OTEL_")) {
            command.env_remove(name);
        }
    }
    command.envs(environment(&spec));
    RunningServer::start("backend", command, spec.address, &spec.log_path, interrupt).await
}

fn environment(spec: &BackendSpec<'_>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", spec.database_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS", DATABASE_CONNECTIONS.to_string()),
        ("AUTH_JWT_SECRET", spec.jwt_secret.to_owned()),
        ("BIND_ADDR", spec.address.ip().to_string()),
        ("PORT", spec.address.port().to_string()),
        // The closed-loop scenarios exist to find the ceiling; a limiter would cap them first.
        ("RATE_LIMIT_ENABLED", "false".to_owned()),
    ];
    let (otlp_endpoint, sampler, ratio) = match &spec.telemetry {
        Telemetry::Off => {
            env.push(("RUST_LOG", "off".to_owned()));
            return env;
        }
        Telemetry::Production { otlp_endpoint } => {
            (otlp_endpoint, PRODUCTION_TRACES_SAMPLER, Some(PRODUCTION_TRACES_SAMPLER_RATIO))
        }
        Telemetry::Traced { otlp_endpoint } => (otlp_endpoint, "parentbased_always_on", None),
    };
    env.extend([
        ("RUST_LOG", "info".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint.clone()),
        ("OTEL_TRACES_SAMPLER", sampler.to_owned()),
    ]);
    if let Some(ratio) = ratio {
        env.push(("OTEL_TRACES_SAMPLER_ARG", ratio.to_owned()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production mode must be what the chart ships, or its figures describe nothing anyone runs.
    #[test]
    fn production_telemetry_is_the_charts_default_sampler() {
        let path = crate::cargo::workspace_root().join("helm/taskwatch/values.yaml");
        let text = std::fs::read_to_string(&path).expect("the chart's values");
        let values: serde_json::Value = serde_norway::from_str(&text).expect("values.yaml is YAML");
        let sampler = &values["tracesSampler"];
        assert_eq!(sampler["name"], PRODUCTION_TRACES_SAMPLER, "{}", path.display());
        let ratio: f64 = PRODUCTION_TRACES_SAMPLER_RATIO.parse().expect("a number");
        assert_eq!(sampler["ratio"].as_f64(), Some(ratio), "{}", path.display());

        let spec = BackendSpec {
            binary: Path::new("backend"),
            database_url: "postgres://bench",
            jwt_secret: "secret",
            address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            telemetry: Telemetry::Production { otlp_endpoint: "http://127.0.0.1:4318".to_owned() },
            log_path: PathBuf::from("backend.log"),
        };
        let env = environment(&spec);
        let value = |name: &str| env.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str());
        assert_eq!(value("OTEL_TRACES_SAMPLER"), Some(PRODUCTION_TRACES_SAMPLER));
        assert_eq!(value("OTEL_TRACES_SAMPLER_ARG"), Some(PRODUCTION_TRACES_SAMPLER_RATIO));
        assert_eq!(value("RUST_LOG"), Some("info"));
    }
}
