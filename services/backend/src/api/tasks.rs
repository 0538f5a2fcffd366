//! `/v1/tasks` handlers: translate HTTP to a use case call and its outcome back to HTTP.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use observability::Problem;

use super::ApiState;
use super::auth::Caller;
use super::cursor;
use super::dto::{CreateTaskRequest, TaskListResponse, TaskResponse, UpdateTaskRequest};
use super::error::{ApiError, validation};
use super::headers::{self, IDEMPOTENT_REPLAYED};
use super::json::ApiJson;
use super::list::ListParamsQuery;
use super::path::TaskPath;
use crate::domain::Task;
use crate::idempotency::Operation;
use crate::service::{Outcome, Precondition};

/// `If-Match` when present; absent means unconditional.
#[derive(Debug)]
pub struct OptionalIfMatch(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for OptionalIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(headers::if_match(&parts.headers)?.unwrap_or(Precondition::None)))
    }
}

/// `If-Match` that must be present (428 otherwise): lost updates are impossible by construction.
#[derive(Debug)]
pub struct RequiredIfMatch(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for RequiredIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        headers::if_match(&parts.headers)?
            .map(Self)
            .ok_or_else(|| Problem::precondition_required("Send If-Match with the task's ETag to update it.").into())
    }
}

/// The task with its `ETag`, as every single-task response carries it.
fn task_response(status: StatusCode, task: &Task, replayed: bool) -> Response {
    let mut response = (status, Json(TaskResponse::from(task))).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, headers::etag(task.version));
    if status == StatusCode::CREATED {
        response_headers.insert(header::LOCATION, headers::location(task.id));
    }
    if replayed {
        response_headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

fn outcome_response(status: StatusCode, outcome: &Outcome) -> Response {
    task_response(status, outcome.task(), matches!(outcome, Outcome::Replayed(_)))
}

/// Create a task.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body = CreateTaskRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for retries with the same key")),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` set", body = TaskResponse),
        (status = 400, description = "Malformed JSON or header", content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", content_type = "application/problem+json"),
        (status = 413, description = "Body too large", content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or Idempotency-Key reused for another request", content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see Retry-After", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    request_headers: HeaderMap,
    body: ApiJson<CreateTaskRequest>,
) -> Result<Response, ApiError> {
    let idempotency = headers::idempotency(&request_headers, Operation::CreateTask, "", &body.raw)?;
    let input = body.value.into_input();
    let outcome = state.tasks.create(&owner, &input, idempotency.as_ref()).await?;
    Ok(outcome_response(StatusCode::CREATED, &outcome))
}

/// List the caller's tasks.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(super::list::ListParams),
    responses(
        (status = 200, body = TaskListResponse),
        (status = 400, description = "Invalid parameter or cursor", content_type = "application/problem+json"),
        (status = 401, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_tasks(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    ListParamsQuery(params): ListParamsQuery,
) -> Result<Json<TaskListResponse>, ApiError> {
    let query = params.into_query()?;
    let page = state.tasks.list(&owner, &query).await?;
    Ok(Json(TaskListResponse {
        items: page.tasks.iter().map(TaskResponse::from).collect(),
        next_cursor: page.next.map(|position| cursor::encode(position, &query.filter)),
    }))
}

/// Get one task; `ETag` carries its version.
#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = TaskResponse),
        (status = 404, description = "No such task for this user", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
) -> Result<Response, ApiError> {
    let task = state.tasks.get(&owner, id).await?;
    Ok(task_response(StatusCode::OK, &task, false))
}

/// Update a task (merge-patch); `If-Match` is required.
#[utoipa::path(
    patch, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = uuid::Uuid, Path), ("If-Match" = String, Header, description = "The ETag from the last read (428 without it)")),
    request_body(content = UpdateTaskRequest, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, body = TaskResponse),
        (status = 404, content_type = "application/problem+json"),
        (status = 412, description = "The task changed since that ETag", content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
    RequiredIfMatch(precondition): RequiredIfMatch,
    body: ApiJson<UpdateTaskRequest>,
) -> Result<Response, ApiError> {
    let patch = body.value.into_patch().map_err(validation)?;
    let task = state.tasks.update(&owner, id, &precondition, patch).await?;
    Ok(task_response(StatusCode::OK, &task, false))
}

/// Delete a task; `If-Match` is honoured when sent.
#[utoipa::path(
    delete, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = uuid::Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, content_type = "application/problem+json"),
        (status = 412, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
    OptionalIfMatch(precondition): OptionalIfMatch,
) -> Result<StatusCode, ApiError> {
    state.tasks.delete(&owner, id, &precondition).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark a task completed.
#[utoipa::path(
    post, path = "/v1/tasks/{id}/complete", tag = "tasks",
    params(
        ("id" = uuid::Uuid, Path),
        ("If-Match" = Option<String>, Header),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for retries with the same key"),
    ),
    responses(
        (status = 200, body = TaskResponse),
        (status = 404, content_type = "application/problem+json"),
        (status = 409, description = "Already completed", content_type = "application/problem+json"),
        (status = 412, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn complete_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
    OptionalIfMatch(precondition): OptionalIfMatch,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let idempotency =
        headers::idempotency(&request_headers, Operation::CompleteTask, &id.to_string(), &serde_json::Value::Null)?;
    let outcome = state.tasks.complete(&owner, id, &precondition, idempotency.as_ref()).await?;
    Ok(outcome_response(StatusCode::OK, &outcome))
}

/// Reopen a completed task.
#[utoipa::path(
    post, path = "/v1/tasks/{id}/reopen", tag = "tasks",
    params(("id" = uuid::Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = TaskResponse),
        (status = 404, content_type = "application/problem+json"),
        (status = 409, description = "Already open", content_type = "application/problem+json"),
        (status = 412, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reopen_task(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    TaskPath(id): TaskPath,
    OptionalIfMatch(precondition): OptionalIfMatch,
) -> Result<Response, ApiError> {
    let task = state.tasks.reopen(&owner, id, &precondition).await?;
    Ok(task_response(StatusCode::OK, &task, false))
}
