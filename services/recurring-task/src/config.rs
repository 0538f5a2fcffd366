//! The service's configuration: environment variables only, validated at start-up with one report naming every
//! bad or missing variable. `README.md` documents each variable.

use std::time::Duration;

use messaging::KafkaConfig;
use observability::config::{ConfigError, Env, Secret};
use observability::{ClientConfig, ServiceInfo};
use runtime::BaseConfig;

/// The port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8082;

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*`, `FAULT_*` (`/admin/faults` takes `INTERNAL_SERVICE_TOKEN`
    /// unless `FAULT_ADMIN_TOKEN` is set).
    pub base: BaseConfig,
    /// The backend's internal API.
    pub backend: BackendConfig,
    /// `KAFKA_*`.
    pub kafka: KafkaConfig,
    /// How long start-up waits for the broker (to create missing topics) before giving up.
    pub startup_timeout: Duration,
}

impl AsRef<BaseConfig> for Config {
    fn as_ref(&self) -> &BaseConfig {
        &self.base
    }
}

/// How to reach the backend's internal API.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `BACKEND_URL` and the client's limits (`BACKEND_*`).
    pub client: ClientConfig,
    /// The backend's `INTERNAL_SERVICE_TOKEN`.
    pub service_token: Secret,
}

impl Config {
    /// Reads and validates every variable; the error names each bad or missing one.
    pub fn from_env(env: Env, service: ServiceInfo) -> Result<Self, ConfigError> {
        env.load(|env| {
            let mut base = BaseConfig::from_env(env, service, DEFAULT_PORT);
            let backend = read_backend(env);
            let kafka = KafkaConfig::from_env(env, service);
            let startup_timeout = runtime::startup_timeout(env);
            // `/admin/faults` takes INTERNAL_SERVICE_TOKEN unless FAULT_ADMIN_TOKEN is set.
            base.faults = base.faults.with_fallback_token(backend.as_ref().map(|backend| &backend.service_token));
            Some(Config { base, backend: backend?, kafka: kafka?, startup_timeout })
        })
    }
}

fn read_backend(env: &mut Env) -> Option<BackendConfig> {
    let client = ClientConfig::from_env(env, "backend", "BACKEND");
    let service_token = env.required::<Secret>("INTERNAL_SERVICE_TOKEN");
    Some(BackendConfig { client: client?, service_token: service_token? })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "recurring-task", version: "test" };

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_env(
            env(&[
                ("BACKEND_URL", "http://backend:8080"),
                ("INTERNAL_SERVICE_TOKEN", "s3cret"),
                ("KAFKA_BROKERS", "kafka:9092"),
            ]),
            SERVICE,
        )
        .expect("valid config");
        assert_eq!(config.base.listen.port(), DEFAULT_PORT);
        assert_eq!(config.backend.client.downstream, "backend");
        assert_eq!(config.backend.client.timeout, Duration::from_secs(2));
        assert_eq!(config.backend.client.failure_threshold, 5);
        assert_eq!(config.backend.service_token.expose(), "s3cret");
        assert_eq!(config.kafka.group_id, "recurring-task");
        assert_eq!(config.startup_timeout, Duration::from_secs(60));
        assert_eq!(config.base.readiness_timeout, Duration::from_secs(2));
    }

    #[test]
    fn one_report_names_every_bad_or_missing_variable() {
        let error = Config::from_env(
            env(&[("BACKEND_TIMEOUT", "0s"), ("BACKEND_BREAKER_FAILURE_THRESHOLD", "0"), ("PORT", "http")]),
            SERVICE,
        )
        .expect_err("invalid config")
        .to_string();
        for name in
            ["BACKEND_URL", "INTERNAL_SERVICE_TOKEN", "BACKEND_TIMEOUT", "BACKEND_BREAKER_FAILURE_THRESHOLD", "PORT"]
        {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let config = Config::from_env(
            env(&[
                ("BACKEND_URL", "http://backend:8080"),
                ("INTERNAL_SERVICE_TOKEN", "s3cret-value"),
                ("KAFKA_BROKERS", "kafka:9092"),
            ]),
            SERVICE,
        )
        .expect("valid config");
        assert!(!format!("{config:?}").contains("s3cret-value"));
    }
}
