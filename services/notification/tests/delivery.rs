//! The notification binary end to end: `reminder.due` on Kafka in, a real mail over SMTP and a signed webhook
//! out, settings from the real backend, and what happens when the SMTP server or the backend is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use messaging::headers::names;
use notification::channel::signature::SigningKey;
use notification::metrics::{ATTEMPTS_TOTAL, DEAD_LETTERS_TOTAL, DELIVERIES_TOTAL, REMINDERS_TOTAL};
use observability::Secret;
use support::{DEADLINE, SIGNING_SECRET, World, deliveries, reminder};

const EMAIL: &[(&str, &str)] = &[("channel", "email")];

#[tokio::test]
async fn a_reminder_is_mailed_and_posted_once_even_when_the_event_arrives_twice() {
    let world = World::start().await;
    world.backend.save_settings("alice", Some("alice@example.com"), Some(&world.webhook.url())).await;
    let service = world.notification(&[]).await;

    let event = reminder("alice", "Water the plants");
    world.publish(&event).await;

    let mail =
        world.smtp.wait_for(|_| true, DEADLINE).await.unwrap_or_else(|| panic!("no mail:\n{}", service.output()));
    assert_eq!(mail.recipients, ["alice@example.com"]);
    assert_eq!(mail.subject.as_deref(), Some("Reminder: Water the plants"));
    assert!(mail.body().contains("(Europe/Berlin)"), "{}", mail.body());

    let call =
        world.webhook.wait_for(|_| true, DEADLINE).await.unwrap_or_else(|| panic!("no webhook:\n{}", service.output()));
    let event_id = event.id.to_string();
    assert_eq!(call.header("webhook-id"), Some(event_id.as_str()));
    assert_eq!(call.header("content-type"), Some("application/json"));
    let timestamp: i64 = call.header("webhook-timestamp").expect("timestamp header").parse().unwrap();
    let expected = SigningKey::new(Secret::new(SIGNING_SECRET)).sign(timestamp, &call.body);
    assert_eq!(call.header("webhook-signature"), Some(expected.as_str()));
    let body = call.json().expect("a JSON body");
    assert_eq!(body["id"], event_id);
    assert_eq!(body["type"], "reminder.due.v1");
    assert_eq!(body["data"]["title"], "Water the plants");

    // The same event again (a redelivery): recorded as a duplicate, nothing sent.
    world.publish(&event).await;
    service.wait_for_metric(REMINDERS_TOTAL, &[("outcome", "duplicate")], 1.0).await;
    service.wait_for_metric(DELIVERIES_TOTAL, &[("outcome", "sent")], 2.0).await;
    // One delivery per channel, each sent on its first attempt: nothing is left that could still go out, so the
    // counts below are final.
    let rows = deliveries(&world.db, event.id).await;
    assert_eq!(rows, [("email".into(), "sent".into(), 1), ("webhook".into(), "sent".into(), 1)]);
    assert_eq!(world.smtp.messages().len(), 1);
    assert_eq!(world.webhook.requests().len(), 1);
    assert!(service.metric("taskwatch_notification_delivery_latency_seconds_count", EMAIL).await >= 1.0);
}

#[tokio::test]
async fn smtp_down_retries_then_dead_letters_the_event_with_the_reason() {
    let world = World::start().await;
    world.backend.save_settings("bob", Some("bob@example.com"), None).await;
    world.smtp.stop().await;
    let dead_letters = world.read_dead_letters();
    let service = world.notification(&[("NOTIFY_MAX_ATTEMPTS", "3"), ("NOTIFY_BREAKER_FAILURE_THRESHOLD", "10")]).await;

    let event = reminder("bob", "Pay the rent");
    world.publish(&event).await;

    service.wait_for_metric(DEAD_LETTERS_TOTAL, EMAIL, 1.0).await;
    assert_eq!(service.metric(ATTEMPTS_TOTAL, EMAIL).await, 3.0);
    assert_eq!(service.metric(DELIVERIES_TOTAL, &[("channel", "email"), ("outcome", "failed")]).await, 2.0);
    assert_eq!(deliveries(&world.db, event.id).await, [("email".into(), "dead".into(), 3)]);

    let letter = dead_letters
        .letters
        .wait_for(|letter| letter.event.id == event.id, DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no dead letter:\n{}", service.output()));
    assert_eq!(letter.key.as_deref(), Some(event.data.task_id.to_string().as_bytes()));
    assert_eq!(letter.event.event_type, "reminder.due.v1");
    let reason = letter.headers.get_str(names::DEAD_LETTER_REASON).expect("a reason");
    assert!(reason.contains("SMTP"), "{reason}");
    assert_eq!(letter.headers.get_str("notification-channel"), Some("email"));
    assert_eq!(letter.headers.get_str("notification-attempts"), Some("3"));
    assert_eq!(letter.headers.get_str(names::DEAD_LETTER_TOPIC), Some("reminders"));
    assert!(world.smtp.messages().is_empty());
}

#[tokio::test]
async fn smtp_back_during_the_retries_delivers_exactly_once() {
    let world = World::start().await;
    world.backend.save_settings("carol", Some("carol@example.com"), None).await;
    world.smtp.stop().await;
    let service = world
        .notification(&[
            ("NOTIFY_MAX_ATTEMPTS", "50"),
            ("NOTIFY_BREAKER_FAILURE_THRESHOLD", "2"),
            ("NOTIFY_BREAKER_OPEN_FOR", "500ms"),
        ])
        .await;

    let event = reminder("carol", "Call the plumber");
    world.publish(&event).await;
    service.wait_for_metric(ATTEMPTS_TOTAL, EMAIL, 3.0).await;
    // Two failures in a row opened the SMTP server's circuit: later deliveries wait instead of trying.
    service.wait_for_metric(DELIVERIES_TOTAL, &[("channel", "email"), ("outcome", "deferred")], 1.0).await;

    world.smtp.restart().await.unwrap();
    let mail =
        world.smtp.wait_for(|_| true, DEADLINE).await.unwrap_or_else(|| panic!("no mail:\n{}", service.output()));
    assert_eq!(mail.subject.as_deref(), Some("Reminder: Call the plumber"));
    service.wait_for_metric(DELIVERIES_TOTAL, &[("channel", "email"), ("outcome", "sent")], 1.0).await;
    let rows = deliveries(&world.db, event.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "sent");
    // The only delivery is sent: nothing is left that could mail again.
    assert_eq!(world.smtp.messages().len(), 1);
    assert_eq!(service.metric(DEAD_LETTERS_TOTAL, EMAIL).await, 0.0);
}

#[tokio::test]
async fn backend_down_uses_fresh_cached_settings_and_otherwise_keeps_the_event() {
    let mut world = World::start().await;
    world.backend.save_settings("dave", Some("dave@example.com"), None).await;
    world.backend.save_settings("erin", Some("erin@example.com"), None).await;
    let service = world.notification(&[("BACKEND_SETTINGS_CACHE_TTL", "5m")]).await;

    // Dave's settings are read (and cached) while the backend is up.
    world.publish(&reminder("dave", "First")).await;
    world.smtp.wait_for(|mail| mail.subject.as_deref() == Some("Reminder: First"), DEADLINE).await.expect("first mail");

    world.backend.stop();
    // Dave again: the backend fails, the cached answer is fresh, the mail goes out.
    world.publish(&reminder("dave", "Second")).await;
    world
        .smtp
        .wait_for(|mail| mail.subject.as_deref() == Some("Reminder: Second"), DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no mail from cached settings:\n{}", service.output()));
    assert!(service.metric("taskwatch_client_fallback_cache_hits_total", &[("downstream", "backend")]).await >= 1.0);

    // Erin was never looked up: her event waits (retried, not committed, not lost) while the circuit opens.
    world.publish(&reminder("erin", "Third")).await;
    service
        .wait_for_metric(
            "taskwatch_circuit_breaker_transitions_total",
            &[("downstream", "backend"), ("to_state", "open")],
            1.0,
        )
        .await;
    assert!(world.smtp.messages().iter().all(|mail| mail.subject.as_deref() != Some("Reminder: Third")));

    world.backend.start_again().await;
    let mail = world
        .smtp
        .wait_for(|mail| mail.subject.as_deref() == Some("Reminder: Third"), DEADLINE)
        .await
        .unwrap_or_else(|| panic!("the kept event was not delivered after recovery:\n{}", service.output()));
    assert_eq!(mail.recipients, ["erin@example.com"]);
    assert_eq!(world.smtp.messages().len(), 3);
}

#[tokio::test]
async fn a_webhook_to_a_loopback_address_is_refused_and_dead_lettered_without_a_call() {
    let world = World::start().await;
    world.backend.save_settings("frank", None, Some(&world.webhook.url())).await;
    let dead_letters = world.read_dead_letters();
    // The guard as in production: the receiver listens on 127.0.0.1, which must never be reached.
    let service = world.notification(&[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")]).await;

    let event = reminder("frank", "Rotate the keys");
    world.publish(&event).await;

    let webhook = &[("channel", "webhook")];
    service.wait_for_metric(DEAD_LETTERS_TOTAL, webhook, 1.0).await;
    // Refused for good on the first attempt: no retries against a forbidden destination.
    assert_eq!(service.metric(ATTEMPTS_TOTAL, webhook).await, 1.0);
    assert_eq!(deliveries(&world.db, event.id).await, [("webhook".into(), "dead".into(), 1)]);
    assert!(world.webhook.requests().is_empty(), "the guard let a call through");
    let letter =
        dead_letters.letters.wait_for(|letter| letter.event.id == event.id, DEADLINE).await.expect("a dead letter");
    let reason = letter.headers.get_str(names::DEAD_LETTER_REASON).expect("a reason");
    assert!(reason.contains("refused"), "{reason}");
}
