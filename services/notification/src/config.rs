//! The service's configuration: environment variables only, validated at start-up with one report naming every
//! bad or missing variable. `README.md` documents each variable.

use std::str::FromStr;
use std::time::Duration;

use database::DatabaseConfig;
use lettre::message::Mailbox;
use messaging::KafkaConfig;
use observability::config::{ConfigError, DurationValue, Env, Secret};
use observability::{Backoff, ClientConfig, InvalidBackoff, ServiceInfo};
use runtime::BaseConfig;

use crate::channel::guard::TargetPolicy;

/// The port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8083;
/// HMAC keys shorter than the hash output weaken the signature (RFC 2104 §3).
pub const MIN_SIGNING_SECRET_BYTES: usize = 32;

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*`, `FAULT_*` (`/admin/faults` takes `INTERNAL_SERVICE_TOKEN`
    /// unless `FAULT_ADMIN_TOKEN` is set).
    pub base: BaseConfig,
    /// `DATABASE_URL` and the `DATABASE_*` pool settings; the tables live in schema `notification`.
    pub database: DatabaseConfig,
    /// `KAFKA_*`: the brokers, this service's consumer group, and the topics it creates when missing.
    pub kafka: KafkaConfig,
    /// `BACKEND_*` and `INTERNAL_SERVICE_TOKEN`: where notification settings are read.
    pub backend: BackendConfig,
    /// `SMTP_*`: the mail server and sender for the e-mail channel.
    pub smtp: SmtpConfig,
    /// `WEBHOOK_*`: signing and target policy for the webhook channel.
    pub webhook: WebhookConfig,
    /// `NOTIFY_*`: attempts, backoff, leases, batching, breakers and retention of deliveries.
    pub delivery: DeliveryConfig,
    /// How long start-up waits for the broker (to create missing topics) before giving up.
    pub startup_timeout: Duration,
}

impl AsRef<BaseConfig> for Config {
    fn as_ref(&self) -> &BaseConfig {
        &self.base
    }
}

/// How to reach the backend's internal API for notification settings.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Includes the fallback cache TTL (`BACKEND_SETTINGS_CACHE_TTL`).
    pub client: ClientConfig,
    /// The backend's `INTERNAL_SERVICE_TOKEN`.
    pub service_token: Secret,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: a local relay or a test sink only.
    None,
    /// Plain connect, then `STARTTLS`, required (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    /// The port used when `SMTP_PORT` is unset: 25 for plain text, 587 for `STARTTLS`, 465 for SMTPS.
    pub const fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

impl FromStr for SmtpTls {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            _ => Err("expected one of none, starttls, tls".to_owned()),
        }
    }
}

/// SMTP login; both parts or neither.
#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    /// `SMTP_USERNAME`.
    pub username: String,
    /// `SMTP_PASSWORD`; never printed.
    pub password: Secret,
}

/// The e-mail channel's SMTP server and sender (`SMTP_*`).
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `SMTP_HOST`: the server's host name or address; never empty.
    pub host: String,
    /// `SMTP_PORT`, defaulting by [`SmtpTls::default_port`].
    pub port: u16,
    /// `SMTP_TLS` (default `starttls`); never [`SmtpTls::None`] when credentials are set.
    pub tls: SmtpTls,
    /// `SMTP_USERNAME` and `SMTP_PASSWORD`; `None` when neither is set (no login).
    pub credentials: Option<SmtpCredentials>,
    /// `SMTP_FROM`: the sender mailbox of every reminder mail.
    pub from: Mailbox,
    /// Limit for one delivery attempt (connect, dialogue, data).
    pub timeout: Duration,
}

/// How webhook deliveries are signed and which targets they may reach (`WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `WEBHOOK_SIGNING_SECRET`: the HMAC-SHA256 key of the `Webhook-Signature` header, at least
    /// [`MIN_SIGNING_SECRET_BYTES`] long; never printed.
    pub signing_secret: Secret,
    /// Limit for one delivery attempt (connect, request, response).
    pub timeout: Duration,
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: whether the SSRF guard refuses private and local addresses (the default).
    pub targets: TargetPolicy,
}

/// How deliveries are retried and claimed.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts per delivery before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// `NOTIFY_BACKOFF_INITIAL` / `NOTIFY_BACKOFF_MAX`: delays between attempts, doubling with jitter.
    pub backoff: Backoff,
    /// How long a claimed delivery is exclusive to one worker; longer than any send may take.
    pub lease: Duration,
    /// Fallback wake-up of the worker when nothing arrived through this replica's consumer.
    pub poll_interval: Duration,
    /// Deliveries claimed (and sent concurrently) per round.
    pub batch_size: u16,
    /// Consecutive failures that open a destination's circuit, and how long it stays open.
    pub breaker_failure_threshold: u32,
    /// How long an opened destination circuit stays open before a trial send (`NOTIFY_BREAKER_OPEN_FOR`).
    pub breaker_open_for: Duration,
    /// How long sent and dead deliveries are kept (the delivery log) before they are deleted.
    pub retention: Duration,
}

impl Config {
    /// Reads and validates every variable; the error names each bad or missing one.
    pub fn from_env(env: Env, service: ServiceInfo) -> Result<Self, ConfigError> {
        env.load(|env| {
            let mut base = BaseConfig::from_env(env, service, DEFAULT_PORT);
            let database = DatabaseConfig::from_env(env);
            let kafka = KafkaConfig::from_env(env, service);
            let backend = read_backend(env);
            let smtp = read_smtp(env);
            let webhook = read_webhook(env);
            let delivery = read_delivery(env);
            let startup_timeout = runtime::startup_timeout(env);
            // `/admin/faults` takes INTERNAL_SERVICE_TOKEN unless FAULT_ADMIN_TOKEN is set.
            base.faults = base.faults.with_fallback_token(backend.as_ref().map(|backend| &backend.service_token));
            if let (Some(smtp), Some(webhook), Some(delivery), Some(kafka)) = (&smtp, &webhook, &delivery, &kafka) {
                // A lease that can run out mid-send lets a second worker send the same delivery concurrently; a
                // claim may also publish a dead letter after its send.
                let longest_send = smtp.timeout.max(webhook.timeout);
                if delivery.lease < longest_send * 2 || delivery.lease <= longest_send + kafka.delivery_timeout {
                    env.invalid(
                        "NOTIFY_LEASE",
                        "must be at least twice the longer of SMTP_TIMEOUT and WEBHOOK_TIMEOUT, and exceed that \
                         plus KAFKA_DELIVERY_TIMEOUT",
                    );
                }
            }
            Some(Config {
                base,
                database: database?,
                kafka: kafka?,
                backend: backend?,
                smtp: smtp?,
                webhook: webhook?,
                delivery: delivery?,
                startup_timeout,
            })
        })
    }
}

fn read_backend(env: &mut Env) -> Option<BackendConfig> {
    let client = ClientConfig::from_env(env, "backend", "BACKEND");
    let service_token = env.required::<Secret>("INTERNAL_SERVICE_TOKEN");
    let cache_ttl = env.with_default("BACKEND_SETTINGS_CACHE_TTL", DurationValue::from_secs(60)).get();
    // Zero switches the fallback off: every read then needs a live backend.
    let client = ClientConfig { cache_ttl: (!cache_ttl.is_zero()).then_some(cache_ttl), ..client? };
    Some(BackendConfig { client, service_token: service_token? })
}

fn read_smtp(env: &mut Env) -> Option<SmtpConfig> {
    let host = env.required::<String>("SMTP_HOST");
    let tls = env.with_default("SMTP_TLS", SmtpTls::StartTls);
    let port = env.with_default("SMTP_PORT", tls.default_port());
    let username = env.optional::<String>("SMTP_USERNAME");
    let password = env.optional::<Secret>("SMTP_PASSWORD");
    let from = env.required::<Mailbox>("SMTP_FROM");
    let timeout = env.with_default("SMTP_TIMEOUT", DurationValue::from_secs(10)).get();
    if host.as_deref().is_some_and(|host| host.trim().is_empty()) {
        env.invalid("SMTP_HOST", "must not be empty");
    }
    if timeout.is_zero() {
        env.invalid("SMTP_TIMEOUT", "must be above zero");
    }
    let credentials = match (username, password) {
        (Some(username), Some(password)) => Some(SmtpCredentials { username, password }),
        (None, None) => None,
        (Some(_), None) => {
            env.invalid("SMTP_PASSWORD", "must be set together with SMTP_USERNAME");
            None
        }
        (None, Some(_)) => {
            env.invalid("SMTP_USERNAME", "must be set together with SMTP_PASSWORD");
            None
        }
    };
    if credentials.is_some() && tls == SmtpTls::None {
        env.invalid("SMTP_TLS", "must be starttls or tls when credentials are set (they would travel in clear text)");
    }
    Some(SmtpConfig { host: host?, port, tls, credentials, from: from?, timeout })
}

fn read_webhook(env: &mut Env) -> Option<WebhookConfig> {
    let signing_secret = env.required::<Secret>("WEBHOOK_SIGNING_SECRET");
    let timeout = env.with_default("WEBHOOK_TIMEOUT", DurationValue::from_secs(5)).get();
    let allow_private = env.with_default("WEBHOOK_ALLOW_PRIVATE_TARGETS", false);
    if signing_secret.as_ref().is_some_and(|secret| secret.expose().len() < MIN_SIGNING_SECRET_BYTES) {
        env.invalid("WEBHOOK_SIGNING_SECRET", format!("must be at least {MIN_SIGNING_SECRET_BYTES} bytes"));
    }
    if timeout.is_zero() {
        env.invalid("WEBHOOK_TIMEOUT", "must be above zero");
    }
    let targets = if allow_private { TargetPolicy::AllowPrivate } else { TargetPolicy::PublicOnly };
    Some(WebhookConfig { signing_secret: signing_secret?, timeout, targets })
}

fn read_delivery(env: &mut Env) -> Option<DeliveryConfig> {
    let max_attempts = env.with_default("NOTIFY_MAX_ATTEMPTS", 8u32);
    let backoff_initial = env.with_default("NOTIFY_BACKOFF_INITIAL", DurationValue::from_secs(10)).get();
    let backoff_max = env.with_default("NOTIFY_BACKOFF_MAX", DurationValue::from_secs(3600)).get();
    let lease = env.with_default("NOTIFY_LEASE", DurationValue::from_secs(60)).get();
    let poll_interval = env.with_default("NOTIFY_POLL_INTERVAL", DurationValue::from_secs(1)).get();
    let batch_size = env.with_default("NOTIFY_BATCH_SIZE", 16u16);
    let breaker_failure_threshold = env.with_default("NOTIFY_BREAKER_FAILURE_THRESHOLD", 5u32);
    let breaker_open_for = env.with_default("NOTIFY_BREAKER_OPEN_FOR", DurationValue::from_secs(30)).get();
    let retention = env.with_default("NOTIFY_RETENTION", DurationValue::from_secs(7 * 24 * 3600)).get();
    if max_attempts == 0 {
        env.invalid("NOTIFY_MAX_ATTEMPTS", "must be at least 1");
    }
    for (name, value) in
        [("NOTIFY_BACKOFF_INITIAL", backoff_initial), ("NOTIFY_POLL_INTERVAL", poll_interval), ("NOTIFY_LEASE", lease)]
    {
        if value.is_zero() {
            env.invalid(name, "must be above zero");
        }
    }
    let backoff = match Backoff::new(backoff_initial, backoff_max) {
        Ok(backoff) => Some(backoff),
        // The zero initial delay is already reported above.
        Err(InvalidBackoff::ZeroInitial) => None,
        Err(InvalidBackoff::InitialAboveMax { .. }) => {
            env.invalid("NOTIFY_BACKOFF_MAX", "must not be below NOTIFY_BACKOFF_INITIAL");
            None
        }
    };
    if batch_size == 0 || batch_size > 500 {
        env.invalid("NOTIFY_BATCH_SIZE", "must be from 1 to 500");
    }
    if breaker_failure_threshold == 0 {
        env.invalid("NOTIFY_BREAKER_FAILURE_THRESHOLD", "must be at least 1");
    }
    Some(DeliveryConfig {
        max_attempts,
        backoff: backoff?,
        lease,
        poll_interval,
        batch_size,
        breaker_failure_threshold,
        breaker_open_for,
        retention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "notification", version: "test" };
    const SECRET: &str = "whsec-test-secret-at-least-32-bytes-long!";

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://notification:pw@db:5432/taskwatch"),
            ("KAFKA_BROKERS", "kafka:9092"),
            ("BACKEND_URL", "http://backend:8080"),
            ("INTERNAL_SERVICE_TOKEN", "s3cret-token"),
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "Taskwatch <noreply@example.com>"),
            ("WEBHOOK_SIGNING_SECRET", SECRET),
        ]
    }

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_env(env(&minimal()), SERVICE).expect("valid config");
        assert_eq!(config.base.listen.port(), DEFAULT_PORT);
        assert_eq!(config.kafka.group_id, "notification");
        assert_eq!(config.smtp.tls, SmtpTls::StartTls);
        assert_eq!(config.smtp.port, 587);
        assert!(config.smtp.credentials.is_none());
        assert_eq!(config.webhook.targets, TargetPolicy::PublicOnly);
        assert_eq!(config.backend.client.cache_ttl, Some(Duration::from_secs(60)));
        assert_eq!(config.delivery.max_attempts, 8);
    }

    #[test]
    fn tls_mode_picks_the_default_port_and_the_allow_flag_is_read() {
        let mut pairs = minimal();
        pairs.extend([("SMTP_TLS", "tls"), ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")]);
        let config = Config::from_env(env(&pairs), SERVICE).expect("valid config");
        assert_eq!(config.smtp.port, 465);
        assert_eq!(config.webhook.targets, TargetPolicy::AllowPrivate);
    }

    #[test]
    fn one_report_names_every_bad_or_missing_variable() {
        let error = Config::from_env(
            env(&[
                ("SMTP_TLS", "ssl"),
                ("SMTP_USERNAME", "mailer"),
                ("SMTP_FROM", "not an address"),
                ("WEBHOOK_SIGNING_SECRET", "short"),
                ("NOTIFY_MAX_ATTEMPTS", "0"),
                ("NOTIFY_BACKOFF_INITIAL", "10s"),
                ("NOTIFY_BACKOFF_MAX", "1s"),
            ]),
            SERVICE,
        )
        .expect_err("invalid config")
        .to_string();
        for name in [
            "DATABASE_URL",
            "KAFKA_BROKERS",
            "BACKEND_URL",
            "INTERNAL_SERVICE_TOKEN",
            "SMTP_HOST",
            "SMTP_TLS",
            "SMTP_PASSWORD",
            "SMTP_FROM",
            "WEBHOOK_SIGNING_SECRET",
            "NOTIFY_MAX_ATTEMPTS",
            "NOTIFY_BACKOFF_MAX",
        ] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }

    #[test]
    fn the_lease_must_outlast_a_send() {
        let mut pairs = minimal();
        pairs.extend([("SMTP_TIMEOUT", "40s"), ("NOTIFY_LEASE", "60s")]);
        let error = Config::from_env(env(&pairs), SERVICE).expect_err("lease too short").to_string();
        assert!(error.contains("NOTIFY_LEASE"), "{error}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let mut pairs = minimal();
        pairs.extend([("SMTP_USERNAME", "mailer"), ("SMTP_PASSWORD", "smtp-pass-value")]);
        let config = Config::from_env(env(&pairs), SERVICE).expect("valid config");
        let printed = format!("{config:?}");
        for secret in ["smtp-pass-value", SECRET, "s3cret-token", ":pw@"] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
    }
}
