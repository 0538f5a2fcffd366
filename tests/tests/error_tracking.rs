//! Error tracking in the traces: every error that ends a request with a 5xx or makes a service give up on an event
//! is recorded as an OpenTelemetry exception event on the span where it happened (semantic conventions:
//! `exception.type`, `exception.message`, and the cause chain in `exception.stacktrace`), so Tempo shows it there.
//! The real services export to the in-test OTLP receiver; three failures are made to happen for real: a message
//! that is not a CloudEvent (the consumer dead-letters it), a delivery whose SMTP server is gone (notification
//! gives up after its attempts), and an API request while Postgres is down (a 503).
//!
//! With `SENTRY_DSN` set, each of those failures is also reported once to a Sentry-compatible receiver (a local
//! HTTP server taking the envelopes the `sentry` client posts): grouped by the error's type, tagged with the trace
//! id of the span that holds the exception, carrying the service's release, and scrubbed like the logs.
//!
//! Needs the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Postgres.

use e2e::kafka::RawMessage;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{PIPELINE_DEADLINE, Service, Stack};
use serde_json::Value;
use serde_json::json;
use testkit::otlp::{ReceivedEvent, ReceivedSpan};
use testkit::webhook::{ReceivedRequest, WebhookReceiver};

/// The trace id and first exception event of the first span `matches` accepts, once the receiver holds one.
async fn exception_on(stack: &Stack, matches: impl Fn(&ReceivedSpan) -> bool) -> Option<(String, ReceivedEvent)> {
    let span =
        stack.otlp.wait_for_span(|span| matches(span) && !span.exceptions().is_empty(), PIPELINE_DEADLINE).await?;
    span.exceptions().first().map(|event| (span.trace_id_hex.clone(), (*event).clone()))
}

/// The events in one Sentry envelope (newline-separated JSON: the envelope header, then per item a header and its
/// payload).
fn envelope_events(request: &ReceivedRequest) -> Vec<Value> {
    let text = String::from_utf8_lossy(&request.body);
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::new();
    let mut index = 1;
    while index + 1 < lines.len() {
        let header: Value = serde_json::from_str(lines[index]).unwrap_or_default();
        if header["type"] == "event" {
            events.push(serde_json::from_str(lines[index + 1]).unwrap_or_default());
        }
        index += 2;
    }
    events
}

/// The reports the receiver holds whose `trace_id` tag is `trace_id`.
fn reports_of(sentry: &WebhookReceiver, trace_id: &str) -> Vec<Value> {
    sentry
        .requests()
        .iter()
        .filter(|request| request.path.contains("/envelope"))
        .flat_map(envelope_events)
        .filter(|event| event["tags"]["trace_id"] == trace_id)
        .collect()
}

/// Waits for the report of the exception in trace `trace_id`, then checks it is the only one and what it says.
async fn assert_reported_once(sentry: &WebhookReceiver, trace_id: &str, service: &str, error_type: &str) {
    let reported = testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        let reports = reports_of(sentry, trace_id);
        (!reports.is_empty()).then_some(())
    })
    .await;
    assert!(reported.is_ok(), "no report tagged with trace {trace_id}");
    let reports = reports_of(sentry, trace_id);
    assert_eq!(reports.len(), 1, "one report per failure: {reports:#?}");
    let report = &reports[0];
    assert!(report["release"].as_str().is_some_and(|release| release.starts_with(&format!("{service}@"))), "{report}");
    assert_eq!(report["fingerprint"][0].as_str(), Some(error_type), "grouped by the error's type: {report}");
    let innermost_last = report["exception"]["values"].as_array().and_then(|values| values.last());
    assert_eq!(innermost_last.and_then(|exception| exception["type"].as_str()), Some(error_type), "{report}");
}

fn attribute<'a>(event: &'a ReceivedEvent, key: &str) -> &'a str {
    event.attributes.get(key).map_or("", String::as_str)
}

#[tokio::test]
async fn give_ups_and_server_errors_are_exception_events_on_their_spans_and_reported_once() {
    let sentry = WebhookReceiver::start().await.expect("the Sentry-compatible receiver");
    let dsn = format!("http://taskwatch-test-key@{}/1", sentry.address());
    let mut stack = Stack::builder()
        .services(&[Service::Backend, Service::Reminder, Service::Notification])
        .dedicated_postgres()
        .env(Service::Notification, "NOTIFY_MAX_ATTEMPTS", "1")
        .env(Service::Backend, "SENTRY_DSN", &dsn)
        .env(Service::Reminder, "SENTRY_DSN", &dsn)
        .env(Service::Notification, "SENTRY_DSN", &dsn)
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
    let (undecodable_trace, undecodable) =
        exception_on(&stack, |span| span.service_name.as_deref() == Some("reminder")).await.unwrap_or_else(|| {
            panic!("no exception event on reminder's consumer span:\n{}", stack.output(Service::Reminder))
        });
    assert!(!attribute(&undecodable, "exception.type").is_empty(), "{undecodable:?}");
    assert!(!attribute(&undecodable, "exception.message").is_empty(), "{undecodable:?}");
    assert_reported_once(&sentry, &undecodable_trace, "reminder", attribute(&undecodable, "exception.type")).await;

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
    let (given_up_trace, given_up) = exception_on(&stack, |span| {
        span.service_name.as_deref() == Some("notification") && span.name == "deliver email"
    })
    .await
    .unwrap_or_else(|| panic!("no exception event on the delivery span:\n{}", stack.output(Service::Notification)));
    assert!(attribute(&given_up, "exception.type").ends_with("SendFailure"), "{given_up:?}");
    assert!(!attribute(&given_up, "exception.message").is_empty(), "{given_up:?}");
    assert_reported_once(&sentry, &given_up_trace, "notification", attribute(&given_up, "exception.type")).await;

    // 3. Postgres down: the API answers 503, and the request's span holds the store error and its cause.
    stack.stop_postgres().await.expect("Postgres stops");
    let refused = alice.create_task(&json!({ "title": "While the database is down" })).await;
    assert!(refused.is_err(), "a task was created without a database");
    let (server_error_trace, server_error) =
        exception_on(&stack, |span| span.service_name.as_deref() == Some("backend") && span.name == "POST /v1/tasks")
            .await
            .unwrap_or_else(|| panic!("no exception event on POST /v1/tasks:\n{}", stack.output(Service::Backend)));
    assert!(attribute(&server_error, "exception.type").contains("StoreError"), "{server_error:?}");
    assert!(attribute(&server_error, "exception.stacktrace").starts_with("caused by: "), "{server_error:?}");
    assert_reported_once(&sentry, &server_error_trace, "backend", attribute(&server_error, "exception.type")).await;

    // Nothing the logs would redact left the services: no e-mail address, bearer credential or password in a URL
    // (checked here by hand, not with the services' own scrubber).
    for request in sentry.requests() {
        let body = String::from_utf8_lossy(&request.body);
        assert!(!body.contains("@example.com"), "a report names an e-mail address: {body}");
        assert!(!body.to_ascii_lowercase().contains("bearer "), "a report carries a credential: {body}");
        let password_in_url = body.split("://").skip(1).any(|rest| {
            let authority = rest.split(['/', '"', ' ']).next().unwrap_or_default();
            authority.split_once('@').is_some_and(|(user_info, _)| user_info.contains(':'))
        });
        assert!(!password_in_url, "a report carries a password in a URL: {body}");
    }
    stack.start_postgres().await.expect("Postgres starts again");
}
