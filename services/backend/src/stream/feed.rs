//! The feed: every `task-events` change into the hub, in every replica.
//!
//! A [`TopicTail`] rather than a consumer group, because each replica must see every change for the streams
//! connected to it (a group would give each change to one replica only). It starts at the beginning of the resume
//! window, so a replica that has just started can resume a stream another replica served, and it commits nothing:
//! the log it fills lives in memory and is rebuilt from the topic at every start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use events::task::TaskEvent;
use messaging::{IncomingMessage, KafkaConfig, TailError, TopicTail};
use observability::Shutdown;
use observability::backoff::Backoff;
use opentelemetry::trace::TraceContextExt as _;

use super::hub::{Hub, StreamEvent};
use crate::api::dto::TaskChangeMessage;
use crate::domain::OwnerId;
use crate::{metrics, snapshot};

/// Reads `task-events` into `hub` until `shutdown`, then closes every stream.
///
/// Start-up failures (broker down, topic missing) are retried with `retry` until they succeed; read errors are
/// logged and retried, the tail reconnecting by itself. `taskwatch_task_stream_feed_up` is 0 meanwhile.
pub async fn run(
    kafka: KafkaConfig,
    hub: Arc<Hub>,
    resume_window: Duration,
    shutdown: Shutdown,
) -> Result<(), TailError> {
    metrics::stream_feed(false, None);
    let tail = TopicTail::new(&kafka, events::topics::TASK_EVENTS)?;
    let retry = kafka.retry_backoff;
    let reading = async {
        start(&tail, &hub, resume_window, retry).await;
        follow(&tail, &hub, kafka.lag_interval, retry).await;
    };
    tokio::select! {
        () = shutdown.requested() => {}
        () = reading => {}
    }
    hub.close();
    Ok(())
}

/// Assigns the topic's partitions from the start of the resume window, retrying until the broker answers.
async fn start(tail: &TopicTail, hub: &Hub, resume_window: Duration, retry: Backoff) {
    let mut delays = retry.delays();
    loop {
        let since = SystemTime::now() - resume_window;
        match tail.start_at(since).await {
            Ok(started) => {
                hub.read_from(DateTime::<Utc>::from(since));
                tracing::info!(partitions = started.len(), "task stream feed started");
                metrics::stream_feed(true, None);
                return;
            }
            Err(error) => {
                let delay = delays.next_delay();
                tracing::warn!(error = %observability::ErrorChain(&error), retry_in_ms = delay.as_millis(), "task stream feed cannot start yet");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Publishes every change the tail reads, and samples its lag every `lag_interval`.
///
/// The two run side by side, never one after the other: a lag sample is a few broker round trips, each of which
/// can wait behind the tail's own long-polling fetch, and reading paused for them would delay every stream (and
/// let a resume on this replica give up on an id it was about to read).
async fn follow(tail: &TopicTail, hub: &Hub, lag_interval: Duration, retry: Backoff) {
    tokio::join!(read(tail, hub, retry), sample_lag(tail, lag_interval));
}

/// Publishes every change the tail reads; a read error marks the feed down until a later read or sample succeeds.
async fn read(tail: &TopicTail, hub: &Hub, retry: Backoff) {
    let mut delays = retry.delays();
    loop {
        match tail.recv().await {
            Ok(message) => {
                delays = retry.delays();
                if let Some(event) = stream_event(message) {
                    hub.publish(event);
                }
            }
            Err(error) => {
                let delay = delays.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "reading task-events for the task stream failed");
                metrics::stream_feed(false, None);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Samples the tail's lag every `lag_interval`; a broker that does not answer marks the feed down.
async fn sample_lag(tail: &TopicTail, lag_interval: Duration) {
    let mut sample = tokio::time::interval(lag_interval);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        sample.tick().await;
        match tail.lag().await {
            Ok(lag) => metrics::stream_feed(true, Some(lag)),
            Err(error) => {
                tracing::warn!(%error, "the task stream feed cannot reach the broker");
                metrics::stream_feed(false, None);
            }
        }
    }
}

/// Why a `task-events` message is not shown on the streams. Such events are the group consumers' to dead-letter;
/// a stream just does not show them.
#[derive(Debug, thiserror::Error)]
enum Unstreamable {
    /// Not a task change this version reads.
    #[error("not a task change")]
    NotATaskChange(#[from] events::DecodeError),
    /// The owner id is not one the API accepts.
    #[error("the task has no valid owner")]
    InvalidOwner,
    /// The task does not pass the domain's checks.
    #[error("the task is invalid")]
    InvalidTask(#[from] crate::domain::InvalidStoredTask),
    /// The message could not be written as JSON.
    #[error("the change cannot be written as JSON")]
    Json(#[from] serde_json::Error),
}

/// Makes the change of `message` a stream event, or logs why it is skipped.
fn stream_event(message: IncomingMessage) -> Option<StreamEvent> {
    let event_id = message.event.id;
    to_stream_event(message)
        .inspect_err(|error| {
            tracing::warn!(%event_id, error = %observability::ErrorChain(error), "the task stream skips a task-events message");
        })
        .ok()
}

fn to_stream_event(message: IncomingMessage) -> Result<StreamEvent, Unstreamable> {
    let producer = message.headers.extract_context().span().span_context().clone();
    let event = message.event.into_typed::<TaskEvent>()?;
    let owner = OwnerId::parse(&event.data.task.owner_id).map_err(|_| Unstreamable::InvalidOwner)?;
    let task = snapshot::from_snapshot(event.data.task)?;
    let data = serde_json::to_string(&TaskChangeMessage::new(event.id, event.data.change, event.time, &task))?;
    Ok(StreamEvent { id: event.id, owner, time: event.time, data, producer: producer.is_valid().then_some(producer) })
}
