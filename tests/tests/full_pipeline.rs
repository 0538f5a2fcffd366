//! The whole system as deployed, one task's life: saved notification settings, a daily task whose reminder
//! falls due within seconds → one e-mail at a real SMTP server and one signed webhook → completing it makes
//! exactly one next occurrence at the same local time; the API request's trace runs through reminder and
//! notification; and a daily task keeps its wall-clock time across the autumn DST change.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use e2e::signature::webhook_signature_matches;
use e2e::time::{parse_instant, rfc3339, seconds_from_now};
use e2e::{PIPELINE_DEADLINE, Service, Stack, TraceParent, WEBHOOK_SIGNING_SECRET};
use serde_json::{Value, json};

const EMAIL: &str = "alice@example.com";

/// 09:00 CEST on Saturday 2026-10-24 in Berlin; the clocks go back an hour on the night after.
const DUE_BEFORE_AUTUMN_DST: &str = "2026-10-24T07:00:00Z";
/// 09:00 CET on Sunday 2026-10-25: the same wall-clock time, so an hour later in UTC.
const NEXT_DUE_AFTER_AUTUMN_DST: &str = "2026-10-25T08:00:00Z";

fn instant(value: &Value) -> DateTime<Utc> {
    parse_instant(value).unwrap_or_else(|| panic!("not an RFC 3339 instant: {value}"))
}

/// The same Berlin wall-clock time one calendar day later (computed here, not by the services).
fn same_local_time_next_day(due: DateTime<Utc>) -> DateTime<Utc> {
    let local = due.with_timezone(&Berlin).naive_local() + TimeDelta::days(1);
    Berlin.from_local_datetime(&local).earliest().expect("09:00-ish exists every day").with_timezone(&Utc)
}

#[tokio::test]
async fn a_reminder_reaches_mail_and_webhook_once_and_completion_schedules_the_next_day() {
    let stack = Stack::start().await.expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    alice.save_notification_settings(Some(EMAIL), Some(&stack.webhook.url())).await.expect("settings saved");

    // Due 65 s from now with a reminder one minute before: it falls due within ~5 s.
    let due = seconds_from_now(65);
    let title = "Water the plants (full pipeline)";
    let trace =
        TraceParent { trace_id: "5eb1a2e2e0c0ffee5eb1a2e2e0c0ffee".into(), parent_span_id: "e2e0c0ffee000001".into() };
    let task = alice
        .create_task_traced(
            &json!({
                "title": title,
                "due_at": rfc3339(due),
                "time_zone": "Europe/Berlin",
                "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
                "reminders": [{ "kind": "before_due", "minutes": 1 }],
            }),
            &trace,
        )
        .await
        .expect("task created");
    let task_id = task["id"].as_str().expect("task id").to_owned();
    let series_id = task["series_id"].as_str().expect("series id").to_owned();

    // The e-mail: to alice, the title in the subject.
    let mail = stack
        .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|subject| subject.contains(title)), PIPELINE_DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no reminder e-mail; notification said:\n{}", stack.output(Service::Notification)));
    assert_eq!(mail.recipients, [EMAIL]);

    // The webhook: the event as JSON, signed over "{timestamp}.{body}" with the shared secret.
    let call = stack
        .wait_for_webhook(|call| call.json().is_some_and(|body| body.to_string().contains(&task_id)), PIPELINE_DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no webhook call; notification said:\n{}", stack.output(Service::Notification)));
    assert_eq!(call.method, "POST");
    let event_id = call.header("webhook-id").expect("Webhook-Id header").to_owned();
    let timestamp = call.header("webhook-timestamp").expect("Webhook-Timestamp header");
    let signature = call.header("webhook-signature").expect("Webhook-Signature header");
    assert!(
        webhook_signature_matches(WEBHOOK_SIGNING_SECRET, timestamp, &call.body, signature),
        "signature {signature} does not verify over {timestamp}.{}",
        String::from_utf8_lossy(&call.body)
    );
    assert!(!webhook_signature_matches(
        "another-secret-of-the-same-length-at-least-32",
        timestamp,
        &call.body,
        signature
    ));

    // Completing it makes exactly one next occurrence, at the same Berlin wall-clock time tomorrow.
    alice.complete(&task_id).await.expect("task completed");
    let next = alice.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await.unwrap_or_else(|| {
        panic!("no next occurrence; recurring-task said:\n{}", stack.output(Service::RecurringTask))
    });
    assert_eq!(next.len(), 1, "one completion, one occurrence: {next:#?}");
    assert_ne!(next[0]["id"], task["id"]);
    assert_eq!(instant(&next[0]["due_at"]), same_local_time_next_day(due));
    assert_eq!(next[0]["title"], title);

    // One trace from the API request to the delivery: the services continue the caller's trace id.
    for service in ["backend", "reminder", "notification"] {
        let span = stack
            .otlp
            .wait_for_span(
                |span| span.trace_id_hex == trace.trace_id && span.service_name.as_deref() == Some(service),
                PIPELINE_DEADLINE,
            )
            .await;
        assert!(
            span.is_some(),
            "no {service} span in trace {}; spans seen: {:#?}",
            trace.trace_id,
            stack
                .otlp
                .spans()
                .iter()
                .map(|span| (&span.service_name, &span.name, &span.trace_id_hex))
                .collect::<Vec<_>>()
        );
    }

    // Nothing left in flight: now the counts are final.
    stack.wait_until_settled().await.expect("pipeline settles");
    assert_eq!(stack.mails_mentioning(title).len(), 1, "the reminder was mailed more than once");
    let calls: Vec<_> = stack
        .webhook
        .requests()
        .into_iter()
        .filter(|call| call.header("webhook-id") == Some(event_id.as_str()))
        .collect();
    assert_eq!(calls.len(), 1, "the webhook was called more than once for event {event_id}");
    let still_open = alice.open_tasks_in_series(&series_id).await.expect("list");
    assert_eq!(still_open.len(), 1, "a duplicate occurrence appeared: {still_open:#?}");
}

#[tokio::test]
async fn a_daily_task_keeps_its_local_time_across_the_autumn_dst_change() {
    // Far-past dates need no reminder pipeline: the backend and recurring-task are the whole story.
    let stack =
        Stack::builder().services(&[Service::Backend, Service::RecurringTask]).start().await.expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    let task = alice
        .create_task(&json!({
            "title": "Feed the cat",
            "due_at": DUE_BEFORE_AUTUMN_DST,
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    let series_id = task["series_id"].as_str().expect("series id").to_owned();
    alice.complete(task["id"].as_str().expect("id")).await.expect("task completed");

    let next = alice.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await.unwrap_or_else(|| {
        panic!("no next occurrence; recurring-task said:\n{}", stack.output(Service::RecurringTask))
    });
    assert_eq!(next.len(), 1, "{next:#?}");
    assert_eq!(instant(&next[0]["due_at"]), instant(&json!(NEXT_DUE_AFTER_AUTUMN_DST)));
    // The harness's own wall-clock arithmetic agrees, so the full-pipeline test's expectation is sound too.
    assert_eq!(
        same_local_time_next_day(instant(&json!(DUE_BEFORE_AUTUMN_DST))),
        instant(&json!(NEXT_DUE_AFTER_AUTUMN_DST))
    );
}
