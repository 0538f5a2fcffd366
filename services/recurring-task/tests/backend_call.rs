//! The handler against the real backend (in process, over real HTTP, on a throwaway Postgres; see `support`):
//! the events are the ones the backend wrote when a user completed a task, and every outcome is checked through
//! the backend's API.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use events::CloudEvent;
use observability::{BreakerState, ClientConfig, Secret, ServiceClient};
use recurring_task::backend::BackendClient;
use recurring_task::decision::SkipReason;
use recurring_task::handler::{CompletionHandler, HandleError, Handled};
use recurring_task::metrics::FailureReason;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{NEXT_DUE, RealBackend, SERVICE_TOKEN, at, daily_task};
use uuid::Uuid;

/// The service's handler calling `backend` with `token`, failing fast so the breaker is easy to drive.
fn handler(backend: &RealBackend, token: &str, failure_threshold: u32) -> CompletionHandler {
    let config = ClientConfig {
        max_retries: 0,
        failure_threshold,
        open_for: Duration::from_secs(60),
        ..ClientConfig::new("backend", backend.base_url().parse().unwrap())
    };
    CompletionHandler::new(BackendClient::new(ServiceClient::new(config).unwrap(), Secret::new(token)))
}

fn assert_transient(error: &HandleError, reason: FailureReason) {
    assert!(matches!(error, HandleError::Transient { .. }), "{error}");
    assert_eq!(error.reason(), reason, "{error}");
}

fn assert_permanent(error: &HandleError, reason: FailureReason) {
    assert!(matches!(error, HandleError::Permanent { .. }), "{error}");
    assert_eq!(error.reason(), reason, "{error}");
}

/// The same completion delivered as another event (another id), as after the backend re-sent it.
fn with_new_id(event: &CloudEvent<Value>) -> CloudEvent<Value> {
    CloudEvent { id: Uuid::now_v7(), ..event.clone() }
}

#[tokio::test]
async fn creates_the_next_occurrence_with_the_service_credential_keyed_by_the_event_id() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;

    let handled = handler(&backend, SERVICE_TOKEN, 5).handle(completed.event.clone()).await.unwrap();

    let Handled::Created(created) = handled else { panic!("expected a created occurrence, got {handled:?}") };
    assert_eq!(created.due_at, Some(at(NEXT_DUE)), "09:00 Berlin after the clocks went forward");
    let occurrences = backend.open_occurrences(completed.series_id()).await;
    assert_eq!(occurrences.len(), 1, "exactly one new open task in the series: {occurrences:?}");
    assert_eq!(occurrences[0]["id"], created.id.to_string());
    assert_eq!(occurrences[0]["due_at"], NEXT_DUE);
    assert_eq!(occurrences[0]["title"], completed.task["title"]);

    // The backend remembers the call under the event id: the same key and body replay its answer.
    let replay = backend
        .as_service(Method::POST, &format!("/internal/v1/series/{}/occurrences", completed.series_id()))
        .header("idempotency-key", completed.event.id.to_string())
        .json(&json!({ "previous_task_id": completed.id(), "due_at": NEXT_DUE }))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "the call carried Idempotency-Key = event id");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], created.id.to_string());
}

#[tokio::test]
async fn a_redelivered_event_creates_nothing_new() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=WEEKLY"))).await;
    let handler = handler(&backend, SERVICE_TOKEN, 5);

    let first = handler.handle(completed.event.clone()).await.unwrap();
    let second = handler.handle(completed.event.clone()).await.unwrap();

    assert!(matches!(first, Handled::Created(_)), "{first:?}");
    assert_eq!(second, first, "the backend replays the first answer");
    let occurrences = backend.open_occurrences(completed.series_id()).await;
    assert_eq!(occurrences.len(), 1, "{occurrences:?}");
    assert_eq!(occurrences[0]["due_at"], "2026-04-04T07:00:00Z", "a week later, 09:00 Berlin summer time");
}

#[tokio::test]
async fn a_backend_that_is_down_is_transient_and_opens_the_breaker() {
    let mut backend = RealBackend::start().await;
    let handler = handler(&backend, SERVICE_TOKEN, 2);
    let before = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    let during = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    // A real call first, so the client holds a connection that the stop must close.
    assert!(matches!(handler.handle(before.event).await.unwrap(), Handled::Created(_)));

    backend.stop().await;
    for _ in 0..2 {
        let error = handler.handle(during.event.clone()).await.unwrap_err();
        assert_transient(&error, FailureReason::BackendUnavailable);
        assert!(error.to_string().contains("could not reach backend"), "refused, not answered: {error}");
    }
    assert_eq!(handler.backend().service_client().breaker_state(), BreakerState::Open);

    // With the backend back, the open circuit still makes no call: nothing is created.
    backend.restart().await;
    let error = handler.handle(during.event.clone()).await.unwrap_err();
    assert_transient(&error, FailureReason::CircuitOpen);
    assert!(backend.open_occurrences(during.series_id()).await.is_empty());
    // The backend is really up: a client with a closed circuit gets the occurrence.
    let fresh = self::handler(&backend, SERVICE_TOKEN, 2);
    assert!(matches!(fresh.handle(during.event.clone()).await.unwrap(), Handled::Created(_)));
    assert_eq!(backend.open_occurrences(during.series_id()).await.len(), 1);
}

#[tokio::test]
async fn an_occurrence_deleted_since_is_not_recreated() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    let handler = handler(&backend, SERVICE_TOKEN, 5);
    let Handled::Created(created) = handler.handle(completed.event.clone()).await.unwrap() else {
        panic!("expected a created occurrence")
    };
    backend.delete_task(&created.id.to_string()).await;

    // The same completion, delivered again as another event: the backend answers 410.
    let handled = handler.handle(with_new_id(&completed.event)).await.unwrap();

    assert_eq!(handled, Handled::DeletedSince);
    assert!(backend.open_occurrences(completed.series_id()).await.is_empty());
}

#[tokio::test]
async fn an_occurrence_the_backend_refuses_is_permanent() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    // A snapshot claiming an earlier due time than the backend holds: the computed next occurrence
    // (2026-03-21) is not after the previous task's due time, which the backend refuses with 422.
    let mut stale = with_new_id(&completed.event);
    stale.data["task"]["due_at"] = json!("2026-03-20T08:00:00Z");
    let handler = handler(&backend, SERVICE_TOKEN, 5);

    let error = handler.handle(stale).await.unwrap_err();

    assert_permanent(&error, FailureReason::BackendRejected);
    assert!(error.to_string().contains("backend answered 422"), "{error}");
    assert!(backend.open_occurrences(completed.series_id()).await.is_empty());
    assert_eq!(handler.backend().service_client().breaker_state(), BreakerState::Closed, "a refusal is no failure");
}

#[tokio::test]
async fn a_wrong_credential_is_transient() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;

    // A wrong credential is a deployment problem: keep the event until it is fixed.
    let wrong = format!("{SERVICE_TOKEN}-but-not-quite");
    let error = handler(&backend, &wrong, 5).handle(completed.event.clone()).await.unwrap_err();

    assert_transient(&error, FailureReason::BackendUnavailable);
    assert!(error.to_string().contains("backend answered 401"), "{error}");
    assert!(backend.open_occurrences(completed.series_id()).await.is_empty());
}

#[tokio::test]
async fn events_that_need_nothing_create_nothing() {
    let backend = RealBackend::start().await;
    let recurring = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    let one_off = backend.completed_task(&daily_task(None)).await;
    let last = backend.completed_task(&daily_task(Some("FREQ=DAILY;COUNT=1"))).await;
    let created = backend.event(recurring.id(), "task.created.v1").await;
    let handler = handler(&backend, SERVICE_TOKEN, 5);
    let tasks_before = backend.tasks().await;

    let cases = [
        (created, Handled::IgnoredType),
        (one_off.event, Handled::Skipped(SkipReason::NotRecurring)),
        (last.event, Handled::Skipped(SkipReason::SeriesEnded)),
    ];
    for (event, expected) in cases {
        let event_type = event.event_type.clone();
        assert_eq!(handler.handle(event).await.unwrap(), expected, "{event_type}");
    }

    assert_eq!(backend.tasks().await, tasks_before, "no task was created or changed");
}

#[tokio::test]
async fn events_that_can_never_succeed_are_permanent() {
    let backend = RealBackend::start().await;
    let completed = backend.completed_task(&daily_task(Some("FREQ=DAILY"))).await;
    let handler = handler(&backend, SERVICE_TOKEN, 5);

    let mut unreadable = with_new_id(&completed.event);
    unreadable.data = json!({ "change": "completed", "task": "not a task" });
    assert_permanent(&handler.handle(unreadable).await.unwrap_err(), FailureReason::InvalidEvent);

    // The backend would never store this rule; a corrupted or foreign event can still carry it.
    let mut hourly = with_new_id(&completed.event);
    hourly.data["task"]["recurrence"]["rrule"] = json!("FREQ=HOURLY");
    assert_permanent(&handler.handle(hourly).await.unwrap_err(), FailureReason::InvalidRule);

    assert!(backend.open_occurrences(completed.series_id()).await.is_empty());
}
