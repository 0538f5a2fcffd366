//! The messaging crate against a real broker (tansu through `testkit::kafka`): topics, trace
//! propagation, at-least-once delivery, dead-lettering, per-key order, metrics.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use messaging::headers::names;
use messaging::{HandlerError, IncomingMessage, OutgoingMessage, Producer, Subscription, TopicSpec, ensure_topics};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use rdkafka::Message as _;
use rdkafka::message::Headers as _;
use support::{Running, Shared, TIMEOUT, probe, publish, sequence};
use testkit::collected::Collected;
use testkit::wait;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[tokio::test]
async fn missing_topics_are_created_and_existing_ones_are_left_alone() {
    let (broker, config) = support::broker_with(&[("existing", 1)]).await;
    let topics = [TopicSpec::new("existing"), TopicSpec::new("created-at-start")];
    ensure_topics(&config, &topics).await.expect("first start");
    ensure_topics(&config, &topics).await.expect("a second start finds them all existing");
    let listed = broker.topics().await.expect("list");
    for topic in ["existing", "created-at-start"] {
        assert!(listed.iter().any(|name| name == topic), "{topic} missing from {listed:?}");
    }
}

#[tokio::test]
async fn the_consumer_span_continues_the_producers_trace() {
    let (_broker, config) = support::broker_with(&[("traced", 1), ("traced.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    let seen: Shared<(TraceId, Option<String>, IncomingMessage)> = Arc::new(Collected::new());
    let consumer = {
        let seen = Arc::clone(&seen);
        Running::start(
            &config,
            Subscription::new(["traced"], "traced.dlq").expect("subscription"),
            move |message: IncomingMessage| {
                let seen = Arc::clone(&seen);
                async move {
                    let trace_id = tracing::Span::current().context().span().span_context().trace_id();
                    let traceparent = message.headers.get_str(names::TRACEPARENT).map(str::to_owned);
                    seen.push((trace_id, traceparent, message));
                    Ok::<(), HandlerError>(())
                }
            },
        )
    };

    let request = tracing::info_span!("incoming request");
    let request_trace = request.context().span().span_context().trace_id();
    assert_ne!(request_trace, TraceId::INVALID, "the test subscriber must produce real trace ids");
    let event = probe("task-1", 1);
    let message = OutgoingMessage::event("traced", "task-1", &event)
        .expect("serialise")
        .with_headers(messaging::MessageHeaders::new().with("x-custom", "kept"));
    let delivery = producer.send(message).instrument(request).await.expect("acknowledged");

    let (trace_id, traceparent, received) =
        seen.wait_for(|_| true, TIMEOUT).await.expect("the consumer receives the message");
    assert_eq!(trace_id, request_trace, "consumer span is in the request's trace");
    let traceparent = traceparent.expect("traceparent header");
    assert!(traceparent.contains(&request_trace.to_string()), "{traceparent}");
    assert_eq!(received.headers.get_str("x-custom"), Some("kept"));
    assert_eq!(received.event.id, event.id);
    assert_eq!(received.key.as_deref(), Some(&b"task-1"[..]));
    assert_eq!((received.partition, received.offset), (delivery.partition, delivery.offset));
    consumer.stop().await;
}

#[tokio::test]
async fn a_retried_message_is_never_skipped_or_committed_until_handled() {
    let (_broker, config) = support::broker_with(&[("flaky", 1), ("flaky.dlq", 1)]).await;
    let subscription = || Subscription::new(["flaky"], "flaky.dlq").expect("subscription");
    let producer = Producer::new(&config).expect("producer");
    support::publish(&producer, "flaky", "task-1", &probe("task-1", 1)).await;

    // First consumer: the handler fails transiently every time; the message is retried in place.
    let attempts = Arc::new(AtomicU32::new(0));
    let failing = {
        let attempts = Arc::clone(&attempts);
        Running::start(&config, subscription(), move |_message: IncomingMessage| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(HandlerError::retry("database unavailable")) }
        })
    };
    wait::until(TIMEOUT, || async { attempts.load(Ordering::SeqCst) >= 3 }).await.expect("retried several times");
    failing.crash().await;

    // A new member of the group after the crash gets the same message again, then handles it.
    let handled: Shared<u32> = Arc::new(Collected::new());
    let recovering = {
        let handled = Arc::clone(&handled);
        Running::start(&config, subscription(), move |message: IncomingMessage| {
            handled.push(sequence(&message));
            async { Ok::<(), HandlerError>(()) }
        })
    };
    handled.wait_for(|sequence| *sequence == 1, TIMEOUT).await.expect("the message is delivered again");
    recovering.stop().await;

    // Committed after `Ok`: the next member starts after it.
    support::publish(&producer, "flaky", "task-1", &probe("task-1", 2)).await;
    let after_commit: Shared<u32> = Arc::new(Collected::new());
    let next = {
        let after_commit = Arc::clone(&after_commit);
        Running::start(&config, subscription(), move |message: IncomingMessage| {
            after_commit.push(sequence(&message));
            async { Ok::<(), HandlerError>(()) }
        })
    };
    after_commit.wait_for(|sequence| *sequence == 2, TIMEOUT).await.expect("the new message arrives");
    next.stop().await;
    assert_eq!(after_commit.snapshot(), [2], "a committed message is not delivered again");
}

#[tokio::test]
async fn a_transient_failure_retries_the_same_message_before_the_next() {
    let handle = support::telemetry();
    let (_broker, config) = support::broker_with(&[("retry-order", 1), ("retry-order.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    for sequence in 1..=3 {
        support::publish(&producer, "retry-order", "task-1", &probe("task-1", sequence)).await;
    }
    let calls: Shared<u32> = Arc::new(Collected::new());
    let consumer = {
        let calls = Arc::clone(&calls);
        Running::start(
            &config,
            Subscription::new(["retry-order"], "retry-order.dlq").expect("subscription"),
            move |message: IncomingMessage| {
                let sequence = sequence(&message);
                let earlier_calls = calls.snapshot().iter().filter(|seen| **seen == sequence).count();
                calls.push(sequence);
                // The second message fails twice, then succeeds.
                let outcome = if sequence == 2 && earlier_calls < 2 {
                    Err(HandlerError::retry("downstream unavailable"))
                } else {
                    Ok(())
                };
                async move { outcome }
            },
        )
    };
    calls.wait_for(|sequence| *sequence == 3, TIMEOUT).await.expect("the last message is handled");
    consumer.stop().await;
    assert_eq!(calls.snapshot(), [1, 2, 2, 2, 3]);
    let retried =
        support::metric_value(&handle, "taskwatch_messages_consumed_total{topic=\"retry-order\",outcome=\"retried\"}");
    assert_eq!(retried, Some(2.0));
}

#[tokio::test]
async fn poison_and_rejected_messages_are_dead_lettered_and_the_partition_moves_on() {
    let handle = support::telemetry();
    let (broker, config) = support::broker_with(&[("poison", 1), ("poison.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    producer.send(OutgoingMessage::new("poison", "task-1", "this is not JSON")).await.expect("acknowledged");
    publish(&producer, "poison", "task-1", &probe("reject-me", 2)).await;
    publish(&producer, "poison", "task-1", &probe("task-1", 3)).await;

    let handled: Shared<u32> = Arc::new(Collected::new());
    let consumer = {
        let handled = Arc::clone(&handled);
        Running::start(
            &config,
            Subscription::new(["poison"], "poison.dlq").expect("subscription"),
            move |message: IncomingMessage| {
                let outcome = if message.event.subject == "reject-me" {
                    Err(HandlerError::reject("task does not exist"))
                } else {
                    handled.push(sequence(&message));
                    Ok(())
                };
                async move { outcome }
            },
        )
    };
    handled.wait_for(|sequence| *sequence == 3, TIMEOUT).await.expect("the valid message behind them is handled");
    consumer.stop().await;
    assert_eq!(handled.snapshot(), [3]);

    let dead = support::read_raw(&broker, "poison.dlq", 2).await;
    assert_eq!(dead.len(), 2, "both bad messages are dead-lettered");
    let header = |message: &rdkafka::message::OwnedMessage, name: &str| {
        let headers = message.headers()?;
        headers
            .iter()
            .filter(|header| header.key == name)
            .last()
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    };
    assert_eq!(dead[0].payload(), Some(&b"this is not JSON"[..]));
    assert!(header(&dead[0], names::DEAD_LETTER_REASON).is_some_and(|reason| reason.starts_with("undecodable")));
    assert_eq!(header(&dead[0], names::DEAD_LETTER_TOPIC).as_deref(), Some("poison"));
    assert_eq!(header(&dead[0], names::DEAD_LETTER_OFFSET).as_deref(), Some("0"));
    assert_eq!(dead[1].key(), Some(&b"task-1"[..]));
    assert_eq!(header(&dead[1], names::DEAD_LETTER_REASON).as_deref(), Some("task does not exist"));
    assert!(header(&dead[1], names::TRACEPARENT).is_some(), "the trace context travels along");
    let dead_lettered = support::metric_value(&handle, "taskwatch_messages_dead_lettered_total{topic=\"poison\"}");
    assert_eq!(dead_lettered, Some(2.0));
}

#[tokio::test]
async fn each_keys_events_arrive_in_order_across_partitions() {
    let handle = support::telemetry();
    let (_broker, config) = support::broker_with(&[("ordered", 3), ("ordered.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    let keys: Vec<String> = (0..12).map(|task| format!("task-{task}")).collect();
    for sequence in 0..5 {
        for key in &keys {
            publish(&producer, "ordered", key, &probe(key, sequence)).await;
        }
    }
    let seen: Shared<(String, u32, i32)> = Arc::new(Collected::new());
    let consumer = {
        let seen = Arc::clone(&seen);
        Running::start(
            &config,
            Subscription::new(["ordered"], "ordered.dlq").expect("subscription"),
            move |message: IncomingMessage| {
                seen.push((message.event.subject.clone(), sequence(&message), message.partition));
                async { Ok::<(), HandlerError>(()) }
            },
        )
    };
    wait::until(TIMEOUT, || async { seen.len() >= 60 }).await.expect("every message is consumed");
    let seen = seen.snapshot();
    for key in &keys {
        let sequences: Vec<u32> =
            seen.iter().filter(|(subject, ..)| subject == key).map(|(_, sequence, _)| *sequence).collect();
        assert_eq!(sequences, (0..5).collect::<Vec<_>>(), "order of {key}");
    }
    let mut partitions: Vec<i32> = seen.iter().map(|(.., partition)| *partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    assert!(partitions.len() > 1, "keys spread over partitions: {partitions:?}");

    // Lag is measured for each partition consumed from, and is zero once everything is consumed.
    wait::until(TIMEOUT, || async {
        let rendered = handle.render();
        let lag: Vec<&str> =
            rendered.lines().filter(|line| line.starts_with("taskwatch_consumer_lag{topic=\"ordered\"")).collect();
        lag.len() == partitions.len() && lag.iter().all(|line| line.ends_with(" 0"))
    })
    .await
    .expect("lag of every partition reported as 0");
    consumer.stop().await;
    let consumed =
        support::metric_value(&handle, "taskwatch_messages_consumed_total{topic=\"ordered\",outcome=\"ok\"}");
    assert_eq!(consumed, Some(60.0));
    let produced =
        support::metric_value(&handle, "taskwatch_messages_produced_total{topic=\"ordered\",outcome=\"ok\"}");
    assert_eq!(produced, Some(60.0));
}

#[tokio::test]
async fn a_trace_context_stored_with_the_message_wins_over_the_current_span() {
    // The outbox relay's case: the request that wrote the row is long gone; its traceparent was
    // stored with the row and must parent the producer span (and so the consumer span).
    let (_broker, config) = support::broker_with(&[("relayed", 1), ("relayed.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    let seen: Shared<TraceId> = Arc::new(Collected::new());
    let consumer = {
        let seen = Arc::clone(&seen);
        Running::start(
            &config,
            Subscription::new(["relayed"], "relayed.dlq").expect("subscription"),
            move |_message: IncomingMessage| {
                seen.push(tracing::Span::current().context().span().span_context().trace_id());
                async { Ok::<(), HandlerError>(()) }
            },
        )
    };
    let stored = messaging::MessageHeaders::new()
        .with(names::TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let message = OutgoingMessage::event("relayed", "task-1", &probe("task-1", 1)).expect("serialise");
    let relay_span = tracing::info_span!("outbox relay tick");
    producer.send(message.with_headers(stored)).instrument(relay_span).await.expect("acknowledged");

    let trace_id = seen.wait_for(|_| true, TIMEOUT).await.expect("delivered");
    assert_eq!(trace_id, TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("hex"));
    consumer.stop().await;
}

#[tokio::test]
async fn a_message_the_broker_never_acknowledges_is_reported_as_failed() {
    let handle = support::telemetry();
    let (mut broker, mut config) = support::broker_with(&[("unacknowledged", 1)]).await;
    config.delivery_timeout = std::time::Duration::from_secs(2);
    config.request_timeout = std::time::Duration::from_secs(1);
    let producer = Producer::new(&config).expect("producer");
    support::publish(&producer, "unacknowledged", "task-1", &probe("task-1", 1)).await;
    let check_timeout = std::time::Duration::from_secs(2);
    assert_eq!(producer.check_broker(check_timeout).await, Ok(()));

    broker.stop();
    assert!(producer.check_broker(check_timeout).await.is_err(), "readiness turns red without a broker");
    let message = OutgoingMessage::event("unacknowledged", "task-1", &probe("task-1", 2)).expect("serialise");
    let outcome = tokio::time::timeout(TIMEOUT, producer.send(message)).await.expect("send gives up in time");
    let error = outcome.expect_err("no broker, no acknowledgement");
    assert_eq!(error.topic, "unacknowledged");
    let failed =
        support::metric_value(&handle, "taskwatch_messages_produced_total{topic=\"unacknowledged\",outcome=\"error\"}");
    assert_eq!(failed, Some(1.0));
}

#[tokio::test]
async fn a_member_leaving_the_group_hands_its_partitions_over_without_losing_messages() {
    let (_broker, config) = support::broker_with(&[("shared", 3), ("shared.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    let subscription = || Subscription::new(["shared"], "shared.dlq").expect("subscription");
    let seen: Shared<(&'static str, u32)> = Arc::new(Collected::new());
    let member = |name: &'static str| {
        let seen = Arc::clone(&seen);
        Running::start(&config, subscription(), move |message: IncomingMessage| {
            seen.push((name, sequence(&message)));
            async { Ok::<(), HandlerError>(()) }
        })
    };
    let first = member("first");
    let second = member("second");
    for sequence in 0..30 {
        publish(&producer, "shared", &format!("task-{}", sequence % 6), &probe("task", sequence)).await;
    }
    wait::until(TIMEOUT, || async {
        let seen = seen.snapshot();
        (0..30).all(|sequence| seen.iter().any(|(_, seen)| *seen == sequence))
    })
    .await
    .expect("the group consumes every message of the first batch");

    second.stop().await;
    for sequence in 30..60 {
        publish(&producer, "shared", &format!("task-{}", sequence % 6), &probe("task", sequence)).await;
    }
    wait::until(TIMEOUT, || async {
        let seen = seen.snapshot();
        (30..60).all(|sequence| seen.iter().any(|(member, seen)| *member == "first" && *seen == sequence))
    })
    .await
    .expect("the remaining member takes over every partition");
    first.stop().await;
}

#[tokio::test]
async fn a_clean_shutdown_during_retries_leaves_the_message_for_the_next_start() {
    let (_broker, config) = support::broker_with(&[("abandoned", 1), ("abandoned.dlq", 1)]).await;
    let subscription = || Subscription::new(["abandoned"], "abandoned.dlq").expect("subscription");
    let producer = Producer::new(&config).expect("producer");
    publish(&producer, "abandoned", "task-1", &probe("task-1", 1)).await;
    publish(&producer, "abandoned", "task-1", &probe("task-1", 2)).await;

    // The first message succeeds, the second keeps failing until shutdown.
    let attempts: Shared<u32> = Arc::new(Collected::new());
    let stuck = {
        let attempts = Arc::clone(&attempts);
        Running::start(&config, subscription(), move |message: IncomingMessage| {
            let sequence = sequence(&message);
            attempts.push(sequence);
            let outcome = if sequence == 1 { Ok(()) } else { Err(HandlerError::retry("backend down")) };
            async move { outcome }
        })
    };
    wait::until(TIMEOUT, || async { attempts.snapshot().iter().filter(|sequence| **sequence == 2).count() >= 2 })
        .await
        .expect("the second message is being retried");
    stuck.stop().await;

    let redelivered: Shared<u32> = Arc::new(Collected::new());
    let restarted = {
        let redelivered = Arc::clone(&redelivered);
        Running::start(&config, subscription(), move |message: IncomingMessage| {
            redelivered.push(sequence(&message));
            async { Ok::<(), HandlerError>(()) }
        })
    };
    redelivered.wait_for(|sequence| *sequence == 2, TIMEOUT).await.expect("the abandoned message comes back");
    restarted.stop().await;
    assert_eq!(redelivered.snapshot(), [2], "the handled message was committed at shutdown, the abandoned one was not");
}

#[tokio::test]
async fn messages_sent_while_the_broker_is_down_arrive_once_after_it_returns() {
    let (mut broker, config) = support::broker_with(&[("outage", 1), ("outage.dlq", 1)]).await;
    let producer = Producer::new(&config).expect("producer");
    let seen: Shared<u32> = Arc::new(Collected::new());
    let consumer = {
        let seen = Arc::clone(&seen);
        Running::start(
            &config,
            Subscription::new(["outage"], "outage.dlq").expect("subscription"),
            move |message: IncomingMessage| {
                seen.push(sequence(&message));
                async { Ok::<(), HandlerError>(()) }
            },
        )
    };
    publish(&producer, "outage", "task-1", &probe("task-1", 0)).await;
    seen.wait_for(|sequence| *sequence == 0, TIMEOUT).await.expect("consumed before the outage");

    broker.stop();
    let probe_timeout = std::time::Duration::from_millis(500);
    assert!(producer.check_broker(probe_timeout).await.is_err(), "the broker is down");
    // Sent during the outage: each send keeps retrying (up to KAFKA_DELIVERY_TIMEOUT) until acknowledged.
    let sends: Vec<_> = (1..=3)
        .map(|sequence| {
            let producer = producer.clone();
            tokio::spawn(async move {
                let message =
                    OutgoingMessage::event("outage", "task-1", &probe("task-1", sequence)).expect("serialise");
                producer.send(message).await
            })
        })
        .collect();
    assert!(producer.check_broker(probe_timeout).await.is_err(), "still down while the sends wait");
    broker.start_again().await.expect("the broker comes back with its data");
    for send in sends {
        send.await.expect("send task").expect("acknowledged once the broker is back");
    }

    wait::until(TIMEOUT, || async { seen.len() >= 4 }).await.expect("everything sent during the outage arrives");
    consumer.stop().await;
    let mut sequences = seen.snapshot();
    sequences.sort_unstable();
    assert_eq!(sequences, [0, 1, 2, 3], "each message exactly once, the one before the outage not again");
}
