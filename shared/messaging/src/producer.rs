//! The idempotent producer every service publishes with.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use opentelemetry::trace::TraceContextExt as _;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use serde_json::Error as JsonError;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::client_context::TracingContext;
use crate::config::{KafkaConfig, millis};
use crate::error::ClientError;
use crate::headers::MessageHeaders;
use crate::metric_names::MESSAGES_PRODUCED_TOTAL;

/// How long `send` waits for room in librdkafka's local queue before failing; the queue only fills
/// when the broker has been unreachable for a long time.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Where the message goes; services create their topics at start-up ([`crate::ensure_topics_within`]).
    pub topic: String,
    /// Messages with the same key go to the same partition, in order (e.g. the task id).
    pub key: Option<Vec<u8>>,
    /// The message value, e.g. a CloudEvent as JSON ([`OutgoingMessage::event`]).
    pub payload: Vec<u8>,
    /// A `traceparent` already here (e.g. stored with an outbox row) becomes the producer span's
    /// parent; otherwise the current span is. Either way the header is replaced by the producer span's.
    pub headers: MessageHeaders,
}

impl OutgoingMessage {
    /// A message for `topic` under `key`, without headers.
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>, payload: impl Into<Vec<u8>>) -> Self {
        Self { topic: topic.into(), key: Some(key.into()), payload: payload.into(), headers: MessageHeaders::new() }
    }

    /// A CloudEvent as JSON, keyed by `key`.
    pub fn event<T: serde::Serialize>(
        topic: impl Into<String>,
        key: impl Into<Vec<u8>>,
        event: &events::CloudEvent<T>,
    ) -> Result<Self, JsonError> {
        Ok(Self::new(topic, key, event.to_bytes()?))
    }

    /// Replaces the headers, e.g. with the trace context stored with an outbox row.
    pub fn with_headers(mut self, headers: MessageHeaders) -> Self {
        self.headers = headers;
        self
    }
}

/// Where the broker stored an acknowledged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The partition the message was written to.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

/// A message was not acknowledged: nothing can be assumed about whether the broker has it (an
/// idempotent producer makes a resend safe).
#[derive(Debug, thiserror::Error)]
#[error("publishing to `{topic}` failed")]
pub struct PublishError {
    /// The topic the message was for.
    pub topic: String,
    /// librdkafka's error, e.g. the delivery timeout expired.
    #[source]
    pub source: KafkaError,
}

/// No broker answered a metadata request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kafka broker unreachable: {0}")]
pub struct BrokerUnreachable(pub String);

/// An idempotent producer (`enable.idempotence`, `acks=all`): librdkafka's retries never duplicate or
/// reorder messages within a partition. Cheap to clone; clones share one connection pool.
///
/// It recovers by itself after an outage. A send that failed may leave librdkafka's idempotent state
/// (producer id and per-partition sequence numbers) out of step with the broker — a fatal or fenced
/// producer on Apache Kafka, an "unknown broker error" on every later send with tansu — and no later
/// send could then succeed. So after a failure that is not about the message itself, the underlying
/// client is replaced by a fresh one (a new producer id) for the *next* send; sends already in flight
/// finish on the old client, which is dropped with its last send. Callers just retry.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

struct Shared {
    settings: ClientConfig,
    brokers: String,
    current: RwLock<Generation>,
}

/// One underlying client; `number` tells concurrent failures of the same client apart from failures
/// of a client that was already replaced, so one outage replaces it once, not once per failed send.
#[derive(Clone)]
struct Generation {
    number: u64,
    client: FutureProducer<TracingContext>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("brokers", &self.shared.brokers).finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates the producer; it connects lazily, so this succeeds while the broker is down.
    pub fn new(config: &KafkaConfig) -> Result<Self, ClientError> {
        let mut settings = config.client_config();
        settings
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", millis(config.delivery_timeout))
            // Must not exceed the message timeout, or librdkafka refuses the configuration.
            .set("request.timeout.ms", millis(config.request_timeout.min(config.delivery_timeout)))
            .set("linger.ms", "5");
        let brokers = config.brokers.to_string();
        let client = create_client(&settings, &brokers)?;
        let current = RwLock::new(Generation { number: 0, client });
        Ok(Self { shared: Arc::new(Shared { settings, brokers, current }) })
    }

    /// The client sends go through now.
    fn current(&self) -> Generation {
        self.shared.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the client that failed (generation `failed`) unless another failure already did.
    fn replace(&self, failed: u64) {
        let mut current = self.shared.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.number != failed {
            return;
        }
        match create_client(&self.shared.settings, &self.shared.brokers) {
            Ok(client) => {
                *current = Generation { number: failed + 1, client };
                tracing::info!(generation = failed + 1, "Kafka producer replaced after a failed send");
            }
            // Creation only fails on bad settings, which worked the first time; keep what we have.
            Err(error) => tracing::warn!(%error, "cannot replace the Kafka producer; keeping the old one"),
        }
    }

    /// Publishes `message` and waits until the broker acknowledged it (or `KAFKA_DELIVERY_TIMEOUT`
    /// passed). Runs in a producer span whose context travels in the message's headers.
    pub async fn send(&self, message: OutgoingMessage) -> Result<Delivery, PublishError> {
        let span = producer_span(&message.topic);
        let carried = message.headers.extract_context();
        if carried.span().span_context().is_valid() {
            // Fails only without an OpenTelemetry layer, when there is no trace to continue anyway.
            let _ = span.set_parent(carried);
        }
        let mut headers = message.headers;
        headers.inject_context(&observability::edge_sampling::context_of(&span));
        let topic = message.topic;
        let generation = self.current();
        let outcome = async {
            let mut record =
                FutureRecord::<[u8], [u8]>::to(&topic).payload(&message.payload).headers(headers.to_kafka());
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            generation.client.send(record, Timeout::After(QUEUE_TIMEOUT)).await
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Ok(delivery) => {
                span.record("messaging.destination.partition.id", delivery.partition.to_string());
                span.record("messaging.kafka.offset", delivery.offset);
                metrics::counter!(MESSAGES_PRODUCED_TOTAL, "topic" => topic, "outcome" => "ok").increment(1);
                Ok(Delivery { partition: delivery.partition, offset: delivery.offset })
            }
            Err((source, _message)) => {
                span.record("otel.status_code", "error");
                span.record("error.type", error_type(&source));
                tracing::warn!(parent: &span, %source, topic, "message not acknowledged");
                metrics::counter!(MESSAGES_PRODUCED_TOTAL, "topic" => topic.clone(), "outcome" => "error").increment(1);
                if may_leave_client_out_of_step(&source) {
                    self.replace(generation.number);
                }
                Err(PublishError { topic, source })
            }
        }
    }

    /// Whether a broker answers a metadata request within `timeout`: the readiness check of a
    /// service that publishes.
    pub async fn check_broker(&self, timeout: Duration) -> Result<(), BrokerUnreachable> {
        let client = self.current().client;
        // A blocking network call in librdkafka.
        let answered = tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(None, Timeout::After(timeout)).map(drop)
        })
        .await;
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(BrokerUnreachable(source.to_string())),
            Err(join) => Err(BrokerUnreachable(join.to_string())),
        }
    }

    /// [`check_broker`](Self::check_broker) shaped for `observability::Health::with_check("kafka", timeout, …)`:
    /// the readiness check of every service that needs the broker to do its work.
    pub fn readiness_check(
        &self,
        timeout: Duration,
    ) -> impl Fn() -> observability::CheckFuture + Send + Sync + 'static {
        let producer = self.clone();
        move || {
            let producer = producer.clone();
            Box::pin(async move { producer.check_broker(timeout).await.map_err(|error| error.to_string()) })
        }
    }

    /// Waits up to `timeout` for queued messages to be acknowledged; call before exiting.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.current().client.flush(Timeout::After(timeout))
    }
}

fn create_client(settings: &ClientConfig, brokers: &str) -> Result<FutureProducer<TracingContext>, ClientError> {
    settings.create_with_context(TracingContext).map_err(|source| ClientError {
        role: "producer",
        brokers: brokers.to_owned(),
        source,
    })
}

/// Whether a failed send may have left the client's idempotence state out of step with the broker.
/// Errors about the message itself (too large, bad topic, a full local queue) say nothing about the
/// client, so replacing it would only cost a reconnect; everything else (timeouts, fatal and fencing
/// errors, unknown broker errors) does.
fn may_leave_client_out_of_step(error: &KafkaError) -> bool {
    !matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::QueueFull
        )
    )
}

/// OTel messaging semconv: span `send {destination}`, kind producer.
fn producer_span(topic: &str) -> tracing::Span {
    tracing::info_span!(
        "kafka.send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
        error.type = Empty,
    )
}

/// A bounded `error.type` value: the librdkafka error code's name.
pub(crate) fn error_type(error: &KafkaError) -> String {
    error.rdkafka_error_code().map_or_else(|| "kafka_error".to_owned(), |code| format!("{code:?}"))
}
