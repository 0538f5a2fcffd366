//! Bad input, field by field: always a precise problem+json, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, error_fields, expect_problem};

/// (what, body, expected status, field the problem must name)
fn create_cases() -> Vec<(&'static str, Value, StatusCode, &'static str)> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    vec![
        ("missing title", json!({}), unprocessable, "title"),
        ("blank title", json!({ "title": "   " }), unprocessable, "title"),
        ("long title", json!({ "title": "x".repeat(201) }), unprocessable, "title"),
        ("title wrong type", json!({ "title": 42 }), unprocessable, "title"),
        (
            "description too long",
            json!({ "title": "t", "description": "d".repeat(10_001) }),
            unprocessable,
            "description",
        ),
        ("unknown priority", json!({ "title": "t", "priority": "extreme" }), unprocessable, "priority"),
        ("labels not a list", json!({ "title": "t", "labels": "home" }), unprocessable, "labels"),
        ("empty label", json!({ "title": "t", "labels": ["ok", ""] }), unprocessable, "labels[1]"),
        ("duplicate label", json!({ "title": "t", "labels": ["a", "a"] }), unprocessable, "labels[1]"),
        (
            "too many labels",
            json!({ "title": "t", "labels": (0..21).map(|i| format!("l{i}")).collect::<Vec<_>>() }),
            unprocessable,
            "labels",
        ),
        ("due_at not a timestamp", json!({ "title": "t", "due_at": "tomorrow" }), unprocessable, "due_at"),
        ("due_at without offset", json!({ "title": "t", "due_at": "2026-05-01T09:00:00" }), unprocessable, "due_at"),
        ("unknown time zone", json!({ "title": "t", "time_zone": "Mars/Olympus" }), unprocessable, "time_zone"),
        // Due times are bounded by what every part of the pipeline can represent (1970 to 2099, see recurrence::LATEST).
        (
            "due_at at the end of time",
            json!({ "title": "t", "due_at": "9999-12-31T23:59:59Z" }),
            unprocessable,
            "due_at",
        ),
        ("due_at in 2100", json!({ "title": "t", "due_at": "2100-01-01T00:00:00Z" }), unprocessable, "due_at"),
        ("due_at before 1970", json!({ "title": "t", "due_at": "1969-12-31T23:59:59Z" }), unprocessable, "due_at"),
        (
            "a daily series with no room for its next occurrence",
            json!({ "title": "t", "due_at": "2099-12-31T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY" } }),
            unprocessable,
            "due_at",
        ),
        (
            "sub-daily recurrence",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "recurrence": { "rrule": "FREQ=HOURLY" } }),
            unprocessable,
            "recurrence.rrule",
        ),
        (
            "count and until",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z" } }),
            unprocessable,
            "recurrence.rrule",
        ),
        (
            "unsupported rule part",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY;BYHOUR=9" } }),
            unprocessable,
            "recurrence.rrule",
        ),
        (
            "recurrence without due",
            json!({ "title": "t", "recurrence": { "rrule": "FREQ=DAILY" } }),
            unprocessable,
            "due_at",
        ),
        (
            "unknown anchor",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY", "anchor": "whenever" } }),
            unprocessable,
            "recurrence.anchor",
        ),
        (
            "recurrence without rule",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "recurrence": {} }),
            unprocessable,
            "recurrence.rrule",
        ),
        (
            "offset reminder without due",
            json!({ "title": "t", "reminders": [{ "kind": "before_due", "minutes": 5 }] }),
            unprocessable,
            "reminders[0]",
        ),
        (
            "negative offset",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "reminders": [{ "kind": "before_due", "minutes": -5 }] }),
            unprocessable,
            "reminders[0].minutes",
        ),
        (
            "unknown reminder kind",
            json!({ "title": "t", "reminders": [{ "kind": "sometime" }] }),
            unprocessable,
            "reminders[0].kind",
        ),
        (
            "too many reminders",
            json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "reminders": (0..11).map(|m| json!({ "kind": "before_due", "minutes": m })).collect::<Vec<_>>() }),
            unprocessable,
            "reminders",
        ),
        // A series is joined only through the internal API, by the occurrences the series creates itself.
        ("read-only series_id", json!({ "title": "t", "series_id": uuid::Uuid::now_v7() }), unprocessable, "series_id"),
        ("unknown field", json!({ "title": "t", "colour": "red" }), unprocessable, "colour"),
        ("read-only id", json!({ "title": "t", "id": uuid::Uuid::now_v7() }), unprocessable, "id"),
        ("read-only status", json!({ "title": "t", "status": "completed" }), unprocessable, "status"),
        ("read-only version", json!({ "title": "t", "version": 7 }), unprocessable, "version"),
        (
            "read-only completed_at",
            json!({ "title": "t", "completed_at": "2026-05-01T09:00:00Z" }),
            unprocessable,
            "completed_at",
        ),
        (
            "read-only created_at",
            json!({ "title": "t", "created_at": "2026-05-01T09:00:00Z" }),
            unprocessable,
            "created_at",
        ),
        (
            "read-only updated_at",
            json!({ "title": "t", "updated_at": "2026-05-01T09:00:00Z" }),
            unprocessable,
            "updated_at",
        ),
        ("not an object", json!(["title"]), unprocessable, "body"),
    ]
}

#[tokio::test]
async fn each_invalid_create_field_is_named() {
    let app = TestApp::start().await;
    for (what, body, status, field) in create_cases() {
        let response = app.as_user("alice", Method::POST, "/v1/tasks").json(&body).send().await.expect("request");
        let problem = expect_problem(response, status).await;
        let fields = error_fields(&problem);
        assert!(fields.iter().any(|f| f == field), "{what}: expected field `{field}` in {problem}");
    }
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 0, "nothing invalid was stored");
}

#[tokio::test]
async fn several_invalid_fields_are_reported_together() {
    let app = TestApp::start().await;
    let body = json!({ "title": "", "time_zone": "Nowhere/City", "labels": [""], "reminders": [{ "kind": "before_due", "minutes": 5 }] });
    let response = app.as_user("alice", Method::POST, "/v1/tasks").json(&body).send().await.expect("request");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["title", "labels[0]", "time_zone", "reminders[0]"]);
}

#[tokio::test]
async fn malformed_bodies_and_media_types() {
    let app = TestApp::start().await;
    let post = || app.as_user("alice", Method::POST, "/v1/tasks");
    let cases = [
        (post().header("content-type", "application/json").body("{\"title\": "), StatusCode::BAD_REQUEST),
        (post().header("content-type", "application/json").body("not json"), StatusCode::BAD_REQUEST),
        (post().header("content-type", "application/json").body(""), StatusCode::BAD_REQUEST),
        (post().header("content-type", "text/plain").body("{\"title\": \"t\"}"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (post().body("{\"title\": \"t\"}"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ];
    for (request, status) in cases {
        expect_problem(request.send().await.expect("request"), status).await;
    }
}

#[tokio::test]
async fn invalid_patches_are_named_and_change_nothing() {
    let app = TestApp::start().await;
    let task = app.create_task("alice", json!({ "title": "t", "due_at": "2026-05-01T09:00:00Z", "reminders": [{ "kind": "before_due", "minutes": 10 }] })).await;
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    let cases = [
        (json!({ "title": null }), "title"),
        (json!({ "title": "" }), "title"),
        (json!({ "priority": null }), "priority"),
        (json!({ "labels": null }), "labels"),
        (json!({ "time_zone": "Atlantis" }), "time_zone"),
        // Clearing the due time would orphan the before-due reminder: the merged task is validated as a whole.
        (json!({ "due_at": null }), "reminders[0]"),
        (json!({ "version": 9 }), "version"),
        (json!({ "series_id": uuid::Uuid::now_v7() }), "series_id"),
    ];
    for (body, field) in cases {
        let response = app
            .as_user("alice", Method::PATCH, &path)
            .header("if-match", "\"1\"")
            .json(&body)
            .send()
            .await
            .expect("patch");
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(error_fields(&problem).iter().any(|f| f == field), "{body}: expected `{field}` in {problem}");
    }
    let stored: Value = app.as_user("alice", Method::GET, &path).send().await.expect("get").json().await.expect("json");
    assert_eq!(stored, task);
}
