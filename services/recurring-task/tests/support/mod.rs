//! A real HTTP server on 127.0.0.1 speaking the backend's internal API contract
//! (`POST /internal/v1/series/{series_id}/occurrences`), answering from a script so every status the backend
//! documents can be produced on demand, and recording what it received. The backend's own implementation is
//! exercised by the end-to-end tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use chrono::{DateTime, Utc};
use events::CloudEvent;
use events::task::{Priority, Recurrence, RecurrenceAnchor, TaskChange, TaskEvent, TaskSnapshot, TaskStatus};
use serde_json::{Value, json};
use uuid::Uuid;

pub const TOKEN: &str = "internal-token-for-tests";

/// One request the server received, and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub status: StatusCode,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<StatusCode>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// The stand-in backend; stops when dropped.
pub struct StandIn {
    script: Script,
    pub base_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    pub async fn start() -> Self {
        let script = Script::default();
        let router = Router::new()
            .route("/internal/v1/series/{series_id}/occurrences", post(occurrences))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { script, base_url: format!("http://{address}"), server }
    }

    /// Queues answers; once they run out, every request gets 500.
    pub fn answer(&self, statuses: &[StatusCode]) {
        self.script.answers.lock().unwrap().extend(statuses);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }
}

async fn occurrences(State(script): State<Script>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let status = script.answers.lock().unwrap().pop_front().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    script.seen.lock().unwrap().push(Seen { path: uri.path().to_owned(), headers, body: body.clone(), status });
    let answer = if status.is_success() {
        // The backend's InternalTaskResponse carries much more; the service must ignore what it does not read.
        json!({"id": Uuid::now_v7(), "owner_id": "alice", "title": "Water the plants", "due_at": body["due_at"], "version": 1})
    } else {
        json!({"type": "about:blank", "title": "refused", "status": status.as_u16()})
    };
    (status, answer.to_string())
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A daily 09:00 Berlin task, due the day before spring-forward, completed half an hour late.
pub fn task_event(change: TaskChange, rrule: Option<&str>) -> CloudEvent<TaskEvent> {
    let id = Uuid::now_v7();
    let task = TaskSnapshot {
        id,
        owner_id: "alice".into(),
        series_id: id,
        title: "Water the plants".into(),
        description: None,
        priority: Priority::Medium,
        labels: vec![],
        status: TaskStatus::Completed,
        due_at: Some(at("2026-03-28T08:00:00Z")),
        time_zone: "Europe/Berlin".into(),
        recurrence: rrule.map(|rrule| Recurrence { rrule: rrule.into(), anchor: RecurrenceAnchor::Due }),
        reminders: vec![],
        completed_at: Some(at("2026-03-28T08:30:00Z")),
        version: 2,
        created_at: at("2026-03-20T10:00:00Z"),
        updated_at: at("2026-03-28T08:30:00Z"),
    };
    TaskEvent { change, task }.into_cloud_event()
}

/// The same event as a consumer sees it: the envelope with `data` still raw.
pub fn raw(event: &CloudEvent<TaskEvent>) -> CloudEvent<Value> {
    CloudEvent::decode(&event.to_bytes().unwrap()).unwrap()
}
