//! Errors of the clients themselves (creation, topic administration). Publishing and consuming have
//! their own types next to the code that raises them.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A Kafka client could not be created (bad settings; no network is involved yet).
#[derive(Debug, thiserror::Error)]
#[error("could not create the Kafka {role} for {brokers}")]
pub struct ClientError {
    pub role: &'static str,
    pub brokers: String,
    #[source]
    pub source: KafkaError,
}

/// Topics could not be created or checked at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("creating topics on {brokers} failed")]
    Request {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("creating topic `{topic}` failed: {code}")]
    Rejected { topic: String, code: RDKafkaErrorCode },
}

/// The broker did not let the topics be created within the start-up wait.
#[derive(Debug, thiserror::Error)]
#[error("could not create the topics within {waited:?}")]
pub struct TopicsNotReady {
    pub waited: std::time::Duration,
    /// The last attempt's failure.
    #[source]
    pub last: TopicError,
}

/// Why a service's consumer could not start or stopped with an error: what a service's start-up
/// ([`crate::ensure_topics_within`], then [`crate::run`]) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Topics(#[from] TopicsNotReady),
    #[error(transparent)]
    Consumer(#[from] crate::ConsumerError),
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}
