//! `TopicTail` against a real broker (tansu): every partition from a point in time, in each of two tails.

// Each test binary uses a different part of the shared support module.
#[allow(dead_code)]
mod support;

use std::time::{Duration, SystemTime};

use messaging::{Producer, TopicTail};
use support::{TIMEOUT, probe, publish};

/// Long enough that a tail which would deliver a message has done so on a loaded machine.
const QUIET: Duration = Duration::from_secs(3);

/// Returns once the wall clock is past `instant`, so a message sent next is stamped after it.
async fn clock_past(instant: SystemTime) {
    while SystemTime::now() <= instant {
        tokio::task::yield_now().await;
    }
}

async fn next_sequence(tail: &TopicTail, within: Duration) -> Option<u32> {
    let message = tokio::time::timeout(within, tail.recv()).await.ok()?.expect("read");
    Some(message.event.data["sequence"].as_u64().expect("sequence") as u32)
}

#[tokio::test]
async fn two_tails_each_read_every_partition_from_the_start_time_and_nothing_older() {
    let (_broker, config) = support::broker_with(&[("fanned", 3)]).await;
    let producer = Producer::new(&config).expect("producer");
    // Before the start time, on every partition (keys spread them).
    for (sequence, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
        publish(&producer, "fanned", key, &probe(key, sequence as u32)).await;
    }
    // Messages carry millisecond timestamps: make the start time strictly later than all of the above.
    let after_old = SystemTime::now() + Duration::from_millis(2);
    clock_past(after_old).await;
    let recent: Vec<u32> = (10..16).collect();
    for sequence in &recent {
        let key = format!("user-{sequence}");
        publish(&producer, "fanned", &key, &probe(&key, *sequence)).await;
    }

    for _ in 0..2 {
        let tail = TopicTail::new(&config, "fanned").expect("tail");
        let started = tail.start_at(after_old).await.expect("starts");
        assert_eq!(started.len(), 3, "every partition is assigned");
        let mut seen = Vec::new();
        while seen.len() < recent.len() {
            seen.push(next_sequence(&tail, TIMEOUT).await.expect("a recent message"));
        }
        seen.sort_unstable();
        assert_eq!(seen, recent, "each tail reads exactly the messages written since the start time");
        assert_eq!(next_sequence(&tail, QUIET).await, None, "an older message was read");
    }

    // Started after everything: nothing old is read (tansu answers such a lookup with offset 0), new ones are.
    let late = TopicTail::new(&config, "fanned").expect("tail");
    let start = SystemTime::now() + Duration::from_millis(2);
    late.start_at(start).await.expect("starts");
    assert_eq!(next_sequence(&late, QUIET).await, None, "a tail started after every message read one");
    clock_past(start).await;
    publish(&producer, "fanned", "later", &probe("later", 99)).await;
    assert_eq!(next_sequence(&late, TIMEOUT).await, Some(99));
    assert_eq!(late.lag().await.expect("lag"), 0, "the tail has read everything");
}
