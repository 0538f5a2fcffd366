//! The at-least-once consumer loop every service runs.
//!
//! One message at a time: receive → decode the CloudEvent → handler → store the offset only after
//! `Ok` (auto-commit then commits stored offsets every `KAFKA_COMMIT_INTERVAL`, on rebalance and at
//! shutdown). A transient failure retries the *same* message after a jittered backoff, so nothing
//! is skipped and each partition's order holds; a permanent failure, or a payload that is not a
//! CloudEvent, goes to the dead-letter topic with the reason before its offset is stored.
//!
//! A crash at any point re-delivers every message whose offset was not stored: handlers dedupe on
//! the event id.
//!
//! A long run of retries blocks the whole consumer (every partition it owns); past
//! `max.poll.interval.ms` (5 min) librdkafka leaves the group and rejoins on the next poll, and the
//! unstored message is delivered again — to this or another replica. Nothing is lost either way.
//!
//! A member the group has left without partitions for longer than twice the session timeout, while the group
//! owes it some, leaves and joins again ([`group_watch`] says why a broker does that, and why this remedy).

mod dead_letter;
mod group_watch;
mod handler;
mod monitor;

use std::sync::Arc;
use std::time::Instant;

use events::CloudEvent;
use observability::{ErrorChain, Shutdown, error_chain};
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use self::dead_letter::dead_letter_message;
use self::group_watch::{BacklogWatch, DescribedGroup, GroupView, GroupWatch, UnownedPartition};
pub use self::handler::{Failure, Handler, HandlerError, HandlerFailure, IncomingMessage};
use crate::client_context::TracingContext;
use crate::config::{KafkaConfig, millis};
use crate::error::ClientError;
use crate::headers::MessageHeaders;
use crate::metric_names::{
    CONSUMER_LAST_PROCESSED_TIMESTAMP_SECONDS, CONSUMER_REJOINS_TOTAL, MESSAGE_PROCESSING_DURATION_SECONDS,
    MESSAGES_CONSUMED_TOTAL, MESSAGES_DEAD_LETTERED_TOTAL, MESSAGES_PRODUCED_TOTAL,
};
use crate::producer::Producer;

/// How often the group guard looks at what this member owns (a local read; the broker is asked only after the
/// member owned nothing for twice the session timeout).
const GUARD_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// How often a consumer stuck by the fault switch looks whether it was switched off.
const STUCK_RECHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// What a consumer reads, and where it sends what it cannot handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    topics: Vec<String>,
    dead_letter_topic: String,
}

impl Subscription {
    /// `None` when `topics` is empty or includes the dead-letter topic (which would feed rejects
    /// back to the consumer that rejected them).
    pub fn new(
        topics: impl IntoIterator<Item = impl Into<String>>,
        dead_letter_topic: impl Into<String>,
    ) -> Option<Self> {
        let topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        let dead_letter_topic = dead_letter_topic.into();
        (!topics.is_empty() && !topics.contains(&dead_letter_topic)).then_some(Self { topics, dead_letter_topic })
    }

    /// The topics consumed; never empty.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Where permanently failing and undecodable messages go; never one of the consumed topics.
    pub fn dead_letter_topic(&self) -> &str {
        &self.dead_letter_topic
    }
}

/// The consumer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The consumer could not be created from the configuration.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The consumer was created but could not subscribe.
    #[error("subscribing to {topics:?} failed")]
    Subscribe {
        /// The topics it was to subscribe to.
        topics: Vec<String>,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
}

/// One membership in the group: the rdkafka consumer (subscribed) and the task reporting its lag and ownership.
/// Replaced whole when the group guard makes the consumer leave and join again.
struct Member {
    consumer: Arc<StreamConsumer<TracingContext>>,
    /// Stops the monitor when dropped: also when the member is dropped mid-run (an aborted task), so the
    /// monitor's handle on the consumer does not keep a dead member in the group.
    stop_monitor: DropGuard,
    monitor: tokio::task::JoinHandle<()>,
}

impl Member {
    /// Creates a client of group `KAFKA_GROUP_ID`, subscribes it and starts its monitor; connecting and joining
    /// happen in the background, so this succeeds while the broker is down.
    fn join(config: &KafkaConfig, subscription: &Subscription) -> Result<Self, ConsumerError> {
        let mut client = config.client_config();
        client
            .set("group.id", &config.group_id)
            // Offsets are stored by us after the handler succeeded, and committed by librdkafka
            // periodically, on rebalance and on close: stored means processed.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", millis(config.commit_interval))
            // A new group starts from the beginning: a service deployed after events were published
            // must still see them.
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", millis(config.session_timeout))
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer<TracingContext> = client
            .create_with_context(TracingContext)
            .map_err(|source| ClientError { role: "consumer", brokers: config.brokers.to_string(), source })?;
        let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| ConsumerError::Subscribe { topics: subscription.topics.clone(), source })?;
        let consumer = Arc::new(consumer);
        let stop_monitor = CancellationToken::new();
        let monitor = tokio::spawn(monitor::report(
            Arc::clone(&consumer),
            subscription.topics.clone(),
            config.lag_interval,
            config.request_timeout,
            stop_monitor.clone(),
        ));
        Ok(Self { consumer, stop_monitor: stop_monitor.drop_guard(), monitor })
    }

    /// Commits stored offsets and leaves the group (closing blocks, so off the async threads).
    async fn leave(self) {
        let Member { consumer, stop_monitor, monitor } = self;
        drop(stop_monitor);
        let _ = monitor.await;
        let closed = tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => {
                    tracing::warn!(%error, "final offset commit failed; uncommitted messages will be re-delivered")
                }
            }
            // Dropping the last handle closes the consumer: LeaveGroup, then the client is destroyed.
            drop(consumer);
        })
        .await;
        if let Err(error) = closed {
            tracing::warn!(%error, "closing the consumer failed");
        }
    }
}

/// A group member subscribed to its topics, ready to [`run`](Consumer::run).
pub struct Consumer {
    member: Member,
    dead_letters: Producer,
    subscription: Subscription,
    config: KafkaConfig,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

/// A wait was cut short because the service is stopping.
struct ShutdownRequested;

/// How one message ended.
enum Disposition {
    /// Handled, or dead-lettered: its offset may be stored.
    Done,
    /// Shutdown came while it was being retried: left unstored, so it is delivered again.
    Abandoned,
}

/// What woke the consumer loop.
enum Woken {
    Shutdown,
    GuardTick,
    Received(Result<OwnedMessage, KafkaError>),
}

impl Consumer {
    /// Creates the consumer (group `KAFKA_GROUP_ID`) and subscribes; connecting happens in the
    /// background, so this succeeds while the broker is down.
    pub fn new(config: &KafkaConfig, subscription: Subscription) -> Result<Self, ConsumerError> {
        let member = Member::join(config, &subscription)?;
        let dead_letters = Producer::new(config)?;
        Ok(Self { member, dead_letters, subscription, config: config.clone() })
    }

    /// Consumes until `shutdown` fires, then commits what was processed and leaves the group.
    ///
    /// A handler attempt in progress at shutdown is allowed to finish; a message waiting for a
    /// retry is abandoned unstored (delivered again after restart).
    pub async fn run<H: Handler>(mut self, handler: H, shutdown: Shutdown) {
        tracing::info!(topics = ?self.subscription.topics, group = %self.config.group_id, "consumer started");
        self.start_series();
        let mut guard = GroupWatch::new(self.config.session_timeout, Instant::now());
        let mut backlog = BacklogWatch::default();
        let mut guard_ticks = tokio::time::interval(GUARD_TICK.min(self.config.session_timeout));
        guard_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut receive_errors = self.config.retry_backoff.delays();
        loop {
            // Demo fault (observability::faults): a stuck consumer takes no message, so its lag grows.
            if observability::faults::consumer_fault().stuck && self.wait_while_stuck(&shutdown).await.is_err() {
                break;
            }
            let woken = tokio::select! {
                biased;
                () = shutdown.requested() => Woken::Shutdown,
                _ = guard_ticks.tick() => Woken::GuardTick,
                received = self.member.consumer.recv() => Woken::Received(received.map(|message| message.detach())),
            };
            let message = match woken {
                Woken::Shutdown => break,
                Woken::GuardTick => {
                    self.guard_membership(&mut guard, &mut backlog).await;
                    continue;
                }
                Woken::Received(Ok(message)) => message,
                Woken::Received(Err(error)) => {
                    // Broker unreachable, unknown topic, …: librdkafka recovers on its own; do not spin.
                    tracing::warn!(%error, "receiving from Kafka failed");
                    if self.pause(receive_errors.next_delay(), &shutdown).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            receive_errors = self.config.retry_backoff.delays();
            match self.process(&message, &handler, &shutdown).await {
                Disposition::Done => {
                    self.store_offset(&message);
                    metrics::gauge!(CONSUMER_LAST_PROCESSED_TIMESTAMP_SECONDS, "topic" => message.topic().to_owned())
                        .set(unix_now());
                }
                Disposition::Abandoned => break,
            }
        }
        self.close().await;
    }

    /// Every series an alert or SLO reads starts at zero for each subscribed topic and outcome, so the first
    /// dead letter after a start is an increase that `increase()` sees, not the birth of a series. (The
    /// assigned-partitions gauge comes from the monitor's first sample, taken at once.)
    fn start_series(&self) {
        for topic in &self.subscription.topics {
            for outcome in ["ok", "retried", "dead_lettered"] {
                metrics::counter!(MESSAGES_CONSUMED_TOTAL, "topic" => topic.clone(), "outcome" => outcome).increment(0);
            }
            metrics::counter!(MESSAGES_DEAD_LETTERED_TOTAL, "topic" => topic.clone()).increment(0);
            metrics::gauge!(CONSUMER_LAST_PROCESSED_TIMESTAMP_SECONDS, "topic" => topic.clone()).set(unix_now());
        }
        for outcome in ["ok", "error"] {
            let topic = self.subscription.dead_letter_topic.clone();
            metrics::counter!(MESSAGES_PRODUCED_TOTAL, "topic" => topic, "outcome" => outcome).increment(0);
        }
        metrics::counter!(CONSUMER_REJOINS_TOTAL).increment(0);
    }

    /// The group guard (see [`group_watch`]): when this member has owned nothing for too long and the group
    /// owes it partitions, or a partition it does not own has work that nobody takes, it leaves the group and
    /// joins again.
    async fn guard_membership(&mut self, guard: &mut GroupWatch, backlog: &mut BacklogWatch) {
        let owned = monitor::owned_partitions(&self.member.consumer, &self.subscription.topics).values().sum();
        let why = if guard.observe(owned, Instant::now()) {
            self.group_owes_this_member(guard).await
        } else if backlog.due(self.config.session_timeout / 2, Instant::now()) {
            self.unconsumed_backlog(backlog).await
        } else {
            None
        };
        let Some(why) = why else {
            return;
        };
        tracing::warn!(group = %self.config.group_id, reason = %why, "leaving the consumer group and joining again");
        match Member::join(&self.config, &self.subscription) {
            Ok(fresh) => {
                let stale = std::mem::replace(&mut self.member, fresh);
                stale.leave().await;
                metrics::counter!(CONSUMER_REJOINS_TOTAL).increment(1);
            }
            Err(error) => tracing::warn!(%error, "cannot create a consumer to rejoin with; trying again later"),
        }
        guard.rejoined(Instant::now());
        backlog.rejoined();
    }

    /// Why this member, idle for too long, should rejoin: the group owes it partitions. `None` when it does not.
    async fn group_owes_this_member(&self, guard: &mut GroupWatch) -> Option<String> {
        let consumer = Arc::clone(&self.member.consumer);
        let (group, topics, timeout) =
            (self.config.group_id.clone(), self.subscription.topics.clone(), self.config.request_timeout);
        let view = match tokio::task::spawn_blocking(move || group_view(&consumer, &group, &topics, timeout)).await {
            Ok(view) => view,
            Err(error) => {
                tracing::warn!(%error, "looking at the consumer group failed");
                guard.group_is_fine(Instant::now());
                return None;
            }
        };
        if !view.owes_this_member_partitions() {
            guard.group_is_fine(Instant::now());
            return None;
        }
        Some(format!(
            "this consumer has owned no partition for more than {} ms while the group owes it some (group {}, {} \
             members, {} partitions)",
            guard.patience().as_millis(),
            view.described.as_ref().map_or("not described", |group| group.state.as_str()),
            view.described.as_ref().map_or_else(|| "unknown".to_owned(), |group| group.members.to_string()),
            view.partitions,
        ))
    }

    /// Why this member should rejoin: partitions it does not own have work that has not moved for the patience
    /// (at least two commit intervals, so a consuming member has committed meanwhile). `None` when none has.
    async fn unconsumed_backlog(&self, backlog: &mut BacklogWatch) -> Option<String> {
        let consumer = Arc::clone(&self.member.consumer);
        let (topics, timeout) = (self.subscription.topics.clone(), self.config.request_timeout);
        let sample = tokio::task::spawn_blocking(move || unowned_partitions(&consumer, &topics, timeout)).await.ok()?;
        let base = self.config.session_timeout.saturating_mul(2).max(self.config.commit_interval.saturating_mul(2));
        let patience = backlog.patience(base);
        let stalled = backlog.observe(&sample, patience, Instant::now());
        (!stalled.is_empty()).then(|| {
            format!(
                "work waits in partitions this consumer does not own and nobody has taken it for more than {} ms: {}",
                patience.as_millis(),
                stalled.join(", ")
            )
        })
    }

    async fn process<H: Handler>(&self, message: &OwnedMessage, handler: &H, shutdown: &Shutdown) -> Disposition {
        let started = Instant::now();
        let topic = message.topic().to_owned();
        let headers = MessageHeaders::from_kafka(message.headers());
        let span = self.consumer_span(message);
        // Fails only without an OpenTelemetry layer, when there is no trace to continue anyway.
        let _ = span.set_parent(headers.extract_context());

        let disposition = async {
            // Demo fault (observability::faults): a slow consumer, inside the span so traces show the wait.
            let delay = observability::faults::consumer_fault().delay;
            if !delay.is_zero() && self.pause(delay, shutdown).await.is_err() {
                return Disposition::Abandoned;
            }
            let event = match CloudEvent::decode(message.payload().unwrap_or_default()) {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "message is not a CloudEvent; dead-lettering it");
                    observability::record_exception(&tracing::Span::current(), &error);
                    return self.dead_letter(message, &format!("undecodable: {error}"), shutdown).await;
                }
            };
            tracing::Span::current().record("messaging.message.id", event.id.to_string());
            let incoming = IncomingMessage::read(message, headers, event);
            let mut backoff = self.config.retry_backoff.delays();
            loop {
                match handler.handle(incoming.clone()).await {
                    Ok(()) => {
                        metrics::counter!(MESSAGES_CONSUMED_TOTAL, "topic" => topic.clone(), "outcome" => "ok")
                            .increment(1);
                        return Disposition::Done;
                    }
                    Err(error) if error.failure() == Failure::Transient => {
                        metrics::counter!(MESSAGES_CONSUMED_TOTAL, "topic" => topic.clone(), "outcome" => "retried")
                            .increment(1);
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            error = %ErrorChain(&error),
                            retry_in_ms = delay.as_millis(),
                            "handler failed transiently; retrying"
                        );
                        if self.pause(delay, shutdown).await.is_err() {
                            tracing::info!("shutdown while retrying; message left uncommitted");
                            return Disposition::Abandoned;
                        }
                    }
                    Err(error) => {
                        let reason = error_chain(&error);
                        tracing::warn!(reason, "handler rejected the message; dead-lettering it");
                        observability::record_exception(&tracing::Span::current(), &error);
                        return self.dead_letter(message, &reason, shutdown).await;
                    }
                }
            }
        }
        .instrument(span.clone())
        .await;

        if matches!(disposition, Disposition::Abandoned) {
            span.record("otel.status_code", "error");
            span.record("error.type", "abandoned");
        }
        metrics::histogram!(MESSAGE_PROCESSING_DURATION_SECONDS, "topic" => topic).record(started.elapsed());
        disposition
    }

    /// Publishes the dead-letter copy, retrying until the broker has it: the original's offset is
    /// stored only after that, so a message is never lost on its way to the dead-letter topic.
    async fn dead_letter(&self, message: &OwnedMessage, reason: &str, shutdown: &Shutdown) -> Disposition {
        let topic = message.topic().to_owned();
        let copy = dead_letter_message(message, &self.subscription.dead_letter_topic, &self.config.group_id, reason);
        let mut backoff = self.config.retry_backoff.delays();
        loop {
            match self.dead_letters.send(copy.clone()).await {
                Ok(_) => {
                    let span = tracing::Span::current();
                    span.record("otel.status_code", "error");
                    span.record("error.type", "dead_lettered");
                    metrics::counter!(MESSAGES_CONSUMED_TOTAL, "topic" => topic.clone(), "outcome" => "dead_lettered")
                        .increment(1);
                    metrics::counter!(MESSAGES_DEAD_LETTERED_TOTAL, "topic" => topic).increment(1);
                    return Disposition::Done;
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %error.source, retry_in_ms = delay.as_millis(), "dead-lettering failed; retrying");
                    if self.pause(delay, shutdown).await.is_err() {
                        return Disposition::Abandoned;
                    }
                }
            }
        }
    }

    /// Marks `message` processed; auto-commit sends it to the broker.
    fn store_offset(&self, message: &OwnedMessage) {
        // librdkafka stores `offset + 1`, the next message to read.
        if let Err(error) = self.member.consumer.store_offset(message.topic(), message.partition(), message.offset()) {
            // The partition was revoked meanwhile: its new owner gets the message again (handlers dedupe).
            tracing::warn!(
                %error,
                topic = message.topic(),
                partition = message.partition(),
                offset = message.offset(),
                "could not store the offset of a processed message"
            );
        }
    }

    /// Waits until the demo "stuck consumer" fault is switched off, or shutdown is requested. Past
    /// `max.poll.interval.ms` librdkafka leaves the group; the next `recv` rejoins it.
    async fn wait_while_stuck(&self, shutdown: &Shutdown) -> Result<(), ShutdownRequested> {
        tracing::warn!("consumer stuck by the fault switch; taking no messages");
        while observability::faults::consumer_fault().stuck {
            self.pause(STUCK_RECHECK, shutdown).await?;
        }
        tracing::info!("consumer unstuck by the fault switch");
        Ok(())
    }

    /// Sleeps for `delay`, unless shutdown is requested first.
    async fn pause(&self, delay: std::time::Duration, shutdown: &Shutdown) -> Result<(), ShutdownRequested> {
        tokio::select! {
            () = shutdown.requested() => Err(ShutdownRequested),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Commits stored offsets, leaves the group and flushes the dead-letter producer.
    async fn close(self) {
        self.member.leave().await;
        let dead_letters = self.dead_letters;
        let request_timeout = self.config.request_timeout;
        let flushed = tokio::task::spawn_blocking(move || dead_letters.flush(request_timeout)).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "flushing the dead-letter producer failed"),
            Err(error) => tracing::warn!(%error, "flushing the dead-letter producer failed"),
        }
        tracing::info!("consumer stopped");
    }

    /// OTel messaging semconv: span `process {destination}`, kind consumer.
    fn consumer_span(&self, message: &OwnedMessage) -> tracing::Span {
        tracing::info_span!(
            "kafka.process",
            otel.name = %format_args!("process {}", message.topic()),
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %message.topic(),
            messaging.destination.partition.id = %message.partition(),
            messaging.consumer.group.name = %self.config.group_id,
            messaging.kafka.offset = message.offset(),
            messaging.message.id = Empty,
            error.type = Empty,
        )
    }
}

/// What the broker says of `group` (its state and member count) and the largest partition count among `topics`.
fn group_view(
    consumer: &StreamConsumer<TracingContext>,
    group: &str,
    topics: &[String],
    timeout: std::time::Duration,
) -> GroupView {
    let partitions =
        topics.iter().filter_map(|topic| monitor::topic_partitions(consumer, topic, timeout)).max().unwrap_or(0);
    let described = match consumer.fetch_group_list(Some(group), timeout) {
        Ok(groups) => groups.groups().iter().find(|described| described.name() == group).map(|described| {
            DescribedGroup { state: described.state().to_owned(), members: described.members().len() }
        }),
        Err(error) => {
            tracing::debug!(%error, group, "the broker could not describe the consumer group");
            None
        }
    };
    GroupView { partitions, described }
}

/// The partitions of `topics` this member does not own, with the group's committed offset and their ends;
/// partitions the broker does not answer for are left out.
fn unowned_partitions(
    consumer: &StreamConsumer<TracingContext>,
    topics: &[String],
    timeout: std::time::Duration,
) -> Vec<UnownedPartition> {
    let owned = consumer.assignment().unwrap_or_default();
    let mut wanted = TopicPartitionList::new();
    for topic in topics {
        let partitions = monitor::topic_partitions(consumer, topic, timeout).unwrap_or(0);
        for partition in 0..i32::try_from(partitions).unwrap_or(i32::MAX) {
            if owned.find_partition(topic, partition).is_none() {
                wanted.add_partition(topic, partition);
            }
        }
    }
    if wanted.count() == 0 {
        return Vec::new();
    }
    let committed = match consumer.committed_offsets(wanted, timeout) {
        Ok(committed) => committed,
        Err(error) => {
            tracing::debug!(%error, "could not read the group's committed offsets");
            return Vec::new();
        }
    };
    committed
        .elements()
        .iter()
        .filter_map(|element| {
            let (low, high) = consumer.fetch_watermarks(element.topic(), element.partition(), timeout).ok()?;
            let committed = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            Some(UnownedPartition {
                topic: element.topic().to_owned(),
                partition: element.partition(),
                committed,
                low,
                high,
            })
        })
        .collect()
}

/// Seconds since the Unix epoch, for timestamp gauges.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

/// [`Consumer::new`] then [`Consumer::run`]: consumes `subscription` with `handler` until `shutdown`.
pub async fn run<H: Handler>(
    config: &KafkaConfig,
    subscription: Subscription,
    handler: H,
    shutdown: Shutdown,
) -> Result<(), ConsumerError> {
    Consumer::new(config, subscription)?.run(handler, shutdown).await;
    Ok(())
}
