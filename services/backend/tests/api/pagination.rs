//! Cursor pagination walks every task exactly once, in the documented order, under any filter.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, error_fields, expect_problem};

/// Walks every page of `query` with `limit`, returning the items in order.
async fn walk(app: &TestApp, query: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("/v1/tasks?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value =
            app.as_user("alice", Method::GET, &url).send().await.expect("page").json().await.expect("json");
        let page_items = page["items"].as_array().expect("items").clone();
        assert!(page_items.len() <= limit as usize);
        items.extend(page_items);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn walking_all_pages_yields_every_task_once_in_order() {
    let app = TestApp::start().await;
    // Due times with duplicates and gaps, plus undated tasks (which sort last).
    let dues = [
        Some("2026-05-03T10:00:00Z"),
        None,
        Some("2026-05-01T10:00:00Z"),
        Some("2026-05-03T10:00:00Z"),
        None,
        Some("2026-05-02T10:00:00Z"),
        Some("2026-05-03T10:00:00Z"),
        None,
    ];
    let mut created = Vec::new();
    for round in 0..3 {
        for (n, due) in dues.iter().enumerate() {
            let labels = if n % 2 == 0 { json!(["even"]) } else { json!(["odd"]) };
            let task = app
                .create_task("alice", json!({ "title": format!("t{round}-{n}"), "due_at": due, "labels": labels }))
                .await;
            created.push(task);
        }
    }
    app.create_simple_task("bob", "not alice's").await;

    for limit in [1, 4, 7, 100] {
        let walked = walk(&app, "", limit).await;
        let ids: Vec<&str> = walked.iter().map(|t| t["id"].as_str().expect("id")).collect();
        assert_eq!(ids.len(), created.len(), "limit {limit}: every task");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "limit {limit}: no duplicates");
        // Order: due_at ascending with undated last, ties broken by id.
        let keys: Vec<(bool, String, String)> = walked
            .iter()
            .map(|t| {
                let due = t["due_at"].as_str().map(str::to_owned);
                (due.is_none(), due.unwrap_or_default(), t["id"].as_str().expect("id").to_owned())
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "limit {limit}: stable order");
    }

    // Filters combine with pagination.
    let even = walk(&app, "&label=even", 2).await;
    assert_eq!(even.len(), 12);
    assert!(even.iter().all(|t| t["labels"] == json!(["even"])));
    let ranged = walk(&app, "&due_from=2026-05-02T00:00:00Z&due_to=2026-05-03T10:00:00Z", 1).await;
    assert_eq!(ranged.len(), 3, "only the 2026-05-02 tasks: due_to is exclusive");
}

#[tokio::test]
async fn listing_filters_by_status_and_priority() {
    let app = TestApp::start().await;
    let urgent = app.create_task("alice", json!({ "title": "u", "priority": "urgent" })).await;
    app.create_task("alice", json!({ "title": "l", "priority": "low" })).await;
    let done = app.create_simple_task("alice", "d").await;
    let complete = format!("/v1/tasks/{}/complete", done["id"].as_str().expect("id"));
    app.as_user("alice", Method::POST, &complete).send().await.expect("complete");

    let by_priority = walk(&app, "&priority=urgent", 10).await;
    assert_eq!(by_priority.iter().map(|t| &t["id"]).collect::<Vec<_>>(), vec![&urgent["id"]]);
    let completed = walk(&app, "&status=completed", 10).await;
    assert_eq!(completed.iter().map(|t| &t["id"]).collect::<Vec<_>>(), vec![&done["id"]]);
    assert_eq!(walk(&app, "&status=open", 10).await.len(), 2);
}

#[tokio::test]
async fn bad_listing_parameters_are_400_problems() {
    let app = TestApp::start().await;
    let bad = app
        .as_user("alice", Method::GET, "/v1/tasks?status=done&limit=0&due_from=yesterday")
        .send()
        .await
        .expect("list");
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&problem), ["status", "due_from", "limit"]);

    for query in ["cursor=garbage", "cursor=eyJ2IjoxfQ", "colour=red", "limit=abc"] {
        let response = app.as_user("alice", Method::GET, &format!("/v1/tasks?{query}")).send().await.expect("list");
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }

    // A cursor from one filter is refused under another.
    for n in 0..3 {
        app.create_task("alice", json!({ "title": format!("t{n}"), "priority": "high" })).await;
    }
    let page: Value = app
        .as_user("alice", Method::GET, "/v1/tasks?limit=1&priority=high")
        .send()
        .await
        .expect("page")
        .json()
        .await
        .expect("json");
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let response =
        app.as_user("alice", Method::GET, &format!("/v1/tasks?limit=1&cursor={cursor}")).send().await.expect("page");
    expect_problem(response, StatusCode::BAD_REQUEST).await;

    // The page size is 1 to 100, as the OpenAPI document says; more is refused, not silently capped.
    let too_large = app.as_user("alice", Method::GET, "/v1/tasks?limit=101").send().await.expect("list");
    expect_problem(too_large, StatusCode::BAD_REQUEST).await;
    let largest = app.as_user("alice", Method::GET, "/v1/tasks?limit=100").send().await.expect("list");
    assert_eq!(largest.status(), StatusCode::OK);
    // A label filter is a label: control characters (which Postgres text cannot hold) are a 400, not a 500.
    let nul = app.as_user("alice", Method::GET, "/v1/tasks?label=a%00b").send().await.expect("list");
    let problem = expect_problem(nul, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "label");
    // An empty range selects nothing rather than failing.
    let empty = "/v1/tasks?due_from=2026-05-03T00:00:00Z&due_to=2026-05-02T00:00:00Z";
    let empty: Value = app.as_user("alice", Method::GET, empty).send().await.expect("list").json().await.expect("json");
    assert_eq!(empty["items"], serde_json::json!([]));
}
