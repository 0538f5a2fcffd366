//! A client of the task stream (`GET /v1/tasks/stream`) for tests. The events are parsed by `eventsource-stream`,
//! an SSE parser written independently of the server's writer, and kept for the test to wait on.

use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use serde_json::Value;
use testkit::collected::Collected;
use tokio::task::JoinHandle;

/// One event as the client parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedEvent {
    /// The SSE `id`: the change's id, what `Last-Event-ID` takes.
    pub id: String,
    /// The SSE `data`, parsed as JSON (`Value::Null` when it is not JSON, which a test then reports).
    pub data: Value,
    /// The SSE `retry` the event carried, if any.
    pub retry: Option<Duration>,
}

impl StreamedEvent {
    /// The change's kind (`created`, `updated`, …).
    pub fn change(&self) -> &str {
        self.data["change"].as_str().unwrap_or_default()
    }

    /// The changed task's id.
    pub fn task_id(&self) -> &str {
        self.data["task"]["id"].as_str().unwrap_or_default()
    }
}

/// The server refused to open the stream.
#[derive(Debug)]
pub struct Refusal {
    /// The status it answered with.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The body, parsed as JSON (a problem document).
    pub body: Value,
}

/// An open task stream, read in the background until it ends or is dropped.
#[derive(Debug)]
pub struct TaskStreamClient {
    /// The `Content-Type` the server answered with.
    pub content_type: String,
    events: Arc<Collected<StreamedEvent>>,
    reader: JoinHandle<()>,
}

impl TaskStreamClient {
    /// Opens `user`'s stream at `base_url` with `token`, resuming after `last_event_id` when given. `Err` with the
    /// server's answer when it refused (any status but 200).
    pub async fn open(base_url: &str, token: &str, last_event_id: Option<&str>) -> Result<Self, Refusal> {
        let mut request = reqwest::Client::new().get(format!("{base_url}/v1/tasks/stream")).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.map_err(|error| Refusal {
            status: 0,
            content_type: String::new(),
            retry_after: None,
            body: Value::String(error.to_string()),
        })?;
        let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").unwrap_or_default();
        if response.status() != 200 {
            let (status, retry_after) = (response.status().as_u16(), header("retry-after"));
            let body = response.json().await.unwrap_or(Value::Null);
            return Err(Refusal { status, content_type, retry_after, body });
        }
        let events = Arc::new(Collected::new());
        let sink = Arc::clone(&events);
        let reader = tokio::spawn(async move {
            let mut stream = response.bytes_stream().eventsource();
            while let Some(Ok(event)) = stream.next().await {
                sink.push(StreamedEvent {
                    id: event.id,
                    data: serde_json::from_str(&event.data).unwrap_or(Value::Null),
                    retry: event.retry,
                });
            }
            sink.finish();
        });
        Ok(Self { content_type, events, reader })
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<StreamedEvent> {
        self.events.snapshot()
    }

    /// Waits until `count` events have arrived (or the stream ended, or `timeout` passed); returns those received.
    pub async fn wait_for_count(&self, count: usize, timeout: Duration) -> Vec<StreamedEvent> {
        self.events.wait_for_len(count, timeout).await;
        self.events()
    }

    /// Whether the server ended the stream within `timeout`.
    pub async fn wait_until_ended(&self, timeout: Duration) -> bool {
        self.events.wait_until_finished(timeout).await
    }
}

impl Drop for TaskStreamClient {
    fn drop(&mut self) {
        // Dropping the response closes the connection: the server counts a client that went away.
        self.reader.abort();
    }
}
