//! `/internal/v1`: the service credential (and only it) opens it; the next occurrence of a series exists exactly
//! once however often, and with whichever key, it is requested.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{SERVICE_TOKEN, TestApp, expect_problem};

const DUE: &str = "2026-03-28T08:00:00Z";
/// The next day at 09:00 Europe/Berlin, after the change to summer time.
const NEXT_DUE: &str = "2026-03-29T07:00:00Z";

async fn recurring_task(app: &TestApp, user: &str) -> Value {
    app.create_task(
        user,
        json!({
            "title": "Standup",
            "labels": ["work"],
            "priority": "high",
            "due_at": DUE,
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY" },
            "reminders": [{ "kind": "before_due", "minutes": 5 }, { "kind": "at", "at": "2026-03-28T07:30:00Z" }],
        }),
    )
    .await
}

fn occurrences_path(task: &Value) -> String {
    format!("/internal/v1/series/{}/occurrences", task["series_id"].as_str().expect("series id"))
}

fn next_body(previous: &Value, due_at: &str) -> Value {
    json!({ "previous_task_id": previous["id"], "due_at": due_at })
}

#[tokio::test]
async fn only_the_service_credential_opens_the_internal_api() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Mine").await;
    let internal_paths = [
        (Method::GET, format!("/internal/v1/tasks/{}", task["id"].as_str().expect("id"))),
        (Method::GET, "/internal/v1/users/alice/notification-settings".to_owned()),
        (Method::POST, occurrences_path(&task)),
    ];
    for (method, path) in &internal_paths {
        let missing = app.request(method.clone(), path).send().await.expect("request");
        assert_eq!(missing.headers().get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
        expect_problem(missing, StatusCode::UNAUTHORIZED).await;
        let wrong = app.request(method.clone(), path).bearer_auth(format!("{SERVICE_TOKEN}x")).send().await;
        expect_problem(wrong.expect("request"), StatusCode::UNAUTHORIZED).await;
        // A valid user token is not a service credential.
        let user = app.as_user("alice", method.clone(), path).send().await.expect("request");
        expect_problem(user, StatusCode::UNAUTHORIZED).await;
    }
    // Nor is the service credential a user token.
    let on_public = app.as_service(Method::GET, "/v1/tasks").send().await.expect("request");
    expect_problem(on_public, StatusCode::UNAUTHORIZED).await;
    let allowed = app.as_service(Method::GET, &internal_paths[0].1).send().await.expect("request");
    assert_eq!(allowed.status(), StatusCode::OK);

    // Without a configured credential the internal API is closed to everyone.
    let closed = TestApp::start_with(|config| config.internal_service_token = None).await;
    let response = closed.as_service(Method::GET, "/internal/v1/users/alice/notification-settings").send().await;
    expect_problem(response.expect("request"), StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn reads_any_users_task_with_its_owner() {
    let app = TestApp::start().await;
    let task = recurring_task(&app, "alice").await;
    let id = task["id"].as_str().expect("id");

    let response = app.as_service(Method::GET, &format!("/internal/v1/tasks/{id}")).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["owner_id"], "alice");
    for field in ["id", "series_id", "title", "due_at", "time_zone", "recurrence", "reminders", "status", "version"] {
        assert_eq!(body[field], task[field], "field {field}");
    }

    let missing = app.as_service(Method::GET, &format!("/internal/v1/tasks/{}", uuid::Uuid::now_v7())).send().await;
    expect_problem(missing.expect("get"), StatusCode::NOT_FOUND).await;
    let malformed = app.as_service(Method::GET, "/internal/v1/tasks/not-a-uuid").send().await.expect("get");
    expect_problem(malformed, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn reads_any_users_notification_settings() {
    let app = TestApp::start().await;
    let settings = json!({ "email": "alice@example.com", "webhook_url": "https://hooks.example.com/alice" });
    let saved =
        app.as_user("alice|1", Method::PUT, "/v1/me/notification-settings").json(&settings).send().await.expect("put");
    assert_eq!(saved.status(), StatusCode::OK);

    let path = "/internal/v1/users/alice%7C1/notification-settings";
    let response = app.as_service(Method::GET, path).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.expect("json"), settings);

    let never_saved = app.as_service(Method::GET, "/internal/v1/users/bob/notification-settings").send().await;
    let body: Value = never_saved.expect("get").json().await.expect("json");
    assert_eq!(body, json!({ "email": null, "webhook_url": null }));

    let too_long = format!("/internal/v1/users/{}/notification-settings", "u".repeat(300));
    expect_problem(app.as_service(Method::GET, &too_long).send().await.expect("get"), StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn creates_the_next_occurrence_once_per_key_and_per_instant() {
    let app = TestApp::start().await;
    let previous = recurring_task(&app, "alice").await;
    let path = occurrences_path(&previous);
    let body = next_body(&previous, NEXT_DUE);
    let send = |key: &'static str, body: Value| {
        app.as_service(Method::POST, &path).header("idempotency-key", key).json(&body).send()
    };

    let first = send("event-1", body.clone()).await.expect("create");
    assert_eq!(first.status(), StatusCode::CREATED, "{:?}", first.text().await);
    let location = first.headers()["location"].to_str().expect("location").to_owned();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let created: Value = first.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/internal/v1/tasks/{id}"));
    assert_ne!(created["id"], previous["id"]);
    assert_eq!(created["series_id"], previous["series_id"]);
    assert_eq!(created["owner_id"], "alice");
    assert_eq!(created["status"], "open");
    assert_eq!(created["due_at"], NEXT_DUE);
    for field in ["title", "labels", "priority", "time_zone", "recurrence"] {
        assert_eq!(created[field], previous[field], "copied field {field}");
    }
    // Only the relative reminder moves with the series.
    assert_eq!(created["reminders"], json!([{ "kind": "before_due", "minutes": 5 }]));

    // The owner sees it in the public API, and its creation is in the outbox.
    let mine = app.as_user("alice", Method::GET, &format!("/v1/tasks/{id}")).send().await.expect("get");
    assert_eq!(mine.status(), StatusCode::OK);
    let events = app.outbox_rows(&id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "task.created.v1");
    assert_eq!(events[0].message_key, "alice", "keyed by the series' owner, as every change of the series");

    // The same key replays the first answer.
    let retry = send("event-1", body.clone()).await.expect("retry");
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.expect("json"), created);

    // Another key for the same occurrence gets the existing task.
    let other = send("event-2", body.clone()).await.expect("other key");
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(other.json::<Value>().await.expect("json")["id"], created["id"]);

    // The same key for a different request is refused.
    let reused = send("event-1", next_body(&previous, "2026-03-30T07:00:00Z")).await.expect("reuse");
    let problem = expect_problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["title"], "Idempotency-Key reused");

    let series_tasks = app.count("SELECT count(*) FROM backend.tasks").await;
    assert_eq!(series_tasks, 2, "the previous task and one occurrence");
    let created_events = app.count("SELECT count(*) FROM backend.outbox WHERE event_type = 'task.created.v1'").await;
    assert_eq!(created_events, 2);
}

#[tokio::test]
async fn ten_concurrent_requests_with_different_keys_create_one_task() {
    let app = TestApp::start().await;
    let previous = recurring_task(&app, "alice").await;
    let path = occurrences_path(&previous);
    let body = next_body(&previous, NEXT_DUE);
    let requests = (0..10).map(|n| {
        app.as_service(Method::POST, &path).header("idempotency-key", format!("delivery-{n}")).json(&body).send()
    });
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for response in join_all(requests).await {
        let response = response.expect("response");
        statuses.push(response.status());
        ids.push(response.json::<Value>().await.expect("json")["id"].clone());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK), "{statuses:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "every answer names the one occurrence: {ids:?}");
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM backend.outbox WHERE event_type = 'task.created.v1'").await, 2);
}

#[tokio::test]
async fn refuses_what_is_not_a_next_occurrence() {
    let app = TestApp::start().await;
    let previous = recurring_task(&app, "alice").await;
    let path = occurrences_path(&previous);
    let post = |path: String, key: Option<&'static str>, body: Value| {
        let request = app.as_service(Method::POST, &path).json(&body);
        match key {
            Some(key) => request.header("idempotency-key", key),
            None => request,
        }
        .send()
    };

    let no_key = post(path.clone(), None, next_body(&previous, NEXT_DUE)).await.expect("post");
    expect_problem(no_key, StatusCode::BAD_REQUEST).await;
    let not_later = post(path.clone(), Some("k1"), next_body(&previous, DUE)).await.expect("post");
    let problem = expect_problem(not_later, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(crate::harness::error_fields(&problem), ["due_at"]);
    let unknown_field =
        post(path.clone(), Some("k2"), json!({ "previous_task_id": previous["id"], "due_at": NEXT_DUE, "x": 1 }));
    expect_problem(unknown_field.await.expect("post"), StatusCode::UNPROCESSABLE_ENTITY).await;

    // A task of another series, an unknown series, a one-off task.
    let other = recurring_task(&app, "alice").await;
    let foreign = post(path.clone(), Some("k3"), next_body(&other, NEXT_DUE)).await.expect("post");
    expect_problem(foreign, StatusCode::NOT_FOUND).await;
    let unknown = format!("/internal/v1/series/{}/occurrences", uuid::Uuid::now_v7());
    expect_problem(
        post(unknown, Some("k4"), next_body(&previous, NEXT_DUE)).await.expect("post"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let one_off = app.create_task("alice", json!({ "title": "Once", "due_at": DUE })).await;
    let response = post(occurrences_path(&one_off), Some("k5"), next_body(&one_off, NEXT_DUE)).await.expect("post");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(crate::harness::error_fields(&problem), ["previous_task_id"]);

    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 3, "nothing was created");
}

#[tokio::test]
async fn a_deleted_occurrence_is_not_recreated() {
    let app = TestApp::start().await;
    let previous = recurring_task(&app, "alice").await;
    let path = occurrences_path(&previous);
    let body = next_body(&previous, NEXT_DUE);
    let created = app.as_service(Method::POST, &path).header("idempotency-key", "e1").json(&body).send().await;
    let created: Value = created.expect("create").json().await.expect("json");
    let deleted = app
        .as_user("alice", Method::DELETE, &format!("/v1/tasks/{}", created["id"].as_str().expect("id")))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    // A redelivered request (another event id) for the same occurrence does not bring it back.
    let again = app.as_service(Method::POST, &path).header("idempotency-key", "e2").json(&body).send().await;
    expect_problem(again.expect("post"), StatusCode::GONE).await;
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 1);
}
