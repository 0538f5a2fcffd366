//! Recurring series through the API: every occurrence carries its series' start, and editing an occurrence's due
//! time, zone or rule starts the series again there (RANGE=THISANDFUTURE) while keeping its COUNT total.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, etag_of};

/// 02:30 America/New_York on 2027-03-12, two days before the spring-forward gap swallows 02:30.
const FIRST_DUE: &str = "2027-03-12T07:30:00Z";

async fn daily_series(app: &TestApp, rule: &str) -> Value {
    app.create_task(
        "alice",
        json!({ "title": "Night shift", "due_at": FIRST_DUE, "time_zone": "America/New_York", "recurrence": { "rrule": rule } }),
    )
    .await
}

/// The next occurrence as `recurring-task` creates it, through the internal API.
async fn next_occurrence(app: &TestApp, previous: &Value, due_at: &str) -> Value {
    let path = format!("/internal/v1/series/{}/occurrences", previous["series_id"].as_str().expect("series id"));
    let response = app
        .as_service(Method::POST, &path)
        .header("idempotency-key", format!("next-{due_at}"))
        .json(&json!({ "previous_task_id": previous["id"], "due_at": due_at }))
        .send()
        .await
        .expect("create occurrence");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("json")
}

async fn patch(app: &TestApp, task: &Value, body: Value) -> Value {
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    let current = app.as_user("alice", Method::GET, &path).send().await.expect("get");
    let etag = etag_of(&current);
    let response = app
        .as_user("alice", Method::PATCH, &path)
        .header("if-match", etag)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
    response.json().await.expect("json")
}

#[tokio::test]
async fn occurrences_carry_the_series_start_and_the_rule_unchanged() {
    let app = TestApp::start().await;
    let first = daily_series(&app, "FREQ=DAILY;COUNT=5").await;
    assert_eq!(first["recurrence"]["series_start"], FIRST_DUE, "a new series starts at its due time");
    let second = next_occurrence(&app, &first, "2027-03-13T07:30:00Z").await;
    let third = next_occurrence(&app, &second, "2027-03-14T07:30:00Z").await;
    for occurrence in [&second, &third] {
        assert_eq!(occurrence["recurrence"]["series_start"], FIRST_DUE);
        assert_eq!(occurrence["recurrence"]["rrule"], "FREQ=DAILY;COUNT=5", "COUNT counts the whole series");
    }
    // Editing something else leaves the series alone.
    let renamed = patch(&app, &third, json!({ "title": "Night shift (B)" })).await;
    assert_eq!(renamed["recurrence"], third["recurrence"]);
}

#[tokio::test]
async fn editing_an_occurrences_due_time_starts_the_rest_of_the_series_there() {
    let app = TestApp::start().await;
    let first = daily_series(&app, "FREQ=DAILY;COUNT=5").await;
    let second = next_occurrence(&app, &first, "2027-03-13T07:30:00Z").await;
    // Moved to 04:00 local: the second of five, so it and three more remain.
    let moved = patch(&app, &second, json!({ "due_at": "2027-03-13T09:00:00Z" })).await;
    assert_eq!(moved["recurrence"]["series_start"], "2027-03-13T09:00:00Z");
    assert_eq!(moved["recurrence"]["rrule"], "FREQ=DAILY;COUNT=4");
    // A rule the edit sets itself is taken as it is, counted from this occurrence.
    let new_rule = patch(&app, &moved, json!({ "recurrence": { "rrule": "FREQ=WEEKLY;COUNT=2" } })).await;
    assert_eq!(new_rule["recurrence"]["rrule"], "FREQ=WEEKLY;COUNT=2");
    assert_eq!(new_rule["recurrence"]["series_start"], "2027-03-13T09:00:00Z");
    // Another zone re-anchors too: the same instant, read on another wall clock from now on.
    let rezoned = patch(&app, &second, json!({ "time_zone": "Europe/Berlin" })).await;
    assert_eq!(rezoned["recurrence"]["series_start"], "2027-03-13T09:00:00Z");
    assert_eq!(rezoned["recurrence"]["rrule"], "FREQ=WEEKLY;COUNT=2");
}
