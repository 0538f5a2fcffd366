//! The transactional outbox: an event row exists exactly when its change committed.

use backend::domain::{OwnerId, Priority, Task, TaskSpec, TaskSpecInput};
use backend::store::outbox::OutboxMessage;
use backend::store::{outbox, tasks};
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn committed_change_leaves_a_complete_cloudevent_row() {
    let app = TestApp::start().await;
    let task = app
        .create_task(
            "alice",
            json!({ "title": "Evented", "due_at": "2026-06-01T08:00:00Z", "time_zone": "Europe/Paris" }),
        )
        .await;
    let id = task["id"].as_str().expect("id");

    let rows = app.outbox_rows(id).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.topic, "task-events");
    assert_eq!(row.event_type, "task.created.v1");
    assert_eq!(row.message_key, "alice", "keyed by owner: one user's changes, a series' included, stay in order");
    assert_eq!(row.id.get_version_num(), 7, "event id is a UUIDv7");
    assert_eq!((row.attempts, row.claimed, row.published), (0, false, false), "waiting for the relay");
    assert!(row.headers.is_object());

    let event = &row.payload;
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], row.id.to_string());
    assert_eq!(event["type"], "task.created.v1");
    assert_eq!(event["source"], "/taskwatch/backend");
    assert_eq!(event["subject"], id);
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(event["time"].is_string());
    assert_eq!(event["data"]["change"], "created");
    let snapshot = &event["data"]["task"];
    assert_eq!(snapshot["owner_id"], "alice");
    for field in ["id", "title", "due_at", "time_zone", "status", "version", "created_at", "updated_at", "series_id"] {
        assert_eq!(snapshot[field], task[field], "snapshot field {field}");
    }

    // The event decodes with the shared contract.
    let bytes = serde_json::to_vec(event).expect("bytes");
    let decoded = events::CloudEvent::decode(&bytes).expect("envelope").into_typed::<events::task::TaskEvent>();
    assert!(decoded.is_ok(), "{decoded:?}");

    // A rejected request writes nothing.
    let response =
        app.as_user("alice", Method::POST, "/v1/tasks").json(&json!({ "title": "" })).send().await.expect("post");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("SELECT count(*) FROM backend.outbox").await, 1);
}

#[tokio::test]
async fn rolled_back_transaction_leaves_neither_task_nor_event() {
    let app = TestApp::start().await;
    let pool = app.pool();
    let spec = TaskSpec::parse(&TaskSpecInput {
        title: "Never happened".into(),
        description: None,
        priority: Priority::Low,
        labels: vec![],
        due_at: None,
        time_zone: "UTC".into(),
        recurrence: None,
        reminders: vec![],
    })
    .expect("valid spec");
    let task = Task::create(OwnerId::parse("alice").expect("owner"), spec, None, Utc::now()).expect("task");
    let message = OutboxMessage {
        id: uuid::Uuid::now_v7(),
        topic: events::topics::TASK_EVENTS,
        key: task.series_id.to_string(),
        event_type: "task.created.v1".into(),
        payload: json!({ "subject": task.id.to_string() }),
        headers: Default::default(),
        created_at: Utc::now(),
    };

    let mut tx = pool.begin().await.expect("begin");
    tasks::insert(&mut tx, &task).await.expect("insert task");
    outbox::insert(&mut tx, &message).await.expect("insert event");
    // Visible inside the transaction...
    let inside: i64 =
        sqlx::query_scalar("SELECT count(*) FROM backend.outbox").fetch_one(&mut *tx).await.expect("count");
    assert_eq!(inside, 1);
    tx.rollback().await.expect("rollback");

    // ...and gone with it.
    assert_eq!(app.count("SELECT count(*) FROM backend.outbox").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 0);

    // The same writes committed are both there.
    let mut tx = pool.begin().await.expect("begin");
    tasks::insert(&mut tx, &task).await.expect("insert task");
    outbox::insert(&mut tx, &message).await.expect("insert event");
    tx.commit().await.expect("commit");
    assert_eq!(app.count("SELECT count(*) FROM backend.outbox").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM backend.tasks").await, 1);
}

#[tokio::test]
async fn outbox_supports_a_skip_locked_relay_with_leases() {
    // The relay claims rows this way (plus a per-key order guard, see the `outbox` crate); two claimers never get the same row.
    let app = TestApp::start().await;
    for n in 0..4 {
        app.create_simple_task("alice", &format!("t{n}")).await;
    }
    let claim = "UPDATE backend.outbox SET claimed_until = now() + interval '30 seconds', attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM backend.outbox WHERE published_at IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < now()) ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id";
    let pool = app.pool();
    let mut first = pool.begin().await.expect("begin");
    let a: Vec<uuid::Uuid> = sqlx::query_scalar(claim).fetch_all(&mut *first).await.expect("claim a");
    let mut second = pool.begin().await.expect("begin");
    let b: Vec<uuid::Uuid> = sqlx::query_scalar(claim).fetch_all(&mut *second).await.expect("claim b");
    first.commit().await.expect("commit");
    second.commit().await.expect("commit");
    assert_eq!((a.len(), b.len()), (2, 2));
    assert!(a.iter().all(|id| !b.contains(id)), "claims overlap: {a:?} {b:?}");
    assert!(a.iter().max() < b.iter().min(), "first claimer gets the oldest rows");
}
