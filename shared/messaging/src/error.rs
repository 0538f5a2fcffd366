//! Errors of the clients themselves (creation, topic administration). Publishing and consuming have
//! their own types next to the code that raises them.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A Kafka client could not be created (bad settings; no network is involved yet).
#[derive(Debug, thiserror::Error)]
#[error("could not create the Kafka {role} for {brokers}")]
pub struct ClientError {
    /// Which client: `producer`, `consumer` or `admin client`.
    pub role: &'static str,
    /// The bootstrap servers it was configured with.
    pub brokers: String,
    /// librdkafka's reason, usually a setting it refuses.
    #[source]
    pub source: KafkaError,
}

/// Topics could not be created or checked at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The admin client could not be created.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The create-topics request failed as a whole, e.g. no broker answered in time.
    #[error("creating topics on {brokers} failed")]
    Request {
        /// The bootstrap servers asked.
        brokers: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create one topic, for a reason other than that it exists already.
    #[error("creating topic `{topic}` failed: {code}")]
    Rejected {
        /// The topic refused.
        topic: String,
        /// The broker's reason, e.g. a replication factor above the number of brokers.
        code: RDKafkaErrorCode,
    },
}

/// The broker did not let the topics be created within the start-up wait.
#[derive(Debug, thiserror::Error)]
#[error("could not create the topics within {waited:?}")]
pub struct TopicsNotReady {
    /// The start-up wait that ran out (the configured limit, not a measured time).
    pub waited: std::time::Duration,
    /// The last attempt's failure.
    #[source]
    pub last: TopicError,
}

/// Why a service's consumer could not start or stopped with an error: what a service's start-up
/// ([`crate::ensure_topics_within`], then [`crate::run`]) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The topics could not be created within the start-up wait.
    #[error(transparent)]
    Topics(#[from] TopicsNotReady),
    /// The consumer could not be created or subscribed.
    #[error(transparent)]
    Consumer(#[from] crate::ConsumerError),
    /// No [`crate::Subscription`] could be built: the topics were empty or included the dead-letter topic.
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}
