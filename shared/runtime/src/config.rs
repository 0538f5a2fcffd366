//! The settings every service reads the same way: where it listens, its HTTP limits, telemetry and fault switches.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use observability::config::{DurationValue, Env};
use observability::faults::FaultConfig;
use observability::telemetry::TelemetrySettings;
use observability::{HttpConfig, ServiceInfo};

/// How long start-up waits for the broker by default (`STARTUP_TIMEOUT`).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The default bound on each readiness check.
pub const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*` and `FAULT_*`: read by every service in the same place of
/// its one configuration report.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    /// `BIND_ADDR` (default `0.0.0.0`) and `PORT` (default: the service's own).
    pub listen: SocketAddr,
    /// `HTTP_REQUEST_TIMEOUT`, `HTTP_BODY_LIMIT_BYTES`, `HTTP_DRAIN_TIMEOUT`, each above zero.
    pub http: HttpConfig,
    /// `RUST_LOG`, `OTEL_*`.
    pub telemetry: TelemetrySettings,
    /// Demo fault switches (`FAULT_INJECTION_ENABLED`, …): off by default, refused in production.
    pub faults: FaultConfig,
    /// `READINESS_CHECK_TIMEOUT` (default [`DEFAULT_READINESS_TIMEOUT`], above zero): the bound on each readiness
    /// check (the Postgres ping, the broker's metadata request), so one stuck dependency cannot stall `/health/ready`.
    pub readiness_timeout: Duration,
}

impl BaseConfig {
    /// Reads the base variables of `service`, whose port is `default_port` unless `PORT` says otherwise,
    /// recording problems in `env`.
    pub fn from_env(env: &mut Env, service: ServiceInfo, default_port: u16) -> Self {
        let bind_addr = env.with_default("BIND_ADDR", IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = env.with_default("PORT", default_port);
        let readiness_timeout =
            env.with_default("READINESS_CHECK_TIMEOUT", DurationValue::new(DEFAULT_READINESS_TIMEOUT)).get();
        if readiness_timeout.is_zero() {
            env.invalid("READINESS_CHECK_TIMEOUT", "must be above zero");
        }
        Self {
            listen: SocketAddr::new(bind_addr, port),
            http: HttpConfig::from_env(env),
            telemetry: TelemetrySettings::from_env(env, service),
            faults: FaultConfig::from_env(env),
            readiness_timeout,
        }
    }
}

/// `STARTUP_TIMEOUT` (default [`DEFAULT_STARTUP_TIMEOUT`]): how long a service that needs the broker waits at
/// start-up for it to create missing topics, above zero.
pub fn startup_timeout(env: &mut Env) -> Duration {
    let timeout = env.with_default("STARTUP_TIMEOUT", DurationValue::new(DEFAULT_STARTUP_TIMEOUT)).get();
    if timeout.is_zero() {
        env.invalid("STARTUP_TIMEOUT", "must be above zero");
    }
    timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "example", version: "test" };

    fn load(pairs: &[(&str, &str)]) -> Result<(BaseConfig, Duration), observability::ConfigError> {
        let env = Env::from_pairs(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        env.load(|env| Some((BaseConfig::from_env(env, SERVICE, 8090), startup_timeout(env))))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let (base, startup) = load(&[]).expect("defaults are valid");
        assert_eq!(base.listen, "0.0.0.0:8090".parse().expect("address"));
        assert_eq!(base.http, HttpConfig::default());
        assert_eq!(base.http.body_limit_bytes, 65536);
        assert_eq!(startup, Duration::from_secs(60));
        assert_eq!(base.readiness_timeout, Duration::from_secs(2));
        assert!(!base.faults.enabled);
    }

    #[test]
    fn zero_limits_are_refused_and_named() {
        let error = load(&[
            ("HTTP_REQUEST_TIMEOUT", "0s"),
            ("HTTP_BODY_LIMIT_BYTES", "0"),
            ("STARTUP_TIMEOUT", "0s"),
            ("READINESS_CHECK_TIMEOUT", "0s"),
            ("PORT", "http"),
        ])
        .expect_err("invalid");
        let names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        for name in
            ["HTTP_REQUEST_TIMEOUT", "HTTP_BODY_LIMIT_BYTES", "STARTUP_TIMEOUT", "READINESS_CHECK_TIMEOUT", "PORT"]
        {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
}
