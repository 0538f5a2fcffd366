//! The backend's configuration: environment variables only, validated at start-up with one report naming every
//! bad or missing variable. The table in `services/backend/README.md` documents each variable.

use std::num::NonZeroU32;
use std::time::Duration;

pub use database::{DatabaseConfig, DatabaseTarget};
use messaging::KafkaConfig;
use observability::config::{ConfigError, DurationValue, Env, Secret};
use observability::{ClientConfig, ServiceInfo};
pub use outbox::RelayConfig;
use runtime::BaseConfig;

use crate::domain::WebhookPolicy;
use crate::stream::StreamConfig;

/// HS256 keys shorter than the hash output weaken the signature (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8080;

/// Everything the backend reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*`, `FAULT_*` (`/admin/faults` takes the internal API's
    /// credential unless `FAULT_ADMIN_TOKEN` is set).
    pub base: BaseConfig,
    /// `DATABASE_*` and `READINESS_CHECK_TIMEOUT`.
    pub database: DatabaseConfig,
    /// `AUTH_JWT_*`.
    pub auth: AuthConfig,
    /// `RATE_LIMIT_*`.
    pub rate_limit: RateLimitConfig,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
    /// Credential of the internal API (`/internal/v1`); unset switches that API off (every call is 401).
    pub internal_service_token: Option<Secret>,
    /// The outbox relay; `None` when it is switched off (the API then only writes outbox rows).
    pub outbox_relay: Option<RelayConfig>,
    /// The live task stream (`GET /v1/tasks/stream`); `None` when it is switched off (it then answers 503).
    pub task_stream: Option<StreamConfig>,
    /// Which webhook URLs users may save (`WEBHOOK_ALLOW_PRIVATE_TARGETS`).
    pub webhook_policy: WebhookPolicy,
    /// `AUDIT_LOG_*`: where task histories are read (`GET /v1/tasks/{id}/history`); `None` when `AUDIT_LOG_URL`
    /// is unset (that route then answers 503).
    pub audit_log: Option<ClientConfig>,
}

impl AsRef<BaseConfig> for Config {
    fn as_ref(&self) -> &BaseConfig {
        &self.base
    }
}

/// How user bearer tokens (HS256 JWTs) are verified and, for development, minted.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_JWT_SECRET`: the HS256 key, at least [`MIN_JWT_SECRET_BYTES`] long; never printed.
    pub jwt_secret: Secret,
    /// When set, tokens must carry this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    pub audience: Option<String>,
}

/// A token bucket: `per_second` tokens refill each second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// The sustained rate: requests allowed per second once the saved-up tokens are spent.
    pub per_second: NonZeroU32,
    /// How many requests may arrive at once after a quiet period (the bucket's capacity).
    pub burst: NonZeroU32,
}

/// The API's request rate limits (`RATE_LIMIT_*`); a request over a quota is answered 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `false` switches both limiters off (benchmarks, trusted networks behind a gateway that limits).
    pub enabled: bool,
    /// Per authenticated user (token `sub`).
    pub per_user: RateQuota,
    /// Per client address, applied before authentication so bad tokens cannot be sprayed for free.
    pub per_client: RateQuota,
}

impl Config {
    /// Reads and validates every variable; the error names each bad or missing one.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        env.load(|env| {
            let mut base = BaseConfig::from_env(env, crate::SERVICE, DEFAULT_PORT);
            let database = DatabaseConfig::from_env(env);
            let auth = read_auth(env);
            let rate_limit = RateLimitConfig {
                enabled: env.with_default("RATE_LIMIT_ENABLED", true),
                per_user: RateQuota {
                    per_second: env.with_default("RATE_LIMIT_USER_PER_SECOND", nonzero(20)),
                    burst: env.with_default("RATE_LIMIT_USER_BURST", nonzero(40)),
                },
                per_client: RateQuota {
                    per_second: env.with_default("RATE_LIMIT_CLIENT_PER_SECOND", nonzero(100)),
                    burst: env.with_default("RATE_LIMIT_CLIENT_BURST", nonzero(200)),
                },
            };
            let idempotency_ttl = env.with_default("IDEMPOTENCY_KEY_TTL", DurationValue::from_secs(24 * 3600)).get();
            let internal_service_token = observability::service_token::internal_service_token(env);
            let (outbox_relay, task_stream) = read_kafka_users(env, crate::SERVICE);
            let webhook_policy = if env.with_default("WEBHOOK_ALLOW_PRIVATE_TARGETS", false) {
                WebhookPolicy::AllowPrivate
            } else {
                WebhookPolicy::PublicHttpsOnly
            };
            let audit_log = read_audit_log(env, internal_service_token.is_some());
            // `/admin/faults` takes the internal API's credential unless FAULT_ADMIN_TOKEN is set.
            base.faults = base.faults.with_fallback_token(internal_service_token.as_ref());
            Some(Config {
                base,
                database: database?,
                auth: auth?,
                rate_limit,
                idempotency_ttl,
                internal_service_token,
                outbox_relay: outbox_relay?,
                task_stream: task_stream?,
                webhook_policy,
                audit_log: audit_log?,
            })
        })
    }
}

/// `AUDIT_LOG_URL` and the other `AUDIT_LOG_*` client settings (see `ClientConfig::from_env`), read only when
/// `AUDIT_LOG_URL` is set; audit-log's internal API needs the service credential, so `INTERNAL_SERVICE_TOKEN`
/// must be set too. `Some(None)`: valid, no history; `None`: invalid, recorded in `env`.
fn read_audit_log(env: &mut Env, has_service_token: bool) -> Option<Option<ClientConfig>> {
    if env.raw("AUDIT_LOG_URL").is_none() {
        return Some(None);
    }
    if !has_service_token {
        env.invalid(
            "AUDIT_LOG_URL",
            "needs INTERNAL_SERVICE_TOKEN: audit-log's internal API takes the service credential",
        );
    }
    ClientConfig::from_env(env, "audit-log", "AUDIT_LOG").map(Some)
}

/// `OUTBOX_RELAY_ENABLED`: `true` needs `KAFKA_BROKERS`; `false` switches the relay off; unset means "on when
/// `KAFKA_BROKERS` is set", so an API-only setup (no broker) still starts. `Some(None)`: valid, relay off.
/// The two users of Kafka: the outbox relay (`OUTBOX_RELAY_ENABLED`) and the task stream's feed
/// (`TASK_STREAM_ENABLED`), each on by default when `KAFKA_BROKERS` is set. `Some(None)` is "off"; `None` is
/// "invalid", recorded in `env`.
type KafkaUsers = (Option<Option<RelayConfig>>, Option<Option<StreamConfig>>);

fn read_kafka_users(env: &mut Env, service: ServiceInfo) -> KafkaUsers {
    let brokers_set = env.raw("KAFKA_BROKERS").is_some();
    let relay_wanted = env.optional::<bool>("OUTBOX_RELAY_ENABLED").unwrap_or(brokers_set);
    let stream_wanted = env.optional::<bool>("TASK_STREAM_ENABLED").unwrap_or(brokers_set);
    if !relay_wanted && !stream_wanted {
        return (Some(None), Some(None));
    }
    let kafka = KafkaConfig::from_env(env, service);
    let relay = if relay_wanted { RelayConfig::from_env(env, kafka.clone()).map(Some) } else { Some(None) };
    let stream = if stream_wanted { StreamConfig::from_env(env, kafka).map(Some) } else { Some(None) };
    (relay, stream)
}

impl AuthConfig {
    /// Only the token variables: what `backend token` needs to mint a development token.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        env.load(read_auth)
    }
}

fn read_auth(env: &mut Env) -> Option<AuthConfig> {
    let jwt_secret = env.required::<Secret>("AUTH_JWT_SECRET");
    if jwt_secret.as_ref().is_some_and(|secret| secret.expose().len() < MIN_JWT_SECRET_BYTES) {
        env.invalid("AUTH_JWT_SECRET", format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"));
    }
    let issuer = env.optional::<String>("AUTH_JWT_ISSUER");
    let audience = env.optional::<String>("AUTH_JWT_AUDIENCE");
    Some(AuthConfig { jwt_secret: jwt_secret?, issuer, audience })
}

fn nonzero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_env(env(&[
            ("DATABASE_URL", "postgres://app:pw@db:5432/taskwatch"),
            ("AUTH_JWT_SECRET", SECRET),
        ]))
        .expect("valid config");
        assert_eq!(config.base.listen, "0.0.0.0:8080".parse().expect("address"));
        assert_eq!(config.database.max_connections, 10);
        assert!(config.rate_limit.enabled);
        assert_eq!(config.auth.issuer, None);
        // The password never shows up in debug output.
        assert!(!format!("{config:?}").contains("pw"));
        assert!(!format!("{config:?}").contains(SECRET));
    }

    #[test]
    fn a_broker_with_every_other_default_is_a_valid_relay_config() {
        let config = Config::from_env(env(&[
            ("DATABASE_URL", "postgres://app:pw@db:5432/taskwatch"),
            ("AUTH_JWT_SECRET", SECRET),
            ("KAFKA_BROKERS", "kafka:9092"),
        ]))
        .expect("the defaults must agree with each other");
        let relay = config.outbox_relay.expect("KAFKA_BROKERS switches the relay on");
        assert!(relay.lease > relay.kafka.delivery_timeout * 2);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let error = Config::from_env(env(&[
            ("PORT", "eighty"),
            ("AUTH_JWT_SECRET", "short"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("HTTP_REQUEST_TIMEOUT", "10"),
            ("RATE_LIMIT_ENABLED", "maybe"),
            ("INTERNAL_SERVICE_TOKEN", "too-short"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ]))
        .expect_err("invalid config");
        let names: Vec<&str> = error.problems.iter().map(|p| p.name()).collect();
        for name in [
            "DATABASE_URL",
            "PORT",
            "AUTH_JWT_SECRET",
            "DATABASE_MAX_CONNECTIONS",
            "HTTP_REQUEST_TIMEOUT",
            "RATE_LIMIT_ENABLED",
            "INTERNAL_SERVICE_TOKEN",
            "OTEL_TRACES_SAMPLER",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(!error.to_string().contains("short"), "secret value leaked: {error}");
    }

    #[test]
    fn malformed_database_url_is_reported_without_its_value() {
        let error = Config::from_env(env(&[("DATABASE_URL", "mysql://u:hunter2@x"), ("AUTH_JWT_SECRET", SECRET)]))
            .expect_err("invalid url");
        assert_eq!(error.problems.len(), 1);
        assert!(!error.to_string().contains("hunter2"));
    }
}
