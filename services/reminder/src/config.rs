//! The service's configuration: environment variables only, validated at start-up with one report naming every
//! bad or missing variable. `README.md` documents each variable.

use std::time::Duration;

use database::DatabaseConfig;
use messaging::KafkaConfig;
use observability::ServiceInfo;
use observability::config::{ConfigError, DurationValue, Env};
use outbox::RelayConfig;
use runtime::BaseConfig;

use crate::lateness::MaxLateness;

/// The port when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 8081;
/// Most jobs claimed in one transaction: bounds how long one claim holds its row locks.
pub const MAX_BATCH_SIZE: u16 = 1000;

#[derive(Debug, Clone)]
/// Everything the service reads from its environment.
pub struct Config {
    /// `BIND_ADDR`/`PORT`, `HTTP_*`, `RUST_LOG`/`OTEL_*`, `FAULT_*` (no internal token here: set
    /// `FAULT_ADMIN_TOKEN` to protect `/admin/faults`).
    pub base: BaseConfig,
    /// `DATABASE_*` and `READINESS_CHECK_TIMEOUT`.
    pub database: DatabaseConfig,
    /// The consumer's settings (the relay carries its own copy in `relay.kafka`).
    pub kafka: KafkaConfig,
    /// How the outbox relay publishes fired reminders.
    pub relay: RelayConfig,
    /// `REMINDER_POLL_INTERVAL`, `REMINDER_MAX_LATENESS`, `REMINDER_BATCH_SIZE`: how due jobs are found and fired.
    pub scheduler: SchedulerConfig,
    /// How long processed-event ids, settled jobs and forgotten tasks are kept.
    pub retention: Duration,
    /// How long start-up waits for the broker (to create missing topics) before giving up.
    pub startup_timeout: Duration,
}

impl AsRef<BaseConfig> for Config {
    fn as_ref(&self) -> &BaseConfig {
        &self.base
    }
}

/// How the scheduler finds and fires due jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The longest the scheduler sleeps between looks: bounds how late a job planned by another replica fires.
    pub poll_interval: Duration,
    /// Jobs found due longer ago than this are marked missed instead of fired.
    pub max_lateness: MaxLateness,
    /// Jobs claimed per transaction (1–[`MAX_BATCH_SIZE`]).
    pub batch_size: u16,
}

impl Config {
    /// Reads and validates every variable; the error names each bad or missing one.
    pub fn from_env(env: Env, service: ServiceInfo) -> Result<Self, ConfigError> {
        env.load(|env| {
            let base = BaseConfig::from_env(env, service, DEFAULT_PORT);
            let database = DatabaseConfig::from_env(env);
            let kafka = KafkaConfig::from_env(env, service);
            let relay = RelayConfig::from_env(env, kafka.clone());
            let scheduler = SchedulerConfig::from_env(env);
            let retention = env.with_default("REMINDER_RETENTION", DurationValue::from_secs(7 * 24 * 3600)).get();
            // Shorter, and a job re-planned after its settled row was purged could still be on time, and fire again.
            if scheduler.is_some_and(|scheduler| retention <= scheduler.max_lateness.get()) {
                env.invalid("REMINDER_RETENTION", "must exceed REMINDER_MAX_LATENESS");
            }
            let startup_timeout = runtime::startup_timeout(env);
            Some(Config {
                base,
                database: database?,
                kafka: kafka?,
                relay: relay?,
                scheduler: scheduler?,
                retention,
                startup_timeout,
            })
        })
    }
}

impl SchedulerConfig {
    /// Reads the `REMINDER_*` variables, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Option<Self> {
        let poll_interval = env.with_default("REMINDER_POLL_INTERVAL", DurationValue::from_secs(1)).get();
        let max_lateness = env.with_default("REMINDER_MAX_LATENESS", DurationValue::from_secs(15 * 60)).get();
        let batch_size = env.with_default("REMINDER_BATCH_SIZE", 100u16);
        if poll_interval.is_zero() {
            env.invalid("REMINDER_POLL_INTERVAL", "must be above zero");
        }
        let max_lateness = MaxLateness::new(max_lateness);
        if max_lateness.is_none() {
            env.invalid("REMINDER_MAX_LATENESS", "must be above zero");
        }
        if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
            env.invalid("REMINDER_BATCH_SIZE", format!("must be between 1 and {MAX_BATCH_SIZE}"));
        }
        Some(Self { poll_interval, max_lateness: max_lateness?, batch_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "reminder", version: "test" };

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    const MINIMAL: [(&str, &str); 2] =
        [("DATABASE_URL", "postgres://reminder:s3cret@db:5432/taskwatch"), ("KAFKA_BROKERS", "kafka:9092")];

    #[test]
    fn minimal_config_uses_defaults() {
        let config = Config::from_env(env(&MINIMAL), SERVICE).expect("valid config");
        assert_eq!(config.base.listen.port(), DEFAULT_PORT);
        assert_eq!(config.kafka.group_id, "reminder");
        assert_eq!(config.scheduler.poll_interval, Duration::from_secs(1));
        assert_eq!(config.scheduler.max_lateness.get(), Duration::from_secs(900));
        assert_eq!(config.scheduler.batch_size, 100);
        assert_eq!(config.startup_timeout, Duration::from_secs(60));
        assert_eq!(config.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.relay.kafka.brokers.to_string(), "kafka:9092");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn retention_must_outlast_the_lateness_limit() {
        let error = Config::from_env(
            env(&[MINIMAL[0], MINIMAL[1], ("REMINDER_MAX_LATENESS", "1h"), ("REMINDER_RETENTION", "30m")]),
            SERVICE,
        )
        .expect_err("invalid config")
        .to_string();
        assert!(error.contains("REMINDER_RETENTION"), "{error}");
    }

    #[test]
    fn one_report_names_every_bad_or_missing_variable() {
        let error = Config::from_env(
            env(&[
                ("REMINDER_POLL_INTERVAL", "0s"),
                ("REMINDER_MAX_LATENESS", "0s"),
                ("REMINDER_BATCH_SIZE", "5000"),
                ("OUTBOX_RELAY_POLL_INTERVAL", "0s"),
                ("PORT", "http"),
            ]),
            SERVICE,
        )
        .expect_err("invalid config")
        .to_string();
        for name in [
            "DATABASE_URL",
            "KAFKA_BROKERS",
            "REMINDER_POLL_INTERVAL",
            "REMINDER_MAX_LATENESS",
            "REMINDER_BATCH_SIZE",
            "OUTBOX_RELAY_POLL_INTERVAL",
            "PORT",
        ] {
            assert!(error.contains(name), "{name} missing from: {error}");
        }
    }
}
