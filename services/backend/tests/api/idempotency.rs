//! `Idempotency-Key`: retries replay the first outcome; one key cannot be reused for a different request.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_problem};

#[tokio::test]
async fn same_key_replays_the_first_response_without_a_second_row() {
    let app = TestApp::start().await;
    let body = json!({ "title": "Pay rent", "labels": ["money"] });
    let send = |body: Value| {
        app.as_user("alice", Method::POST, "/v1/tasks").header("idempotency-key", "rent-2026-05").json(&body).send()
    };

    let first = send(body.clone()).await.expect("first");
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.expect("json");

    // Same key, same body (different key order and whitespace): the same response, flagged as a replay.
    let retry = app
        .as_user("alice", Method::POST, "/v1/tasks")
        .header("idempotency-key", "rent-2026-05")
        .header("content-type", "application/json")
        .body("{ \"labels\": [\"money\"],   \"title\": \"Pay rent\" }")
        .send()
        .await
        .expect("retry");
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.expect("json"), first_body);

    // Even after the task changed, the replay is the first response.
    let id = first_body["id"].as_str().expect("id");
    let complete =
        app.as_user("alice", Method::POST, &format!("/v1/tasks/{id}/complete")).send().await.expect("complete");
    assert_eq!(complete.status(), StatusCode::OK);
    let replay: Value = send(body.clone()).await.expect("replay").json().await.expect("json");
    assert_eq!(replay, first_body);

    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 1);
    let created = app.outbox_rows(id).await.into_iter().filter(|r| r.event_type == "task.created.v1").count();
    assert_eq!(created, 1);

    // Same key, different body: refused.
    let reused = send(json!({ "title": "Pay more rent" })).await.expect("reuse");
    let problem = expect_problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["title"], "Idempotency-Key reused");

    // Keys are per user: Bob's identical key is his own.
    let bob = app
        .as_user("bob", Method::POST, "/v1/tasks")
        .header("idempotency-key", "rent-2026-05")
        .json(&body)
        .send()
        .await
        .expect("bob");
    assert_eq!(bob.status(), StatusCode::CREATED);
    assert_ne!(bob.json::<Value>().await.expect("json")["id"], first_body["id"]);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_task() {
    let app = TestApp::start().await;
    let body = json!({ "title": "Exactly once" });
    let requests = (0..10)
        .map(|_| app.as_user("alice", Method::POST, "/v1/tasks").header("idempotency-key", "once").json(&body).send());
    let mut ids = Vec::new();
    for response in join_all(requests).await {
        let response = response.expect("response");
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(response.json::<Value>().await.expect("json")["id"].clone());
    }
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "every retry answered with the one task: {ids:?}");
    // The losers' transactions rolled back: their task rows and outbox rows are gone with them.
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM backend.outbox").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM backend.idempotency_keys").await, 1);
}

#[tokio::test]
async fn complete_with_a_key_replays_instead_of_conflicting() {
    let app = TestApp::start().await;
    let task = app.create_simple_task("alice", "Once").await;
    let id = task["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/tasks/{id}/complete");
    let key = uuid::Uuid::now_v7().to_string();
    let first = app.as_user("alice", Method::POST, &path).header("idempotency-key", &key).send().await.expect("first");
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.expect("json");
    let second =
        app.as_user("alice", Method::POST, &path).header("idempotency-key", &key).send().await.expect("second");
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.json::<Value>().await.expect("json"), first);
    let completions = app.outbox_rows(&id).await.into_iter().filter(|r| r.event_type == "task.completed.v1").count();
    assert_eq!(completions, 1);

    // Concurrent retries of one keyed completion all get the one outcome.
    let racer = app.create_simple_task("alice", "Raced").await;
    let racer_id = racer["id"].as_str().expect("id").to_owned();
    let racer_path = format!("/v1/tasks/{racer_id}/complete");
    let responses = join_all(
        (0..10).map(|_| app.as_user("alice", Method::POST, &racer_path).header("idempotency-key", "race").send()),
    )
    .await;
    let mut bodies = Vec::new();
    for response in responses {
        let response = response.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        bodies.push(response.json::<Value>().await.expect("json"));
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]), "{bodies:?}");
    let completions =
        app.outbox_rows(&racer_id).await.into_iter().filter(|r| r.event_type == "task.completed.v1").count();
    assert_eq!(completions, 1);

    // The same key on another task is a different request.
    let other = app.create_simple_task("alice", "Other").await;
    let other_path = format!("/v1/tasks/{}/complete", other["id"].as_str().expect("id"));
    let reused =
        app.as_user("alice", Method::POST, &other_path).header("idempotency-key", &key).send().await.expect("reuse");
    expect_problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn a_malformed_key_is_a_bad_request() {
    let app = TestApp::start().await;
    let response = app
        .as_user("alice", Method::POST, "/v1/tasks")
        .header("idempotency-key", "x".repeat(300))
        .json(&json!({ "title": "t" }))
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 0);
}

#[tokio::test]
async fn a_replay_for_a_task_deleted_since_is_gone_not_a_ghost() {
    let app = TestApp::start().await;
    let send = || {
        app.as_user("alice", Method::POST, "/v1/tasks")
            .header("idempotency-key", "once")
            .json(&json!({ "title": "Once" }))
            .send()
    };
    let first: Value = send().await.expect("first").json().await.expect("json");
    let id = first["id"].as_str().expect("id");
    let deleted = app.as_user("alice", Method::DELETE, &format!("/v1/tasks/{id}")).send().await.expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let problem = expect_problem(send().await.expect("retry"), StatusCode::GONE).await;
    assert_eq!(problem["type"], "urn:taskwatch:problem:gone");
}
