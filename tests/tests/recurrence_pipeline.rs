//! The event pipeline as deployed: the backend's outbox relay publishes a completion to Kafka, the
//! recurring-task binary consumes it and asks the backend's internal API for the next occurrence.

use e2e::{Api, PIPELINE_DEADLINE, RunningBackend, RunningRecurringTask, metric_samples};
use serde_json::json;
use testkit::kafka::Broker;
use testkit::postgres::TestDatabase;

/// 09:00 CET in Europe/Berlin on 2030-03-30, the day before the clocks spring forward.
const DUE_BEFORE_DST: &str = "2030-03-30T08:00:00Z";
/// 09:00 CEST the next day: the wall-clock time holds, so the UTC instant moves an hour earlier.
const NEXT_DUE_AFTER_DST: &str = "2030-03-31T07:00:00Z";
const TASK_EVENTS: &str = "task-events";

/// Whether the restarted consumer has handled the re-delivered completion (the backend confirmed the
/// occurrence again) and stands at the end of every `task-events` partition it measured.
fn caught_up_after_redelivery(metrics: &str) -> bool {
    let confirmed: f64 = metric_samples(metrics, "taskwatch_recurring_occurrences_created_total", &[]).iter().sum();
    let lag = metric_samples(metrics, "taskwatch_consumer_lag", &[("topic", TASK_EVENTS)]);
    confirmed >= 1.0 && !lag.is_empty() && lag.iter().all(|behind| *behind == 0.0)
}

#[tokio::test]
async fn completing_a_daily_task_creates_its_next_occurrence_once_even_when_the_consumer_crashes() {
    let db = TestDatabase::new().await.expect("test database");
    let broker = Broker::start().await.expect("kafka broker");
    let bootstrap = broker.bootstrap();
    let backend = RunningBackend::start_with_kafka(db.url(), &bootstrap).await.expect("backend starts");
    // This consumer never commits an offset before it is killed, so its successor must get the
    // completion again: the redelivery the backend has to absorb.
    let consumer_env = [("KAFKA_SESSION_TIMEOUT", "6s"), ("KAFKA_LAG_INTERVAL", "200ms")];
    let mut consumer = RunningRecurringTask::start(
        &bootstrap,
        &backend.base_url,
        &[consumer_env[0], consumer_env[1], ("KAFKA_COMMIT_INTERVAL", "1h")],
    )
    .await
    .expect("recurring-task starts");
    let api = Api::for_user(&backend.base_url, "alice").expect("dev token");

    let task = api
        .create_task(&json!({
            "title": "Water the plants",
            "due_at": DUE_BEFORE_DST,
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    let task_id = task["id"].as_str().expect("task id");
    let series_id = task["series_id"].as_str().expect("a recurring task has a series id").to_owned();
    api.complete(task_id).await.expect("task completed");

    let occurrences = api.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await.unwrap_or_else(|| {
        panic!(
            "no next occurrence within {PIPELINE_DEADLINE:?}; recurring-task said:\n{}",
            [consumer.process.stdout_lines(), consumer.process.stderr_lines()].concat().join("\n")
        )
    });
    assert_eq!(occurrences.len(), 1, "one completion, one next occurrence: {occurrences:#?}");
    let next = &occurrences[0];
    assert_ne!(next["id"], task["id"]);
    assert_eq!(next["due_at"], NEXT_DUE_AFTER_DST, "09:00 Berlin wall-clock time across the DST change");
    assert_eq!(next["title"], "Water the plants");

    consumer.process.kill().expect("SIGKILL recurring-task");
    let restarted = RunningRecurringTask::start(&bootstrap, &backend.base_url, &consumer_env)
        .await
        .expect("recurring-task restarts");
    let caught_up = testkit::wait::until(PIPELINE_DEADLINE, || async {
        restarted.metrics().await.is_some_and(|metrics| caught_up_after_redelivery(&metrics))
    })
    .await;
    assert!(
        caught_up.is_ok(),
        "the restarted consumer never handled the re-delivered completion; metrics:\n{}\nlog:\n{}",
        restarted.metrics().await.unwrap_or_default(),
        [restarted.process.stdout_lines(), restarted.process.stderr_lines()].concat().join("\n")
    );

    let after_redelivery = api.open_tasks_in_series(&series_id).await.expect("list open tasks");
    assert_eq!(after_redelivery.len(), 1, "the redelivery created a duplicate: {after_redelivery:#?}");
    assert_eq!(after_redelivery[0]["id"], next["id"]);
}

/// The series a calendar shows for "daily at 02:30 America/New_York" from 2027-03-12: 02:30 does not exist on
/// 2027-03-14, so that day only it is 03:30 daylight time (RFC 5545 3.3.5); from the next day it is 02:30 again.
const NEW_YORK_02_30_DAILY: [&str; 6] = [
    "2027-03-12T07:30:00Z",
    "2027-03-13T07:30:00Z",
    "2027-03-14T07:30:00Z",
    "2027-03-15T06:30:00Z",
    "2027-03-16T06:30:00Z",
    "2027-03-17T06:30:00Z",
];

#[tokio::test]
async fn a_daily_series_through_the_spring_forward_gap_keeps_its_wall_clock_time() {
    let db = TestDatabase::new().await.expect("test database");
    let broker = Broker::start().await.expect("kafka broker");
    let bootstrap = broker.bootstrap();
    let backend = RunningBackend::start_with_kafka(db.url(), &bootstrap).await.expect("backend starts");
    let consumer = RunningRecurringTask::start(&bootstrap, &backend.base_url, &[("KAFKA_SESSION_TIMEOUT", "6s")])
        .await
        .expect("recurring-task starts");
    let api = Api::for_user(&backend.base_url, "alice").expect("dev token");

    let first = api
        .create_task(&json!({
            "title": "Night shift",
            "due_at": NEW_YORK_02_30_DAILY[0],
            "time_zone": "America/New_York",
            "recurrence": { "rrule": "FREQ=DAILY" },
        }))
        .await
        .expect("task created");
    let series_id = first["series_id"].as_str().expect("series id").to_owned();
    let mut current = first;
    let mut due_times = vec![current["due_at"].as_str().expect("due_at").to_owned()];
    // Complete each occurrence through the API, as a user would, and wait for the one the services create.
    while due_times.len() < NEW_YORK_02_30_DAILY.len() {
        api.complete(current["id"].as_str().expect("id")).await.expect("task completed");
        let open = api.wait_for_open_in_series(&series_id, PIPELINE_DEADLINE).await.unwrap_or_else(|| {
            panic!(
                "no occurrence after {}; recurring-task said:\n{}",
                due_times.join(", "),
                [consumer.process.stdout_lines(), consumer.process.stderr_lines()].concat().join("\n")
            )
        });
        assert_eq!(open.len(), 1, "one open occurrence at a time: {open:#?}");
        current = open[0].clone();
        assert_eq!(current["recurrence"]["series_start"], NEW_YORK_02_30_DAILY[0], "every occurrence knows its series");
        due_times.push(current["due_at"].as_str().expect("due_at").to_owned());
    }
    assert_eq!(due_times, NEW_YORK_02_30_DAILY);
}
