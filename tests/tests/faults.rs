//! Faults under the running system (issue 3 §7). Each test breaks one part while reminders and
//! completions are in flight, heals it, and proves no loss (every expected effect arrives) and no
//! duplicate effect (after the pipeline settles, each effect happened exactly once).

use e2e::kafka::RawMessage;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{Api, PIPELINE_DEADLINE, Service, Stack, metric_samples, metric_sum};
use serde_json::{Value, json};

const EMAIL: &str = "alice@example.com";

/// Alice, with reminders going to her e-mail address only.
async fn alice_by_mail(stack: &Stack) -> Api {
    let alice = stack.api("alice").expect("alice's client");
    alice.save_notification_settings(Some(EMAIL), None).await.expect("settings saved");
    alice
}

/// A one-off task titled `title` with an absolute reminder `seconds` from now.
fn task_reminding_in(title: &str, seconds: i64) -> Value {
    json!({ "title": title, "reminders": [{ "kind": "at", "at": rfc3339(seconds_from_now(seconds)) }] })
}

/// Creates one task per title, each reminding `seconds` from now.
async fn create_reminding_tasks(alice: &Api, titles: &[String], seconds: i64) -> Vec<Value> {
    let mut tasks = Vec::new();
    for title in titles {
        tasks.push(alice.create_task(&task_reminding_in(title, seconds)).await.expect("task created"));
    }
    tasks
}

fn titles(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("{prefix} #{n:02}")).collect()
}

/// No loss: every title's reminder arrives by mail. No duplicate: once nothing is in flight, each arrived
/// exactly once.
async fn assert_each_mailed_once(stack: &Stack, titles: &[String]) {
    for title in titles {
        let subject_names_title = |subject: &str| subject_names(subject, title);
        let mail = stack
            .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(subject_names_title), PIPELINE_DEADLINE)
            .await;
        assert!(
            mail.is_some(),
            "the reminder of {title:?} was lost; mails so far: {:?}\nreminder said:\n{}\nnotification said:\n{}",
            stack.smtp.messages().iter().map(|mail| mail.subject.clone()).collect::<Vec<_>>(),
            stack.output(Service::Reminder),
            stack.output(Service::Notification),
        );
    }
    stack.wait_until_settled().await.expect("pipeline settles");
    for title in titles {
        let copies = stack
            .smtp
            .messages()
            .into_iter()
            .filter(|mail| mail.subject.as_deref().is_some_and(|subject| subject_names(subject, title)))
            .count();
        assert_eq!(copies, 1, "the reminder of {title:?} was mailed {copies} times");
    }
}

/// Whether `subject` names exactly `title` (`#01` must not match `#010`).
fn subject_names(subject: &str, title: &str) -> bool {
    subject.match_indices(title).any(|(at, _)| {
        let next = subject[at + title.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn tasks_created_while_the_broker_is_down_are_each_reminded_once_after_it_returns() {
    let mut stack = Stack::start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;

    stack.broker.stop();
    // The API keeps working without the broker: rows wait in the outbox.
    let titles = titles("Broker outage", 4);
    create_reminding_tasks(&alice, &titles, 2).await;
    let backend_waits = stack
        .wait_for_metrics(Service::Backend, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_outbox_pending_events", &[])
                .is_some_and(|pending| pending >= titles.len() as f64)
        })
        .await;
    assert!(backend_waits.is_some(), "the backend's outbox never showed the waiting events");

    stack.broker.start_again().await.expect("broker restarts");
    assert_each_mailed_once(&stack, &titles).await;
}

#[tokio::test]
async fn a_duplicated_reminder_and_completion_event_have_one_effect_each() {
    let stack = Stack::start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let reminders = stack.tap("reminders").expect("reminders reader");
    let task_events = stack.tap("task-events").expect("task-events reader");

    let title = "Duplicated events";
    let task = alice
        .create_task(&json!({
            "title": title,
            "due_at": rfc3339(seconds_from_now(62)),
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    let task_id = task["id"].as_str().expect("id").to_owned();
    let series_id = task["series_id"].as_str().expect("series id").to_owned();
    assert_each_mailed_once(&stack, &[title.to_owned()]).await;

    // The reminder.due event exactly as the reminder service published it, delivered a second time.
    let is_this_reminder = |message: &RawMessage| {
        message.json().is_some_and(|event| event["type"] == "reminder.due.v1" && event["data"]["task_id"] == task_id)
    };
    let reminder = reminders.wait_for(is_this_reminder, PIPELINE_DEADLINE).await.expect("the reminder.due event");
    stack.republish(&reminder).await.expect("duplicate reminder published");
    let absorbed = stack
        .wait_for_metrics(Service::Notification, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_notification_reminders_total", &[("outcome", "duplicate")])
                .is_some_and(|n| n >= 1.0)
        })
        .await;
    assert!(absorbed.is_some(), "notification never consumed the duplicate:\n{}", stack.output(Service::Notification));

    // The completion, delivered twice to recurring-task.
    alice.complete(&task_id).await.expect("task completed");
    let next = alice.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await.expect("next occurrence");
    let is_this_completion = |message: &RawMessage| {
        message.json().is_some_and(|event| event["type"] == "task.completed.v1" && event["subject"] == task_id)
    };
    let completion = task_events.wait_for(is_this_completion, PIPELINE_DEADLINE).await.expect("the completion event");
    stack.republish(&completion).await.expect("duplicate completion published");
    // recurring-task asks the backend again with the same Idempotency-Key; the backend replays the answer.
    let replayed = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_recurring_occurrences_created_total", &[]).is_some_and(|n| n >= 2.0)
        })
        .await;
    assert!(
        replayed.is_some(),
        "recurring-task never handled the duplicate:\n{}",
        stack.output(Service::RecurringTask)
    );

    stack.wait_until_settled().await.expect("pipeline settles");
    assert_eq!(stack.mails_mentioning(title).len(), 1, "the duplicate reminder was mailed");
    let open = alice.open_tasks_in_series(&series_id).await.expect("list");
    assert_eq!(open.len(), 1, "the duplicate completion created another occurrence: {open:#?}");
    assert_eq!(open[0]["id"], next[0]["id"]);
}

#[tokio::test]
async fn with_the_backend_down_the_breaker_opens_and_the_occurrence_is_created_once_after_recovery() {
    let mut stack =
        Stack::builder().services(&[Service::Backend, Service::RecurringTask]).start().await.expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    let task_events = stack.tap("task-events").expect("task-events reader");
    let task = alice
        .create_task(&json!({
            "title": "Backend outage",
            "due_at": "2030-06-03T07:00:00Z",
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    let task_id = task["id"].as_str().expect("id").to_owned();
    let series_id = task["series_id"].as_str().expect("series id").to_owned();

    // recurring-task first joins its group and handles the creation, so it leaves a settled group when it stops:
    // a member that vanishes in the middle of joining can hold up the next member's join for the whole rebalance
    // timeout on tansu — a broker quirk, not the outage this test is about.
    let joined = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_messages_consumed_total", &[("topic", "task-events")]) >= Some(1.0)
                && e2e::settle::caught_up(metrics, "task-events")
        })
        .await;
    assert!(joined.is_some(), "recurring-task never consumed the creation:\n{}", stack.output(Service::RecurringTask));

    // The completion reaches Kafka while recurring-task is away; then the backend goes down before it returns.
    stack.stop_service(Service::RecurringTask).await.expect("recurring-task stops");
    alice.complete(&task_id).await.expect("task completed");
    let published = task_events
        .wait_for(
            |message| {
                message.json().is_some_and(|event| event["type"] == "task.completed.v1" && event["subject"] == task_id)
            },
            PIPELINE_DEADLINE,
        )
        .await;
    assert!(published.is_some(), "the completion never reached task-events");
    stack.stop_service(Service::Backend).await.expect("backend stops");
    stack.start_service(Service::RecurringTask).await.expect("recurring-task starts");

    let open = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_samples(metrics, "taskwatch_circuit_breaker_state", &[("downstream", "backend")]).contains(&2.0)
        })
        .await;
    assert!(open.is_some(), "the breaker never opened:\n{}", stack.output(Service::RecurringTask));

    stack.start_service(Service::Backend).await.expect("backend restarts");
    let next = alice.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await;
    let next =
        next.unwrap_or_else(|| panic!("no occurrence after recovery:\n{}", stack.output(Service::RecurringTask)));
    assert_eq!(next[0]["due_at"], "2030-06-04T07:00:00Z");
    let closed = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_samples(metrics, "taskwatch_circuit_breaker_state", &[("downstream", "backend")]).contains(&0.0)
                && e2e::settle::caught_up(metrics, "task-events")
        })
        .await;
    assert!(closed.is_some(), "the breaker did not close or the consumer did not catch up");
    let open_tasks = alice.open_tasks_in_series(&series_id).await.expect("list");
    assert_eq!(open_tasks.len(), 1, "the retried completion created a duplicate: {open_tasks:#?}");
}

#[tokio::test]
async fn with_smtp_down_a_delivery_is_retried_then_dead_lettered_with_its_reason() {
    let stack =
        Stack::builder().env(Service::Notification, "NOTIFY_MAX_ATTEMPTS", "3").start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let dead_letters = stack.tap("notifications.dlq").expect("dlq reader");

    stack.smtp.stop().await;
    let title = "SMTP outage";
    let task = alice.create_task(&task_reminding_in(title, 1)).await.expect("task created");
    let task_id = task["id"].as_str().expect("id").to_owned();

    let dead_letter = dead_letters
        .wait_for(|message| String::from_utf8_lossy(&message.payload).contains(&task_id), PIPELINE_DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no dead letter for the task:\n{}", stack.output(Service::Notification)));
    // The original reminder.due event, with why, where and how often it failed (notification's dead-letter
    // headers).
    assert_eq!(dead_letter.json().expect("a JSON CloudEvent")["type"], "reminder.due.v1");
    let reason = dead_letter.header("dead-letter-reason").unwrap_or_default();
    assert!(!reason.trim().is_empty(), "the dead letter names no reason: {dead_letter:#?}");
    assert_eq!(dead_letter.header("notification-channel").as_deref(), Some("email"));
    assert_eq!(dead_letter.header("notification-attempts").as_deref(), Some("3"));

    // The counters move when the delivery is marked dead, right after the broker acknowledged the letter.
    let counted = stack
        .wait_for_metrics(Service::Notification, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_notification_dead_letters_total", &[("channel", "email")]) == Some(1.0)
        })
        .await
        .expect("the dead letter is counted");
    let attempts =
        metric_sum(&counted, "taskwatch_notification_attempts_total", &[("channel", "email")]).unwrap_or_default();
    assert!(attempts >= 3.0, "expected 3 attempts before giving up, saw {attempts}");

    // SMTP comes back: the dead delivery stays dead (no late mail), and a new reminder goes through.
    stack.smtp.restart().await.expect("SMTP sink restarts");
    let after = "Mail is back".to_owned();
    create_reminding_tasks(&alice, std::slice::from_ref(&after), 1).await;
    assert_each_mailed_once(&stack, &[after]).await;
    assert!(stack.mails_mentioning(title).is_empty(), "a dead-lettered delivery was sent after all");
    let dead: Vec<_> = dead_letters
        .messages()
        .into_iter()
        .filter(|message| String::from_utf8_lossy(&message.payload).contains(&task_id))
        .collect();
    assert_eq!(dead.len(), 1, "the delivery was dead-lettered more than once");
}

#[tokio::test]
async fn a_reminder_worker_killed_mid_stream_still_fires_each_reminder_once() {
    let mut stack = Stack::start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let titles = titles("Killed worker", 6);
    // One reminder falling due every second, so the kill lands with jobs fired, due and still planned.
    for (offset, title) in (1..).zip(&titles) {
        alice.create_task(&task_reminding_in(title, offset)).await.expect("task created");
    }

    // Mid-stream: the first reminders are out, the others are still planned or in flight.
    let first = stack
        .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|s| s.contains("Killed worker")), PIPELINE_DEADLINE)
        .await;
    assert!(first.is_some(), "no reminder arrived before the kill:\n{}", stack.output(Service::Reminder));
    stack.kill_service(Service::Reminder).expect("SIGKILL reminder");
    stack.start_service(Service::Reminder).await.expect("reminder restarts");

    assert_each_mailed_once(&stack, &titles).await;
}

#[tokio::test]
async fn a_notification_worker_killed_mid_stream_loses_no_reminder() {
    // Sending and marking sent cannot be one transaction with an SMTP server: a kill between the two repeats
    // that mail (at-least-once towards SMTP). Deliveries of one claimed batch are sent concurrently, each with
    // its own window, so one delivery per claim makes the bound exact: one kill repeats at most one mail.
    let mut stack =
        Stack::builder().env(Service::Notification, "NOTIFY_BATCH_SIZE", "1").start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let titles = titles("Killed notifier", 6);
    for (offset, title) in (1..).zip(&titles) {
        alice.create_task(&task_reminding_in(title, offset)).await.expect("task created");
    }

    let first = stack
        .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|s| s.contains("Killed notifier")), PIPELINE_DEADLINE)
        .await;
    assert!(first.is_some(), "no reminder arrived before the kill:\n{}", stack.output(Service::Notification));
    stack.kill_service(Service::Notification).expect("SIGKILL notification");
    stack.start_service(Service::Notification).await.expect("notification restarts");

    for title in &titles {
        let arrived = stack
            .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|s| subject_names(s, title)), PIPELINE_DEADLINE)
            .await;
        assert!(arrived.is_some(), "the reminder of {title:?} was lost:\n{}", stack.output(Service::Notification));
    }
    stack.wait_until_settled().await.expect("pipeline settles");
    let subjects: Vec<_> = stack.smtp.messages().into_iter().filter_map(|mail| mail.subject).collect();
    let mut repeated = 0;
    for title in &titles {
        let copies = subjects.iter().filter(|subject| subject_names(subject, title)).count();
        repeated += copies - 1;
    }
    assert!(repeated <= 1, "one kill repeated {repeated} mails: {subjects:#?}");
}

#[tokio::test]
async fn two_reminder_replicas_fire_each_reminder_once() {
    let stack = Stack::builder().replicas(Service::Reminder, 2).start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let titles = titles("Two replicas", 8);
    create_reminding_tasks(&alice, &titles, 2).await;

    assert_each_mailed_once(&stack, &titles).await;
    let fired: f64 = stack
        .metrics_of_replicas(Service::Reminder)
        .await
        .iter()
        .filter_map(|metrics| metric_sum(metrics, "taskwatch_reminders_fired_total", &[]))
        .sum();
    assert_eq!(fired, titles.len() as f64, "the replicas fired {fired} jobs for {} reminders", titles.len());
}

#[tokio::test]
async fn services_recover_from_a_postgres_restart_without_being_restarted() {
    let mut stack = Stack::builder().dedicated_postgres().start().await.expect("stack starts");
    let alice = alice_by_mail(&stack).await;
    let with_database = [Service::Backend, Service::Reminder, Service::Notification];

    stack.stop_postgres().await.expect("postgres stops");
    for service in with_database {
        let unready =
            testkit::wait::until(PIPELINE_DEADLINE, || async { stack.readiness(service).await == Some(503) }).await;
        assert!(unready.is_ok(), "{} stayed ready without its database", service.name());
    }
    stack.start_postgres().await.expect("postgres starts again");
    for service in with_database {
        let ready =
            testkit::wait::until(PIPELINE_DEADLINE, || async { stack.readiness(service).await == Some(200) }).await;
        assert!(ready.is_ok(), "{} did not recover:\n{}", service.name(), stack.output(service));
    }

    // Ready again means usable again: the first write after the restart succeeds and flows to its e-mail.
    let title = "After the Postgres restart".to_owned();
    create_reminding_tasks(&alice, std::slice::from_ref(&title), 1).await;
    assert_each_mailed_once(&stack, &[title]).await;
}
