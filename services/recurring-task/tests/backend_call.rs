//! The handler against a real HTTP server speaking the backend's internal API contract (see `support`): what
//! is sent, and how each answer is treated.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use events::CloudEvent;
use events::task::{TaskChange, TaskEvent};
use observability::{BreakerState, ClientConfig, Secret, ServiceClient};
use recurring_task::backend::BackendClient;
use recurring_task::decision::SkipReason;
use recurring_task::handler::{CompletionHandler, HandleError, Handled};
use recurring_task::metrics::FailureReason;
use serde_json::{Value, json};
use support::{StandIn, TOKEN, at};

struct Backend {
    stand_in: StandIn,
    handler: CompletionHandler,
}

async fn backend(failure_threshold: u32) -> Backend {
    let stand_in = StandIn::start().await;
    let config = ClientConfig {
        max_retries: 0,
        failure_threshold,
        open_for: Duration::from_secs(60),
        ..ClientConfig::new("backend", stand_in.base_url.parse().unwrap())
    };
    let client = BackendClient::new(ServiceClient::new(config).unwrap(), Secret::new(TOKEN));
    Backend { stand_in, handler: CompletionHandler::new(client) }
}

fn event(change: TaskChange, rrule: Option<&str>) -> CloudEvent<Value> {
    support::raw(&support::task_event(change, rrule))
}

fn reason(error: &HandleError) -> FailureReason {
    error.reason()
}

#[tokio::test]
async fn asks_for_the_next_occurrence_with_key_credential_and_the_documented_body() {
    let backend = backend(5).await;
    backend.stand_in.answer(&[StatusCode::CREATED]);
    let completed = event(TaskChange::Completed, Some("FREQ=DAILY"));
    let task: TaskEvent = serde_json::from_value(completed.data.clone()).unwrap();

    let handled = backend.handler.handle(completed.clone()).await.unwrap();

    let Handled::Created(created) = handled else { panic!("expected a created occurrence, got {handled:?}") };
    assert_eq!(created.due_at, Some(at("2026-03-29T07:00:00Z")), "09:00 Berlin after the clocks went forward");
    let seen = backend.stand_in.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.path, format!("/internal/v1/series/{}/occurrences", task.task.series_id));
    assert_eq!(request.headers["idempotency-key"], completed.id.to_string().as_str());
    assert_eq!(request.headers["authorization"], format!("Bearer {TOKEN}").as_str());
    assert_eq!(request.body, json!({"previous_task_id": task.task.id, "due_at": "2026-03-29T07:00:00Z"}));
}

#[tokio::test]
async fn a_redelivered_event_sends_the_same_idempotency_key() {
    let backend = backend(5).await;
    backend.stand_in.answer(&[StatusCode::CREATED, StatusCode::CREATED]);
    let completed = event(TaskChange::Completed, Some("FREQ=WEEKLY"));
    backend.handler.handle(completed.clone()).await.unwrap();
    backend.handler.handle(completed.clone()).await.unwrap();
    let seen = backend.stand_in.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);
    assert_eq!(seen[0].body, seen[1].body);
}

#[tokio::test]
async fn a_failing_backend_is_transient_and_opens_the_breaker() {
    let backend = backend(2).await;
    backend.stand_in.answer(&[StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY]);
    let completed = event(TaskChange::Completed, Some("FREQ=DAILY"));

    for _ in 0..2 {
        let error = backend.handler.handle(completed.clone()).await.unwrap_err();
        assert!(matches!(error, HandleError::Transient { .. }), "{error}");
        assert_eq!(reason(&error), FailureReason::BackendUnavailable);
    }
    assert_eq!(backend.handler.backend().service_client().breaker_state(), BreakerState::Open);

    let error = backend.handler.handle(completed).await.unwrap_err();
    assert!(matches!(error, HandleError::Transient { .. }), "{error}");
    assert_eq!(reason(&error), FailureReason::CircuitOpen);
    assert_eq!(backend.stand_in.seen().len(), 2, "an open circuit makes no call");
}

#[tokio::test]
async fn each_refusal_is_treated_as_documented() {
    let backend = backend(5).await;
    let completed = event(TaskChange::Completed, Some("FREQ=DAILY"));

    backend.stand_in.answer(&[StatusCode::GONE]);
    assert_eq!(backend.handler.handle(completed.clone()).await.unwrap(), Handled::DeletedSince);

    backend.stand_in.answer(&[StatusCode::UNPROCESSABLE_ENTITY]);
    let error = backend.handler.handle(completed.clone()).await.unwrap_err();
    assert!(matches!(error, HandleError::Permanent { .. }), "{error}");
    assert_eq!(reason(&error), FailureReason::BackendRejected);

    // A wrong credential is a deployment problem: keep the event until it is fixed.
    backend.stand_in.answer(&[StatusCode::UNAUTHORIZED]);
    let error = backend.handler.handle(completed).await.unwrap_err();
    assert!(matches!(error, HandleError::Transient { .. }), "{error}");
    assert_eq!(backend.stand_in.seen().len(), 3);
}

#[tokio::test]
async fn events_that_need_nothing_make_no_call() {
    let backend = backend(5).await;
    let cases = [
        (event(TaskChange::Created, Some("FREQ=DAILY")), Handled::IgnoredType),
        (event(TaskChange::Completed, None), Handled::Skipped(SkipReason::NotRecurring)),
        (event(TaskChange::Completed, Some("FREQ=DAILY;COUNT=1")), Handled::Skipped(SkipReason::SeriesEnded)),
    ];
    for (event, expected) in cases {
        assert_eq!(backend.handler.handle(event).await.unwrap(), expected);
    }
    assert!(backend.stand_in.seen().is_empty());
}

#[tokio::test]
async fn events_that_can_never_succeed_are_permanent() {
    let backend = backend(5).await;
    let mut unreadable = event(TaskChange::Completed, Some("FREQ=DAILY"));
    unreadable.data = json!({"change": "completed", "task": "not a task"});
    let error = backend.handler.handle(unreadable).await.unwrap_err();
    assert!(matches!(error, HandleError::Permanent { .. }));
    assert_eq!(reason(&error), FailureReason::InvalidEvent);

    let error = backend.handler.handle(event(TaskChange::Completed, Some("FREQ=HOURLY"))).await.unwrap_err();
    assert!(matches!(error, HandleError::Permanent { .. }));
    assert_eq!(reason(&error), FailureReason::InvalidRule);
    assert!(backend.stand_in.seen().is_empty());
}
