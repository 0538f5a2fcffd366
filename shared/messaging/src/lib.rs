//! Kafka for Taskwatch services: what every producer and consumer shares, behind this crate's own
//! types (rdkafka stays an implementation detail).
//!
//! | Piece | Item | What it gives a service |
//! |---|---|---|
//! | Config | [`KafkaConfig::from_env`] | the `KAFKA_*` variables below, validated with the service's own config |
//! | Topics | [`ensure_topics`] / [`ensure_topics_within`] | creates missing topics at start-up (waiting, bounded, for a broker that is still starting) |
//! | Producer | [`Producer::send`] | idempotent, waits for the broker's ack, producer span, trace context in headers; replaces its client after an outage left it fenced |
//! | Consumer | [`Consumer::run`] / [`run`] | at-least-once loop: offsets stored after the handler's `Ok`, retry in place, dead-letter topic |
//! | Tail | [`TopicTail`] | every partition of a topic, from a point in time, without a group: fan-out to every replica |
//! | Headers | [`MessageHeaders`] | header map with W3C trace context inject/extract |
//! | Metrics | [`metric_names`] | the documented list of what this crate emits |
//!
//! # Metrics a consumer emits
//!
//! | Metric | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `taskwatch_messages_consumed_total` | counter | `topic`, `outcome` (`ok`, `retried`, `dead_lettered`) | handler results; 0 for every subscribed topic and outcome from the start |
//! | `taskwatch_messages_dead_lettered_total` | counter | `topic` | messages sent to the dead-letter topic; 0 from the start, so the first one fires its alert |
//! | `taskwatch_message_processing_duration_seconds` | histogram | `topic` | arrival → final outcome, retries included |
//! | `taskwatch_consumer_lag` | gauge | `topic`, `partition` | high watermark − position, per partition this member owns |
//! | `taskwatch_consumer_assigned_partitions` | gauge | `topic` | partitions this member owns now (0 when none); summed over live members against the next one, it shows unowned partitions |
//! | `taskwatch_consumer_topic_partitions` | gauge | `topic` | partitions the topic has (broker metadata) |
//! | `taskwatch_consumer_last_processed_timestamp_seconds` | gauge | `topic` | Unix time this member last finished a message (its start until the first) |
//! | `taskwatch_consumer_rejoins_total` | counter | | times the group guard left and rejoined the group (see below) |
//!
//! Sampled gauges are updated every `KAFKA_LAG_INTERVAL`. A member that has owned no partition for twice
//! `KAFKA_SESSION_TIMEOUT` while the group owes it some leaves the group and joins again: tansu 0.6.0 can leave a
//! member that came back inside its session timeout without partitions for ever. The analysis, its evidence and
//! why this remedy rather than static membership are in the `consumer::group_watch` module's documentation.
//!
//! # Environment variables
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `KAFKA_BROKERS` | required | bootstrap servers, `host:port[,host:port…]` |
//! | `KAFKA_CLIENT_ID` | service name | client id shown to the broker |
//! | `KAFKA_GROUP_ID` | service name | consumer group (shared by a service's replicas) |
//! | `KAFKA_TOPIC_PARTITIONS` | `3` | partitions of topics created at start-up (1–1000) |
//! | `KAFKA_TOPIC_REPLICATION_FACTOR` | `1` | replicas of topics created at start-up |
//! | `KAFKA_REQUEST_TIMEOUT` | `10s` | admin, metadata and socket timeout |
//! | `KAFKA_DELIVERY_TIMEOUT` | `30s` | how long `send` waits for an acknowledgement |
//! | `KAFKA_SESSION_TIMEOUT` | `10s` | group session timeout |
//! | `KAFKA_COMMIT_INTERVAL` | `1s` | how often processed offsets are committed |
//! | `KAFKA_RETRY_BACKOFF_INITIAL` / `KAFKA_RETRY_BACKOFF_MAX` | `200ms` / `30s` | jittered backoff between handler retries |
//! | `KAFKA_LAG_INTERVAL` | `15s` | how often consumer lag is measured |
//!
//! # Consuming
//!
//! ```no_run
//! use messaging::{HandlerError, IncomingMessage, KafkaConfig, Subscription, TopicSpec};
//! # async fn demo(config: KafkaConfig, shutdown: observability::Shutdown) -> Result<(), Box<dyn std::error::Error>> {
//! messaging::ensure_topics(&config, &[TopicSpec::new("task-events"), TopicSpec::new("task-events.dlq")]).await?;
//! let subscription = Subscription::new(["task-events"], "task-events.dlq").expect("distinct topics");
//! messaging::run(&config, subscription, |message: IncomingMessage| async move {
//!     // Decode `message.event`, write to the database in one transaction, dedupe on the event id…
//!     // `Err(HandlerError::retry(..))` when the database is down, `reject` when the event is invalid.
//!     let _ = message;
//!     Ok::<(), HandlerError>(())
//! }, shutdown).await?;
//! # Ok(()) }
//! ```

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod client_context;
pub mod config;
mod consumer;
mod error;
pub mod headers;
pub mod metric_names;
mod producer;
mod tail;
#[cfg(feature = "test-util")]
pub mod test_util;
mod topics;

pub use config::{Brokers, KafkaConfig, Partitions, ReplicationFactor};
pub use consumer::{
    Consumer, ConsumerError, Failure, Handler, HandlerError, HandlerFailure, IncomingMessage, Subscription, run,
};
pub use error::{ClientError, ConsumeError, TopicError, TopicsNotReady};
pub use headers::MessageHeaders;
pub use producer::{BrokerUnreachable, Delivery, OutgoingMessage, Producer, PublishError};
pub use tail::{PartitionStart, TailError, TopicTail};
pub use topics::{TopicSpec, ensure_topics, ensure_topics_within};
