//! Optimistic concurrency: one winner per version, the rest get 412, the row stays consistent.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_problem};

#[tokio::test]
async fn twenty_concurrent_patches_with_one_if_match_have_exactly_one_winner() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Contended").await;
    let id = task["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/tasks/{id}");

    let requests = (0..20).map(|n| {
        app.as_user("alice", Method::PATCH, &path)
            .header("if-match", "\"1\"")
            .json(&json!({ "title": format!("writer {n}") }))
            .send()
    });
    let responses: Vec<_> = join_all(requests).await.into_iter().map(|r| r.expect("response")).collect();

    let mut winners = Vec::new();
    let mut losers = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => winners.push(response.json::<Value>().await.expect("json")),
            StatusCode::PRECONDITION_FAILED => {
                expect_problem(response, StatusCode::PRECONDITION_FAILED).await;
                losers += 1;
            }
            other => panic!("unexpected status {other}: {:?}", response.text().await),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one PATCH wins");
    assert_eq!(losers, 19);

    let stored: Value = app.as_user("alice", Method::GET, &path).send().await.expect("get").json().await.expect("json");
    assert_eq!(stored["version"], 2);
    assert_eq!(stored["title"], winners[0]["title"]);
    let updates: Vec<_> =
        app.outbox_rows(&id).await.into_iter().filter(|row| row.event_type == "task.updated.v1").collect();
    assert_eq!(updates.len(), 1, "one event for the one change");
    assert_eq!(updates[0].payload["data"]["task"]["title"], winners[0]["title"]);
    assert_eq!(updates[0].payload["data"]["task"]["version"], 2);
}

#[tokio::test]
async fn patch_without_if_match_is_428_and_garbage_if_match_is_400() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Guarded").await;
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    let title = json!({ "title": "x" });
    expect_problem(patch(&app, &path, None, &title).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(patch(&app, &path, Some("1"), &title).await, StatusCode::BAD_REQUEST).await;
    // A weak tag is well-formed only quoted, as the OpenAPI pattern says (schemathesis sent this one).
    expect_problem(patch(&app, &path, Some("W/d&0Q"), &title).await, StatusCode::BAD_REQUEST).await;
    expect_problem(patch(&app, &path, Some("W/\"1\""), &title).await, StatusCode::PRECONDITION_FAILED).await;
}

/// `PATCH path` as alice with `body`, and `If-Match` when given.
async fn patch(app: &TestApp, path: &str, if_match: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app.as_user("alice", Method::PATCH, path).json(body);
    if let Some(if_match) = if_match {
        request = request.header("if-match", if_match);
    }
    request.send().await.expect("patch")
}

/// A body no version could accept is 422 even under a stale If-Match: fetching the task again would not help, so
/// 412 would send the client round in a loop (found by schemathesis' random phase: `time_zone` outside its enum).
#[tokio::test]
async fn an_invalid_patch_is_422_whatever_its_if_match_and_a_valid_stale_one_412() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Zoned").await;
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    for if_match in ["\"1\"", "\"7\""] {
        let response = patch(&app, &path, Some(if_match), &json!({ "time_zone": "__not_a_zone__" })).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let response = patch(&app, &path, Some("\"7\""), &json!({ "time_zone": "Europe/Berlin" })).await;
    expect_problem(response, StatusCode::PRECONDITION_FAILED).await;
}

#[tokio::test]
async fn concurrent_completes_complete_once() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Finish me").await;
    let id = task["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/tasks/{id}/complete");
    let responses = join_all((0..10).map(|_| app.as_user("alice", Method::POST, &path).send())).await;
    let statuses: Vec<StatusCode> = responses.into_iter().map(|r| r.expect("response").status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
    let completions = app.outbox_rows(&id).await.into_iter().filter(|r| r.event_type == "task.completed.v1").count();
    assert_eq!(completions, 1);
}
