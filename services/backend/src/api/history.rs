//! `GET /v1/tasks/{id}/history`: the task's audit trail, read from the audit-log service. The owner comes from
//! the token, as everywhere: another user's task is a 404, like one that never existed.

use axum::Json;
use axum::extract::State;
use observability::{ErrorChain, Problem};

use super::ApiState;
use super::auth::Caller;
use super::dto::TaskHistoryResponse;
use super::error::ApiError;
use super::path::TaskPath;

/// How long a client should wait before asking again while audit-log cannot answer.
const RETRY_AFTER_SECONDS: u64 = 5;

/// A task's history, oldest change first: who changed what and when, each changed field before and after.
#[utoipa::path(
    get, path = "/v1/tasks/{id}/history", tag = "history",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Every recorded change, oldest first (at most 1,000); a change shows here once audit-log has read it from task-events, usually within a second", body = TaskHistoryResponse),
        (status = 404, description = "No such task for this user, and no history of one", content_type = "application/problem+json"),
        (status = 503, description = "The history cannot be read now (audit-log unavailable, its circuit open, or not configured); see Retry-After", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn task_history(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
) -> Result<Json<TaskHistoryResponse>, ApiError> {
    let Some(audit_log) = &state.audit_log else {
        return Err(Problem::service_unavailable(
            "The task history is not available on this server (AUDIT_LOG_URL is not set).",
        )
        .with_retry_after(RETRY_AFTER_SECONDS)
        .into());
    };
    let entries = audit_log.history(&owner, id).await.map_err(|error| {
        tracing::warn!(error = %ErrorChain(&error), task_id = %id, "reading a task's history from audit-log failed");
        Problem::service_unavailable("The task history cannot be read right now; retry shortly.")
            .with_retry_after(RETRY_AFTER_SECONDS)
    })?;
    if entries.is_empty() {
        // A task of this user whose changes are not recorded yet has an empty history; anything else is unknown.
        state.tasks.get(&owner, id).await?;
    }
    Ok(Json(TaskHistoryResponse { entries }))
}
