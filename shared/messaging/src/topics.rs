//! Creating the topics a service needs at start-up.

use std::time::{Duration, Instant};

use observability::Backoff;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use crate::client_context::TracingContext;
use crate::config::{KafkaConfig, Partitions};
use crate::error::{ClientError, TopicError, TopicsNotReady};

/// First and longest pause between start-up attempts of [`ensure_topics_within`].
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// A topic a service relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's name, e.g. `task-events`.
    pub name: String,
    /// `None`: the configured `KAFKA_TOPIC_PARTITIONS`.
    pub partitions: Option<Partitions>,
}

impl TopicSpec {
    /// A topic with the configured default partition count.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), partitions: None }
    }

    /// Asks for `partitions` instead of the configured default; only used when the topic is created.
    pub fn with_partitions(mut self, partitions: Partitions) -> Self {
        self.partitions = Some(partitions);
        self
    }
}

/// Creates every topic in `topics` that does not exist yet; existing topics are left as they are
/// (their partition count is not changed).
pub async fn ensure_topics(config: &KafkaConfig, topics: &[TopicSpec]) -> Result<(), TopicError> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<TracingContext> = config
        .client_config()
        .create_with_context(TracingContext)
        .map_err(|source| ClientError { role: "admin client", brokers: config.brokers.to_string(), source })?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| {
            let partitions = topic.partitions.unwrap_or(config.topic_partitions);
            NewTopic::new(
                &topic.name,
                i32::from(partitions.get()),
                TopicReplication::Fixed(i32::from(config.replication_factor.get())),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(config.request_timeout))
        .operation_timeout(Some(config.request_timeout));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|source| TopicError::Request { brokers: config.brokers.to_string(), source })?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, "topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic, "topic already exists"),
            Err((topic, code)) => return Err(TopicError::Rejected { topic, code }),
        }
    }
    Ok(())
}

/// [`ensure_topics`] at start-up: retried with doubling pauses until it succeeds or `wait_at_most` has passed,
/// because in a fresh stack the broker may still be starting when the service is.
pub async fn ensure_topics_within(
    config: &KafkaConfig,
    topics: &[TopicSpec],
    wait_at_most: Duration,
) -> Result<(), TopicsNotReady> {
    let deadline = Instant::now() + wait_at_most;
    let mut pauses = Backoff::clamped(FIRST_RETRY, LONGEST_RETRY).delays();
    loop {
        let pause = pauses.next_delay();
        match ensure_topics(config, topics).await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() + pause < deadline => {
                tracing::warn!(error = %error, retry_in = ?pause, "Kafka not reachable yet");
                tokio::time::sleep(pause).await;
            }
            Err(last) => return Err(TopicsNotReady { waited: wait_at_most, last }),
        }
    }
}
