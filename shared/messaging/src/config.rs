//! Kafka settings from environment variables, read the [`observability::Env`] way (every bad variable
//! reported at once).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use observability::{Backoff, DurationValue, Env, ServiceInfo};
use rdkafka::ClientConfig;

/// Connection and behaviour settings shared by every producer, consumer and admin client of a service.
///
/// Build it with [`KafkaConfig::from_env`] in a service, or [`KafkaConfig::new`] in a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `KAFKA_BROKERS`: bootstrap servers.
    pub brokers: Brokers,
    /// `KAFKA_CLIENT_ID`: shows up in broker logs and quotas.
    pub client_id: String,
    /// `KAFKA_GROUP_ID`: the consumer group; every replica of a service shares it.
    pub group_id: String,
    /// `KAFKA_TOPIC_PARTITIONS`: partitions of topics this service creates when they are missing.
    pub topic_partitions: Partitions,
    /// `KAFKA_TOPIC_REPLICATION_FACTOR`: replicas of topics this service creates.
    pub replication_factor: ReplicationFactor,
    /// `KAFKA_REQUEST_TIMEOUT`: bound on admin and metadata requests.
    pub request_timeout: Duration,
    /// `KAFKA_DELIVERY_TIMEOUT`: how long the producer keeps retrying a message before `send` fails.
    pub delivery_timeout: Duration,
    /// `KAFKA_SESSION_TIMEOUT`: how long the group waits for a silent consumer before reassigning.
    pub session_timeout: Duration,
    /// `KAFKA_COMMIT_INTERVAL`: how often stored (processed) offsets are committed.
    pub commit_interval: Duration,
    /// `KAFKA_RETRY_BACKOFF_INITIAL` / `KAFKA_RETRY_BACKOFF_MAX`: backoff between handler retries.
    pub retry_backoff: Backoff,
    /// `KAFKA_LAG_INTERVAL`: how often consumer lag is measured.
    pub lag_interval: Duration,
}

const DEFAULT_PARTITIONS: Partitions = Partitions(3);
const DEFAULT_REPLICATION: ReplicationFactor = ReplicationFactor(1);
const DEFAULT_REQUEST_TIMEOUT: DurationValue = DurationValue::from_secs(10);
const DEFAULT_DELIVERY_TIMEOUT: DurationValue = DurationValue::from_secs(30);
const DEFAULT_SESSION_TIMEOUT: DurationValue = DurationValue::from_secs(10);
const DEFAULT_COMMIT_INTERVAL: DurationValue = DurationValue::from_secs(1);
const DEFAULT_BACKOFF_INITIAL: DurationValue = DurationValue::from_millis(200);
const DEFAULT_BACKOFF_MAX: DurationValue = DurationValue::from_secs(30);
const DEFAULT_LAG_INTERVAL: DurationValue = DurationValue::from_secs(15);

impl KafkaConfig {
    /// Defaults for everything but the brokers; client and group id are the service's name.
    pub fn new(brokers: Brokers, service_name: &str) -> Self {
        Self {
            brokers,
            client_id: service_name.to_owned(),
            group_id: service_name.to_owned(),
            topic_partitions: DEFAULT_PARTITIONS,
            replication_factor: DEFAULT_REPLICATION,
            request_timeout: DEFAULT_REQUEST_TIMEOUT.get(),
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT.get(),
            session_timeout: DEFAULT_SESSION_TIMEOUT.get(),
            commit_interval: DEFAULT_COMMIT_INTERVAL.get(),
            retry_backoff: Backoff::clamped(DEFAULT_BACKOFF_INITIAL.get(), DEFAULT_BACKOFF_MAX.get()),
            lag_interval: DEFAULT_LAG_INTERVAL.get(),
        }
    }

    /// Reads the `KAFKA_*` variables, recording problems in `env`; `None` when one is bad or missing.
    /// Client and group id default to the service's name.
    pub fn from_env(env: &mut Env, service: ServiceInfo) -> Option<Self> {
        let brokers = env.required::<Brokers>("KAFKA_BROKERS");
        let client_id = env.with_default("KAFKA_CLIENT_ID", service.name.to_owned());
        let group_id = env.with_default("KAFKA_GROUP_ID", service.name.to_owned());
        let topic_partitions = env.with_default("KAFKA_TOPIC_PARTITIONS", DEFAULT_PARTITIONS);
        let replication_factor = env.with_default("KAFKA_TOPIC_REPLICATION_FACTOR", DEFAULT_REPLICATION);
        let request_timeout = env.with_default("KAFKA_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT).get();
        let delivery_timeout = env.with_default("KAFKA_DELIVERY_TIMEOUT", DEFAULT_DELIVERY_TIMEOUT).get();
        let session_timeout = env.with_default("KAFKA_SESSION_TIMEOUT", DEFAULT_SESSION_TIMEOUT).get();
        let commit_interval = env.with_default("KAFKA_COMMIT_INTERVAL", DEFAULT_COMMIT_INTERVAL).get();
        let backoff_initial = env.with_default("KAFKA_RETRY_BACKOFF_INITIAL", DEFAULT_BACKOFF_INITIAL).get();
        let backoff_max = env.with_default("KAFKA_RETRY_BACKOFF_MAX", DEFAULT_BACKOFF_MAX).get();
        let lag_interval = env.with_default("KAFKA_LAG_INTERVAL", DEFAULT_LAG_INTERVAL).get();

        let retry_backoff = Backoff::new(backoff_initial, backoff_max).ok();
        if retry_backoff.is_none() {
            env.invalid("KAFKA_RETRY_BACKOFF_INITIAL", "must be above zero and at most KAFKA_RETRY_BACKOFF_MAX");
        }
        for (name, value) in [
            ("KAFKA_REQUEST_TIMEOUT", request_timeout),
            ("KAFKA_DELIVERY_TIMEOUT", delivery_timeout),
            ("KAFKA_SESSION_TIMEOUT", session_timeout),
            ("KAFKA_COMMIT_INTERVAL", commit_interval),
            ("KAFKA_LAG_INTERVAL", lag_interval),
        ] {
            if value.is_zero() {
                env.invalid(name, "must be above zero");
            }
        }
        if client_id.trim().is_empty() || group_id.trim().is_empty() {
            env.invalid("KAFKA_CLIENT_ID", "client and group id must not be blank");
        }
        Some(Self {
            brokers: brokers?,
            client_id,
            group_id,
            topic_partitions,
            replication_factor,
            request_timeout,
            delivery_timeout,
            session_timeout,
            commit_interval,
            retry_backoff: retry_backoff?,
            lag_interval,
        })
    }

    /// Settings every client shares.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers.as_str())
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", millis(self.request_timeout))
            // Reconnect quickly after a broker restart instead of librdkafka's 10 s ceiling.
            .set("reconnect.backoff.max.ms", "1000");
        config
    }
}

pub(crate) fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Comma-separated `host:port` bootstrap servers, e.g. `kafka-0:9092,kafka-1:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brokers(String);

impl Brokers {
    /// The servers as librdkafka's `bootstrap.servers` takes them: comma-separated, without spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Brokers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let servers: Vec<&str> = text.split(',').map(str::trim).collect();
        for server in &servers {
            let valid_port = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0));
            if !valid_port {
                return Err(format!("`{server}` is not host:port (expected e.g. `kafka:9092,kafka-2:9092`)"));
            }
        }
        Ok(Self(servers.join(",")))
    }
}

impl fmt::Display for Brokers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A topic's partition count: 1 to 1000 (more is a typo, not a plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions(u16);

impl Partitions {
    /// The most partitions a topic may be given.
    pub const MAX: u16 = 1000;

    /// `None` outside 1 to [`Partitions::MAX`].
    pub fn new(count: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then_some(Self(count))
    }

    /// The partition count, as topics are created with it.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for Partitions {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<u16>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| format!("expected a whole number from 1 to {}", Self::MAX))
    }
}

/// A topic's replication factor: 1 to 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationFactor(u8);

impl ReplicationFactor {
    const MAX: u8 = 16;

    /// `None` outside 1 to 16.
    pub fn new(replicas: u8) -> Option<Self> {
        (1..=Self::MAX).contains(&replicas).then_some(Self(replicas))
    }

    /// The number of replicas, as topics are created with it.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl FromStr for ReplicationFactor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<u8>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| format!("expected a whole number from 1 to {}", Self::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "reminder", version: "0.0.0" };

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())))
    }

    #[test]
    fn defaults_fill_everything_but_the_brokers() {
        let config = env(&[("KAFKA_BROKERS", " kafka:9092 , kafka-2:9093")])
            .load(|env| KafkaConfig::from_env(env, SERVICE))
            .unwrap();
        assert_eq!(config.brokers.as_str(), "kafka:9092,kafka-2:9093");
        assert_eq!(config.client_id, "reminder");
        assert_eq!(config.group_id, "reminder");
        assert_eq!(config.topic_partitions.get(), 3);
        assert_eq!(config, KafkaConfig::new(config.brokers.clone(), "reminder"));
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let error = env(&[
            ("KAFKA_TOPIC_PARTITIONS", "0"),
            ("KAFKA_RETRY_BACKOFF_INITIAL", "1m"),
            ("KAFKA_RETRY_BACKOFF_MAX", "1s"),
            ("KAFKA_LAG_INTERVAL", "0s"),
        ])
        .load(|env| KafkaConfig::from_env(env, SERVICE))
        .unwrap_err();
        let names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        assert_eq!(
            names,
            ["KAFKA_BROKERS", "KAFKA_TOPIC_PARTITIONS", "KAFKA_RETRY_BACKOFF_INITIAL", "KAFKA_LAG_INTERVAL"]
        );
    }

    #[test]
    fn brokers_must_be_host_and_port() {
        assert!("kafka".parse::<Brokers>().is_err());
        assert!("kafka:0".parse::<Brokers>().is_err());
        assert!("kafka:9092,".parse::<Brokers>().is_err());
        assert!(":9092".parse::<Brokers>().is_err());
        assert!("[::1]:9092".parse::<Brokers>().is_ok());
    }
}
