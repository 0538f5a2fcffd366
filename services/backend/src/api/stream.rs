//! `GET /v1/tasks/stream`: the caller's task changes as Server-Sent Events (see [`crate::stream`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::Stream;
use observability::{Problem, ProblemType};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use crate::metrics;
use crate::stream::{Hub, Refused, StreamEvent, Subscription};

/// The request header a reconnecting client sends with the id of the last event it got.
const LAST_EVENT_ID: &str = "last-event-id";

/// What the stream handler needs: the hub and how streams behave.
#[derive(Debug, Clone)]
pub struct TaskStream {
    /// The hub the feed fills.
    pub hub: Arc<Hub>,
    /// How often an idle stream gets a heartbeat comment.
    pub heartbeat: Duration,
    /// The reconnection delay clients are asked to wait (SSE `retry`).
    pub reconnect: Duration,
}

/// Stream the caller's task changes (Server-Sent Events).
///
/// Each event's `data` is a `TaskChangeMessage` and its `id` the change's id. Reconnect with `Last-Event-ID` to
/// get every later change once; ids older than the resume window (`TASK_STREAM_RESUME_WINDOW`, 10 minutes by
/// default) are answered 410: list the tasks again and reconnect without it. Idle streams get a `: heartbeat`
/// comment every `TASK_STREAM_HEARTBEAT` (15 s).
#[utoipa::path(
    get, path = "/v1/tasks/stream", tag = "stream",
    params(("Last-Event-ID" = Option<String>, Header, format = Uuid,
        description = "Resume after this change: the `id` of the last event received")),
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's `data` is one change",
            content_type = "text/event-stream", body = super::dto::TaskChangeMessage),
        (status = 400, description = "Last-Event-ID is not an event id", content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 410, description = "Last-Event-ID is outside the resume window", content_type = "application/problem+json"),
        (status = 429, description = "Too many streams open for this user, or rate limited; see Retry-After",
            content_type = "application/problem+json"),
        (status = 503, description = "The stream is off, the server serves as many streams as it may, a resume \
            came before the stream reached the broker, or the server is shutting down; see Retry-After",
            content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn stream_tasks(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(stream) = state.stream else {
        return Err(Problem::service_unavailable(
            "The task stream is switched off on this server (TASK_STREAM_ENABLED, KAFKA_BROKERS).",
        )
        .into());
    };
    let resume_after = last_event_id(&request_headers)?;
    let subscription = stream.hub.subscribe(&owner, resume_after).await.map_err(refusal)?;
    let events = sse_events(subscription, stream.reconnect, tracing::Span::current());
    let mut response =
        Sse::new(events).keep_alive(KeepAlive::new().interval(stream.heartbeat).text("heartbeat")).into_response();
    // Proxies that buffer (nginx) would hold events back; caches must not keep an endless answer.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `Last-Event-ID` as an event id; `None` when absent. Anything but a UUID is a 400.
fn last_event_id(request_headers: &HeaderMap) -> Result<Option<Uuid>, ApiError> {
    let Some(value) = request_headers.get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    value.to_str().ok().and_then(|text| Uuid::parse_str(text.trim()).ok()).map(Some).ok_or_else(|| {
        Problem::bad_request("Last-Event-ID must be the `id` of an event this stream sent (a UUID).").into()
    })
}

/// The problem that tells the client why its stream was not opened and what to do.
fn refusal(refused: Refused) -> ApiError {
    match refused {
        Refused::UserLimit { limit } => Problem::too_many_requests(5)
            .with_detail(format!("You have {limit} task streams open already; close one first.")),
        Refused::TotalLimit { limit } => {
            Problem::service_unavailable(format!("This server serves {limit} task streams already; retry later."))
                .with_retry_after(5)
        }
        Refused::Gone { id } => Problem::of(ProblemType::Gone).with_detail(format!(
            "Event {id} is not within the stream's resume window: list your tasks again and reconnect without \
             Last-Event-ID."
        )),
        Refused::Starting => Problem::service_unavailable(
            "The stream cannot resume yet: it has not reached the event broker since this server started. Retry.",
        )
        .with_retry_after(2),
        Refused::Closed => Problem::service_unavailable("The server is shutting down; reconnect.").with_retry_after(1),
    }
    .into()
}

/// The replay, then the live changes, as SSE events; the registration lives (and the stream stays counted as
/// open) exactly as long as the response body.
fn sse_events(
    subscription: Subscription,
    reconnect: Duration,
    request: tracing::Span,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let Subscription { replay, live, registration } = subscription;
    let state = (replay.into_iter(), live, registration, true);
    futures::stream::unfold(state, move |(mut replay, mut live, registration, first)| {
        let request = request.clone();
        async move {
            let event = match replay.next() {
                Some(event) => event,
                None => live.recv().await?,
            };
            let mut sse = send(&event, &request);
            if first {
                sse = sse.retry(reconnect);
            }
            Some((Ok(sse), (replay, live, registration, false)))
        }
    })
}

/// One change as an SSE event, with its span (linked to the trace that made the change) and metrics.
fn send(event: &StreamEvent, request: &tracing::Span) -> Event {
    let span = tracing::info_span!(parent: request, "task_stream.send", "messaging.message.id" = %event.id);
    if let Some(producer) = &event.producer {
        span.add_link(producer.clone());
    }
    let _entered = span.enter();
    let lag = (Utc::now() - event.time).to_std().unwrap_or_default();
    metrics::stream_event_sent(lag);
    Event::default().id(event.id.to_string()).data(&event.data)
}
