//! Error tracking in the traces: every error that ends a request with a 5xx or makes a service give up on an event
//! is recorded as an OpenTelemetry exception event on the span where it happened (semantic conventions:
//! `exception.type`, `exception.message`, and the cause chain in `exception.stacktrace`), so Tempo shows it there.
//! The real services export to the in-test OTLP receiver; three failures are made to happen for real: a message
//! that is not a CloudEvent (the consumer dead-letters it), a delivery whose SMTP server is gone (notification
//! gives up after its attempts), and an API request while Postgres is down (a 503).
//!
//! Needs the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Postgres.

use e2e::kafka::RawMessage;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{PIPELINE_DEADLINE, Service, Stack};
use serde_json::json;
use testkit::otlp::{ReceivedEvent, ReceivedSpan};

/// The first exception event of the first span `matches` accepts, once the receiver holds one.
async fn exception_on(stack: &Stack, matches: impl Fn(&ReceivedSpan) -> bool) -> Option<ReceivedEvent> {
    let span =
        stack.otlp.wait_for_span(|span| matches(span) && !span.exceptions().is_empty(), PIPELINE_DEADLINE).await?;
    span.exceptions().first().map(|event| (*event).clone())
}

fn attribute<'a>(event: &'a ReceivedEvent, key: &str) -> &'a str {
    event.attributes.get(key).map_or("", String::as_str)
}

#[tokio::test]
async fn give_ups_and_server_errors_are_exception_events_on_their_spans() {
    let mut stack = Stack::builder()
        .services(&[Service::Backend, Service::Reminder, Service::Notification])
        .dedicated_postgres()
        .env(Service::Notification, "NOTIFY_MAX_ATTEMPTS", "1")
        .start()
        .await
        .expect("stack starts");

    // 1. Not a CloudEvent: reminder's consumer dead-letters it, and says why on its span.
    let garbage = RawMessage {
        topic: "task-events".into(),
        partition: 0,
        offset: 0,
        key: Some(b"error-tracking".to_vec()),
        payload: b"this is not a CloudEvent".to_vec(),
        headers: Vec::new(),
    };
    stack.republish(&garbage).await.expect("published");
    let undecodable =
        exception_on(&stack, |span| span.service_name.as_deref() == Some("reminder")).await.unwrap_or_else(|| {
            panic!("no exception event on reminder's consumer span:\n{}", stack.output(Service::Reminder))
        });
    assert!(!attribute(&undecodable, "exception.type").is_empty(), "{undecodable:?}");
    assert!(!attribute(&undecodable, "exception.message").is_empty(), "{undecodable:?}");

    // 2. SMTP gone and one attempt allowed: notification gives up on the delivery, on the delivery's span.
    stack.smtp.stop().await;
    let alice = stack.api("error-tracking-alice").expect("client");
    alice.save_notification_settings(Some("error-tracking-alice@example.com"), None).await.expect("settings saved");
    alice
        .create_task(&json!({
            "title": "Nobody will mail this",
            "due_at": rfc3339(seconds_from_now(61)),
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    let given_up = exception_on(&stack, |span| {
        span.service_name.as_deref() == Some("notification") && span.name == "deliver email"
    })
    .await
    .unwrap_or_else(|| panic!("no exception event on the delivery span:\n{}", stack.output(Service::Notification)));
    assert!(attribute(&given_up, "exception.type").ends_with("SendFailure"), "{given_up:?}");
    assert!(!attribute(&given_up, "exception.message").is_empty(), "{given_up:?}");

    // 3. Postgres down: the API answers 503, and the request's span holds the store error and its cause.
    stack.stop_postgres().await.expect("Postgres stops");
    let refused = alice.create_task(&json!({ "title": "While the database is down" })).await;
    assert!(refused.is_err(), "a task was created without a database");
    let server_error =
        exception_on(&stack, |span| span.service_name.as_deref() == Some("backend") && span.name == "POST /v1/tasks")
            .await
            .unwrap_or_else(|| panic!("no exception event on POST /v1/tasks:\n{}", stack.output(Service::Backend)));
    assert!(attribute(&server_error, "exception.type").contains("StoreError"), "{server_error:?}");
    assert!(attribute(&server_error, "exception.stacktrace").starts_with("caused by: "), "{server_error:?}");
    stack.start_postgres().await.expect("Postgres starts again");
}
