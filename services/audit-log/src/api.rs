//! The internal API: a task's history, for the backend, which answers the public `GET /v1/tasks/{id}/history`
//! (one public API, one place that checks user tokens). Callers present `INTERNAL_SERVICE_TOKEN`; without one
//! configured, every call is refused.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use observability::{ErrorChain, Problem, ServiceToken};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, HistoryEntry};

/// What the handlers need.
#[derive(Debug, Clone)]
struct ApiState {
    pool: PgPool,
    service_token: Option<ServiceToken>,
}

/// `GET /internal/v1/tasks/{task_id}/history?owner_id=…`.
pub fn router(pool: PgPool, service_token: Option<ServiceToken>) -> Router {
    Router::new()
        .route("/internal/v1/tasks/{task_id}/history", get(history))
        .with_state(ApiState { pool, service_token })
}

/// The owner whose history is asked for: records of another owner's task are never returned.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    owner_id: String,
}

/// A task's history, oldest change first (at most [`store::HISTORY_LIMIT`] records).
#[derive(Debug, Serialize)]
struct TaskHistory {
    entries: Vec<HistoryEntry>,
}

async fn history(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<TaskHistory>, Problem> {
    if !state.service_token.as_ref().is_some_and(|token| token.authorizes(&headers)) {
        return Err(Problem::unauthorized("The internal API needs the service credential."));
    }
    let task_id = Uuid::parse_str(&task_id).map_err(|_| Problem::bad_request("The task id must be a UUID."))?;
    let Some(Query(HistoryQuery { owner_id })) = query.ok().filter(|query| !query.owner_id.is_empty()) else {
        return Err(Problem::bad_request("Say whose history: `owner_id` is required."));
    };
    let entries = store::history(&state.pool, &owner_id, task_id).await.map_err(|error| {
        tracing::warn!(error = %ErrorChain(&error), "reading a task's history failed");
        Problem::service_unavailable("The audit log's database is unavailable; retry shortly.").with_retry_after(1)
    })?;
    Ok(Json(TaskHistory { entries }))
}
