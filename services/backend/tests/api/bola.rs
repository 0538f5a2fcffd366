//! Broken object-level authorisation: another user's task must look exactly like a missing one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_problem};

#[tokio::test]
async fn another_users_task_is_a_404_on_every_verb() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Alice's secret").await;
    let id = task["id"].as_str().expect("id");
    let path = format!("/v1/tasks/{id}");
    let missing_path = format!("/v1/tasks/{}", uuid::Uuid::now_v7());

    for target in [&path, &missing_path] {
        let attempts = [
            app.as_user("bob", Method::GET, target),
            app.as_user("bob", Method::PATCH, target).header("if-match", "\"1\"").json(&json!({ "title": "mine now" })),
            app.as_user("bob", Method::PATCH, target).header("if-match", "*").json(&json!({ "title": "mine now" })),
            app.as_user("bob", Method::DELETE, target),
            app.as_user("bob", Method::DELETE, target).header("if-match", "\"1\""),
            app.as_user("bob", Method::POST, &format!("{target}/complete")),
            app.as_user("bob", Method::POST, &format!("{target}/complete")).header("idempotency-key", "k1"),
            app.as_user("bob", Method::POST, &format!("{target}/reopen")),
        ];
        let mut bodies = Vec::new();
        for attempt in attempts {
            let response = attempt.send().await.expect("request");
            bodies.push(expect_problem(response, StatusCode::NOT_FOUND).await);
        }
        // Same answer whether the task exists for someone else or not at all: nothing to enumerate.
        assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]), "{bodies:?}");
    }

    let listing: Value =
        app.as_user("bob", Method::GET, "/v1/tasks").send().await.expect("list").json().await.expect("json");
    assert_eq!(listing["items"], json!([]));

    // Alice's task is untouched and has only its creation event.
    let response = app.as_user("alice", Method::GET, &path).send().await.expect("get");
    assert_eq!(response.json::<Value>().await.expect("json"), task);
    assert_eq!(app.outbox_rows(id).await.len(), 1);
}

#[tokio::test]
async fn malformed_ids_in_the_path_are_404_problems() {
    let app = TestApp::start().await;
    // A method the route has: the id names no task, 404. A method it lacks: 405, whatever the id.
    let cases = [
        (Method::GET, "/v1/tasks/not-a-uuid", StatusCode::NOT_FOUND),
        (Method::GET, "/v1/tasks/123", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/tasks/not-a-uuid/complete", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/tasks/%00/reopen", StatusCode::NOT_FOUND),
        (Method::POST, "/v1/tasks/not-a-uuid", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/v1/tasks/not-a-uuid/complete", StatusCode::METHOD_NOT_ALLOWED),
    ];
    for (method, path, expected) in cases {
        let response = app.as_user("alice", method.clone(), path).send().await.expect("request");
        assert_eq!(response.status(), expected, "{method} {path}");
        expect_problem(response, expected).await;
    }
}
