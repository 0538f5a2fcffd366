//! The service's configuration: environment variables only, validated at start-up with one report naming every
//! bad or missing variable. `README.md` documents each variable.

use std::time::Duration;

use database::DatabaseConfig;
use messaging::KafkaConfig;
use observability::config::{ConfigError, DurationValue, Env};
use observability::{Secret, ServiceInfo};
use runtime::BaseConfig;

use crate::retention::Retention;

/// The port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8084;

/// How long records are kept when `AUDIT_RETENTION` is unset: a year and a month, so a yearly review still finds
/// the whole year.
const DEFAULT_RETENTION: DurationValue = DurationValue::from_secs(395 * 24 * 3600);
/// The shortest retention accepted: less would delete what the history was just asked for.
const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often expired records are looked for when `AUDIT_RETENTION_INTERVAL` is unset.
const DEFAULT_RETENTION_INTERVAL: DurationValue = DurationValue::from_secs(3600);

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*`, `FAULT_*` (no internal token here: set `FAULT_ADMIN_TOKEN`
    /// to protect `/admin/faults`).
    pub base: BaseConfig,
    /// `DATABASE_*` and `READINESS_CHECK_TIMEOUT`.
    pub database: DatabaseConfig,
    /// `KAFKA_*`.
    pub kafka: KafkaConfig,
    /// How long start-up waits for the broker (to create missing topics) before giving up.
    pub startup_timeout: Duration,
    /// `INTERNAL_SERVICE_TOKEN`: what callers of the internal API present; unset refuses every call.
    pub internal_service_token: Option<Secret>,
    /// `AUDIT_RETENTION` and `AUDIT_RETENTION_INTERVAL`.
    pub retention: Retention,
}

impl AsRef<BaseConfig> for Config {
    fn as_ref(&self) -> &BaseConfig {
        &self.base
    }
}

impl Config {
    /// Reads and validates every variable; the error names each bad or missing one.
    pub fn from_env(env: Env, service: ServiceInfo) -> Result<Self, ConfigError> {
        env.load(|env| {
            let base = BaseConfig::from_env(env, service, DEFAULT_PORT);
            let database = DatabaseConfig::from_env(env);
            let kafka = KafkaConfig::from_env(env, service);
            let startup_timeout = runtime::startup_timeout(env);
            let internal_service_token = observability::service_token::internal_service_token(env);
            let keep_for = env.with_default("AUDIT_RETENTION", DEFAULT_RETENTION).get();
            if keep_for < MIN_RETENTION {
                env.invalid("AUDIT_RETENTION", "must be at least 1 day");
            }
            let interval = env.with_default("AUDIT_RETENTION_INTERVAL", DEFAULT_RETENTION_INTERVAL).get();
            if interval.is_zero() {
                env.invalid("AUDIT_RETENTION_INTERVAL", "must be above zero");
            }
            Some(Config {
                base,
                database: database?,
                kafka: kafka?,
                startup_timeout,
                internal_service_token,
                retention: Retention { keep_for, interval },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "audit-log", version: "test" };

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_env(
            env(&[("DATABASE_URL", "postgres://svc:s3cret@db:5432/taskwatch"), ("KAFKA_BROKERS", "kafka:9092")]),
            SERVICE,
        )
        .expect("valid config");
        assert_eq!(config.base.listen.port(), DEFAULT_PORT);
        assert_eq!(config.kafka.group_id, "audit-log");
        assert_eq!(config.startup_timeout, Duration::from_secs(60));
        assert!(config.internal_service_token.is_none());
        assert_eq!(config.retention.keep_for, Duration::from_secs(395 * 24 * 3600));
        assert_eq!(config.retention.interval, Duration::from_secs(3600));
    }

    #[test]
    fn one_report_names_every_bad_or_missing_variable() {
        let error = Config::from_env(
            env(&[
                ("PORT", "http"),
                ("STARTUP_TIMEOUT", "soon"),
                ("INTERNAL_SERVICE_TOKEN", "short"),
                ("AUDIT_RETENTION", "1h"),
                ("AUDIT_RETENTION_INTERVAL", "0s"),
            ]),
            SERVICE,
        )
        .expect_err("invalid config")
        .to_string();
        for name in [
            "DATABASE_URL",
            "KAFKA_BROKERS",
            "PORT",
            "STARTUP_TIMEOUT",
            "INTERNAL_SERVICE_TOKEN",
            "AUDIT_RETENTION",
            "AUDIT_RETENTION_INTERVAL",
        ] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }

    #[test]
    fn secrets_are_never_printed() {
        let config = Config::from_env(
            env(&[
                ("DATABASE_URL", "postgres://svc:s3cret-value@db:5432/taskwatch"),
                ("KAFKA_BROKERS", "kafka:9092"),
                ("INTERNAL_SERVICE_TOKEN", "service-token-value-service-token-value"),
            ]),
            SERVICE,
        )
        .expect("valid config");
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret-value") && !printed.contains("service-token-value"), "{printed}");
    }
}
