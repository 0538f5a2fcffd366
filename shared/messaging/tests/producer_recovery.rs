//! The producer recovers by itself after an outage: once the broker is back, sends through the same `Producer`
//! (and its clones) succeed, although the outage left librdkafka's idempotent state out of step with the broker
//! (with tansu every later send of the old client fails with an "unknown broker error").

// Each test binary uses a different part of the shared support module.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use messaging::{OutgoingMessage, Producer};
use support::{TIMEOUT, probe};
use testkit::wait;

#[tokio::test]
async fn sends_through_the_same_producer_succeed_after_a_paused_broker_resumes() {
    let (mut broker, mut config) = support::broker_with(&[("recovery", 1)]).await;
    // Short, so the outage shows up as failed sends within seconds.
    config.delivery_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(1);
    let producer = Producer::new(&config).expect("producer");
    support::publish(&producer, "recovery", "task-1", &probe("task-1", 0)).await;

    broker.pause().expect("pause");
    for sequence in 1..=3 {
        let message = OutgoingMessage::event("recovery", "task-1", &probe("task-1", sequence)).expect("serialise");
        let outcome = tokio::time::timeout(TIMEOUT, producer.send(message)).await.expect("send gives up in time");
        outcome.expect_err("a paused broker acknowledges nothing");
    }
    broker.resume().expect("resume");

    // The caller only retries its send (as the outbox relay does); it never rebuilds anything.
    let resent = wait::until_some(TIMEOUT, || {
        let producer = producer.clone();
        async move {
            let message = OutgoingMessage::event("recovery", "task-1", &probe("task-1", 4)).expect("serialise");
            producer.send(message).await.ok()
        }
    })
    .await;
    assert!(resent.is_ok(), "the producer must recover once the broker is back: {}", broker.output().join("\n"));

    // And it stays healthy: the next sends succeed at the first attempt.
    for sequence in 5..=6 {
        support::publish(&producer, "recovery", "task-1", &probe("task-1", sequence)).await;
    }
}
