//! A task's history on the real system: the backend serves `GET /v1/tasks/{id}/history` from what audit-log
//! recorded of `task-events`. Expected changes are written out by hand from the calls made, and the event ids
//! are compared with what the topic itself carried.

use e2e::{Api, PIPELINE_DEADLINE, Service, Stack};
use serde_json::{Value, json};

/// The changes of `history` as the API names them.
fn changes(history: &Value) -> Vec<&str> {
    history["entries"].as_array().map_or_else(Vec::new, |entries| {
        entries.iter().map(|entry| entry["change"].as_str().unwrap_or_default()).collect()
    })
}

/// `api`'s history of `task_id` once it lists `count` changes.
async fn history_with(api: &Api, task_id: &str, count: usize) -> Value {
    testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        api.history(task_id).await.ok().filter(|history| changes(history).len() == count)
    })
    .await
    .unwrap_or_else(|_| panic!("the history of {task_id} never listed {count} changes"))
}

/// schemathesis (every check, the backend's own exceptions file) on the `history` operations, as alice,
/// with her task `task_id` for the operations the file points at a real task.
async fn schemathesis_history(stack: &Stack, alice: &Api, task_id: &str) {
    let st = testkit::python::program("st").unwrap_or_else(|error| panic!("{error}"));
    let cwd = tempfile::tempdir().expect("temporary directory");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../services/backend/schemathesis.toml");
    let output = tokio::process::Command::new(&st)
        .current_dir(cwd.path())
        .env("TASKWATCH_CONTRACT_TASK_ID", task_id)
        .env("TASKWATCH_CONTRACT_USER_ID", "history-alice")
        .args(["--config-file", config, "run", &format!("{}/openapi.json", stack.url(Service::Backend))])
        .args(["--header", &format!("Authorization: Bearer {}", alice.token())])
        // One operation and no links: nothing for the stateful phase to follow.
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing", "--include-tag", "history"])
        .args(["--max-examples", "30", "--seed", "1", "--workers", "1", "--no-color"])
        .args(["--generation-database", "none", "--continue-on-failure"])
        .output()
        .await
        .unwrap_or_else(|error| panic!("starting {}: {error}", st.display()));
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found contract failures in the history operation:\n{report}");
}

#[tokio::test]
async fn a_tasks_history_lists_each_change_once_to_its_owner_and_says_when_it_cannot() {
    let mut stack = Stack::builder().services(&[Service::Backend, Service::AuditLog]).start().await.expect("stack");
    let events = stack.tap("task-events").expect("tap");
    let alice = stack.api("history-alice").expect("client");
    let bob = stack.api("history-bob").expect("client");

    let task = alice
        .create_task(&json!({ "title": "History: plants", "due_at": "2030-01-15T09:00:00Z", "time_zone": "UTC" }))
        .await
        .expect("created");
    let id = task["id"].as_str().expect("id").to_owned();
    alice.update(&id, 1, &json!({ "title": "History: garden" })).await.expect("updated");
    alice.complete(&id).await.expect("completed");
    let history = history_with(&alice, &id, 3).await;
    assert_eq!(changes(&history), ["created", "updated", "completed"]);
    let entries = history["entries"].as_array().expect("entries");
    assert_eq!(entries[0]["fields"]["title"], json!({ "before": null, "after": "History: plants" }));
    assert_eq!(entries[1]["fields"], json!({ "title": { "before": "History: plants", "after": "History: garden" } }));
    assert_eq!(entries[2]["fields"]["status"], json!({ "before": "open", "after": "completed" }));
    for entry in entries {
        assert_eq!(entry["actor"], "history-alice");
        assert_eq!(entry["before_known"], true);
    }
    // The ids are the events' own, in the order the topic holds them. audit-log may have read the last one before
    // the test's own reader did: wait until the tap holds it too.
    let recorded: Vec<&str> = entries.iter().map(|entry| entry["event_id"].as_str().unwrap_or_default()).collect();
    let last = recorded.last().copied().unwrap_or_default();
    events
        .wait_for(|message| message.json().is_some_and(|event| event["id"] == last), PIPELINE_DEADLINE)
        .await
        .unwrap_or_else(|| panic!("the topic never carried {last}, the history's last event"));
    let on_topic: Vec<String> = events
        .messages()
        .iter()
        .filter_map(|message| message.json())
        .filter(|event| event["subject"] == id.as_str())
        .map(|event| event["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(recorded, on_topic, "the history's event ids are not the topic's");

    // Delivered again, every one of them: the history stays as it was.
    let originals: Vec<_> = events
        .messages()
        .into_iter()
        .filter(|message| message.json().is_some_and(|event| event["subject"] == id.as_str()))
        .collect();
    for message in &originals {
        stack.republish(message).await.expect("republished");
    }
    let duplicates = r#"taskwatch_audit_log_task_events_total{outcome="duplicate"}"#;
    testkit::wait::until(PIPELINE_DEADLINE, || async {
        let exposition = stack.metrics(Service::AuditLog).await.unwrap_or_default();
        testkit::exposition::series_value(&exposition, duplicates) == Some(originals.len() as f64)
    })
    .await
    .expect("audit-log consumed every copy");
    assert_eq!(alice.history(&id).await.expect("history"), history, "a redelivery changed the history");

    // Only the owner sees it; a task no one has is as unknown.
    let refused = bob.history(&id).await.expect_err("bob has no such task");
    assert!(matches!(refused, e2e::ApiError::Status { status: 404, .. }), "{refused}");
    let unknown = alice.history("01900000-0000-7000-8000-000000000000").await.expect_err("no such task");
    assert!(matches!(unknown, e2e::ApiError::Status { status: 404, .. }), "{unknown}");

    // The operation against its OpenAPI document, by an independent tool, with audit-log running.
    schemathesis_history(&stack, &alice, &id).await;

    // audit-log down: a 503 problem that says when to come back; back up: the same history.
    stack.stop_service(Service::AuditLog).await.expect("stopped");
    let response = reqwest::Client::new()
        .get(format!("{}/v1/tasks/{id}/history", stack.url(Service::Backend)))
        .bearer_auth(alice.token())
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    stack.start_service(Service::AuditLog).await.expect("started again");
    let again = testkit::wait::until_some(PIPELINE_DEADLINE, || async { alice.history(&id).await.ok() })
        .await
        .expect("the history is served again once audit-log is back (its circuit closes after a trial call)");
    assert_eq!(again, history);
}
