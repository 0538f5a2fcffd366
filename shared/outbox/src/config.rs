//! `OUTBOX_RELAY_*` and `OUTBOX_RETENTION`: how the relay publishes.

use std::time::Duration;

use messaging::KafkaConfig;
use observability::config::{DurationValue, Env};

/// Claims larger than this hold many leases on one relay; smaller than 1 claims nothing.
const MAX_BATCH_SIZE: u16 = 1000;

/// How the outbox relay publishes to Kafka.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Kafka settings for the relay's producer and topic creation; the lease must exceed twice their delivery
    /// timeout.
    pub kafka: KafkaConfig,
    /// `OUTBOX_RELAY_BATCH_SIZE` (100, 1–1000): rows claimed per round trip.
    pub batch_size: u16,
    /// `OUTBOX_RELAY_LEASE` (90s): how long a claim is exclusive; more than twice `KAFKA_DELIVERY_TIMEOUT`, so
    /// a live relay never loses its rows to another while it publishes.
    pub lease: Duration,
    /// `OUTBOX_RELAY_POLL_INTERVAL` (500ms): fallback wake-up when no NOTIFY arrives (e.g. while the listening
    /// connection is being re-established).
    pub poll_interval: Duration,
    /// `OUTBOX_RELAY_MAX_BACKOFF` (30s): longest wait before a row whose publish failed is retried (the delay
    /// doubles from 1s up to this).
    pub max_backoff: Duration,
    /// `OUTBOX_RETENTION` (7d): how long published rows are kept before they are deleted.
    pub retention: Duration,
}

impl RelayConfig {
    /// Reads the relay's variables, recording each problem in `env`. `kafka` is the service's
    /// `KafkaConfig::from_env` result (`None` when it had problems, already recorded); the lease is checked
    /// against its delivery timeout.
    pub fn from_env(env: &mut Env, kafka: Option<KafkaConfig>) -> Option<Self> {
        let batch_size = env.with_default("OUTBOX_RELAY_BATCH_SIZE", 100u16);
        let lease = env.with_default("OUTBOX_RELAY_LEASE", DurationValue::from_secs(90)).get();
        let poll_interval = env.with_default("OUTBOX_RELAY_POLL_INTERVAL", DurationValue::from_millis(500)).get();
        let max_backoff = env.with_default("OUTBOX_RELAY_MAX_BACKOFF", DurationValue::from_secs(30)).get();
        let retention = env.with_default("OUTBOX_RETENTION", DurationValue::from_secs(7 * 24 * 3600)).get();
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            env.invalid("OUTBOX_RELAY_BATCH_SIZE", format!("must be from 1 to {MAX_BATCH_SIZE}"));
        }
        for (name, value) in [("OUTBOX_RELAY_POLL_INTERVAL", poll_interval), ("OUTBOX_RELAY_MAX_BACKOFF", max_backoff)]
        {
            if value.is_zero() {
                env.invalid(name, "must be above zero");
            }
        }
        if let Some(kafka) = &kafka
            && lease <= kafka.delivery_timeout * 2
        {
            env.invalid("OUTBOX_RELAY_LEASE", "must be more than twice KAFKA_DELIVERY_TIMEOUT");
        }
        Some(Self { kafka: kafka?, batch_size, lease, poll_interval, max_backoff, retention })
    }
}

#[cfg(test)]
mod tests {
    use observability::ServiceInfo;
    use observability::config::ConfigError;

    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "test", version: "0" };

    fn load(pairs: &[(&str, &str)]) -> Result<RelayConfig, ConfigError> {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).load(|env| {
            let kafka = KafkaConfig::from_env(env, SERVICE);
            RelayConfig::from_env(env, kafka)
        })
    }

    #[test]
    fn the_defaults_agree_with_each_other() {
        let config = load(&[("KAFKA_BROKERS", "kafka:9092")]).expect("valid");
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.lease, Duration::from_secs(90));
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.max_backoff, Duration::from_secs(30));
        assert_eq!(config.retention, Duration::from_secs(7 * 24 * 3600));
        assert!(config.lease > config.kafka.delivery_timeout * 2);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let error = load(&[
            ("KAFKA_BROKERS", "kafka:9092"),
            ("OUTBOX_RELAY_BATCH_SIZE", "0"),
            ("OUTBOX_RELAY_LEASE", "30s"),
            ("OUTBOX_RELAY_POLL_INTERVAL", "0s"),
            ("OUTBOX_RELAY_MAX_BACKOFF", "never"),
            ("OUTBOX_RETENTION", "7"),
        ])
        .expect_err("invalid");
        let names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        for name in [
            "OUTBOX_RELAY_BATCH_SIZE",
            "OUTBOX_RELAY_LEASE",
            "OUTBOX_RELAY_POLL_INTERVAL",
            "OUTBOX_RELAY_MAX_BACKOFF",
            "OUTBOX_RETENTION",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
}
