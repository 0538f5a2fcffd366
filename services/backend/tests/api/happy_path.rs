use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, etag_of, expect_problem};

#[tokio::test]
async fn a_task_lives_its_whole_life_through_the_api() {
    let app = TestApp::start().await;

    // Create.
    let body = json!({
        "title": "  Water the plants ",
        "description": "Both balconies",
        "priority": "high",
        "labels": ["home", "garden"],
        "due_at": "2026-05-01T07:00:00Z",
        "time_zone": "Europe/Berlin",
        "recurrence": { "rrule": "FREQ=WEEKLY;BYDAY=FR", "anchor": "due" },
        "reminders": [{ "kind": "before_due", "minutes": 30 }, { "kind": "at", "at": "2026-04-30T18:00:00Z" }]
    });
    let response = app.as_user("alice", Method::POST, "/v1/tasks").json(&body).send().await.expect("create");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(etag_of(&response), "\"1\"");
    let created: Value = response.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/v1/tasks/{id}"));
    assert_eq!(uuid::Uuid::parse_str(&id).expect("uuid").get_version_num(), 7);
    assert_eq!(created["title"], "Water the plants");
    assert_eq!(created["status"], "open");
    assert_eq!(created["version"], 1);
    assert_eq!(created["series_id"], created["id"]);
    assert_eq!(created["recurrence"]["rrule"], "FREQ=WEEKLY;BYDAY=FR");
    assert_eq!(created["reminders"][0], json!({ "kind": "before_due", "minutes": 30 }));
    assert_eq!(created["completed_at"], Value::Null);

    // Read it back, exactly as created.
    let response = app.as_user("alice", Method::GET, &location).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(etag_of(&response), "\"1\"");
    assert_eq!(response.json::<Value>().await.expect("json"), created);

    // It shows up in the listing.
    let list: Value =
        app.as_user("alice", Method::GET, "/v1/tasks").send().await.expect("list").json().await.expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["next_cursor"], Value::Null);

    // Patch: change the title, clear the description.
    let response = app
        .as_user("alice", Method::PATCH, &location)
        .header("if-match", "\"1\"")
        .header("content-type", "application/merge-patch+json")
        .body(json!({ "title": "Water all plants", "description": null }).to_string())
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(etag_of(&response), "\"2\"");
    let patched: Value = response.json().await.expect("json");
    assert_eq!(patched["title"], "Water all plants");
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["labels"], json!(["home", "garden"]), "absent fields stay");

    // Complete, then reopen.
    let response = app.as_user("alice", Method::POST, &format!("{location}/complete")).send().await.expect("complete");
    assert_eq!(response.status(), StatusCode::OK);
    let completed: Value = response.json().await.expect("json");
    assert_eq!(completed["status"], "completed");
    assert!(completed["completed_at"].is_string());
    assert_eq!(completed["version"], 3);
    let again = app.as_user("alice", Method::POST, &format!("{location}/complete")).send().await.expect("complete");
    expect_problem(again, StatusCode::CONFLICT).await;

    let response = app.as_user("alice", Method::POST, &format!("{location}/reopen")).send().await.expect("reopen");
    assert_eq!(response.status(), StatusCode::OK);
    let reopened: Value = response.json().await.expect("json");
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["completed_at"], Value::Null);
    assert_eq!(reopened["version"], 4);

    // Delete with a stale If-Match fails, with the current one succeeds.
    let stale =
        app.as_user("alice", Method::DELETE, &location).header("if-match", "\"3\"").send().await.expect("delete");
    expect_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let response =
        app.as_user("alice", Method::DELETE, &location).header("if-match", "\"4\"").send().await.expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let gone = app.as_user("alice", Method::GET, &location).send().await.expect("get");
    expect_problem(gone, StatusCode::NOT_FOUND).await;

    // Every change left one event, in order.
    let types: Vec<String> = app.outbox_rows(&id).await.into_iter().map(|row| row.event_type).collect();
    assert_eq!(
        types,
        ["task.created.v1", "task.updated.v1", "task.completed.v1", "task.reopened.v1", "task.deleted.v1"]
    );
}

#[tokio::test]
async fn an_unchanged_patch_is_not_a_change() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Same").await;
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    let response = app
        .as_user("alice", Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({ "title": "Same" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(etag_of(&response), "\"1\"", "no new version");
    assert_eq!(app.outbox_rows(task["id"].as_str().expect("id")).await.len(), 1, "only the created event");
}

#[tokio::test]
async fn notification_settings_round_trip() {
    let app = TestApp::start().await;
    let path = "/v1/me/notification-settings";
    let empty: Value = app.as_user("alice", Method::GET, path).send().await.expect("get").json().await.expect("json");
    assert_eq!(empty, json!({ "email": null, "webhook_url": null }));

    let settings = json!({ "email": "alice@example.com", "webhook_url": "https://hooks.example.com/tw" });
    let response = app.as_user("alice", Method::PUT, path).json(&settings).send().await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let saved: Value = app.as_user("alice", Method::GET, path).send().await.expect("get").json().await.expect("json");
    assert_eq!(saved, settings);

    // Another user sees only their own (empty) settings.
    let other: Value = app.as_user("bob", Method::GET, path).send().await.expect("get").json().await.expect("json");
    assert_eq!(other, json!({ "email": null, "webhook_url": null }));

    let bad = json!({ "email": "nope", "webhook_url": "https://169.254.169.254/latest" });
    let response = app.as_user("alice", Method::PUT, path).json(&bad).send().await.expect("put");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(crate::harness::error_fields(&problem), ["email", "webhook_url"]);
}

#[tokio::test]
async fn openapi_document_and_docs_page_are_served() {
    let app = TestApp::start().await;
    let response = app.request(Method::GET, "/openapi.json").send().await.expect("openapi");
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("json");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/v1/tasks",
        "/v1/tasks/{id}",
        "/v1/tasks/{id}/complete",
        "/v1/tasks/{id}/reopen",
        "/v1/me/notification-settings",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    // Every kind of problem is in the schema clients read, and in the API reference people read.
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let documented: Vec<&str> = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
        .as_array()
        .map_or_else(Vec::new, |kinds| kinds.iter().filter_map(Value::as_str).collect());
    for kind in observability::ProblemType::ALL {
        assert!(documented.contains(&kind.uri().as_str()), "{} missing from the Problem schema", kind.uri());
        assert!(
            reference.contains(&format!("`{}`", kind.uri())),
            "{} missing from services/backend/README.md",
            kind.uri()
        );
    }

    let docs = app.request(Method::GET, "/docs/").send().await.expect("docs");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("html").contains("swagger"), "docs page is Swagger UI");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::start().await;
    expect_problem(app.request(Method::GET, "/nope").send().await.expect("get"), StatusCode::NOT_FOUND).await;
    let response = app.as_user("alice", Method::PUT, "/v1/tasks").send().await.expect("put");
    expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn local_webhooks_are_refused_unless_development_allows_them() {
    let path = "/v1/me/notification-settings";
    let local = json!({ "email": null, "webhook_url": "http://127.0.0.1:9000/hook" });

    let production = TestApp::start().await;
    let response = production.as_user("alice", Method::PUT, path).json(&local).send().await.expect("put");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(crate::harness::error_fields(&problem), ["webhook_url"]);

    let development =
        TestApp::start_with(|config| config.webhook_policy = backend::domain::WebhookPolicy::AllowPrivate).await;
    let response = development.as_user("alice", Method::PUT, path).json(&local).send().await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let saved: Value =
        development.as_user("alice", Method::GET, path).send().await.expect("get").json().await.expect("json");
    assert_eq!(saved, local);
}
