//! `/internal/v1` handlers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use observability::Problem;
use uuid::Uuid;

use super::super::ApiState;
use super::super::dto::NotificationSettingsDto;
use super::super::error::{ApiError, bad_request_fields};
use super::super::headers::{self, IDEMPOTENT_REPLAYED};
use super::super::json::ApiJson;
use super::super::path::TaskPath;
use super::caller::ServiceCaller;
use super::dto::{CreateOccurrenceRequest, InternalTaskResponse};
use crate::domain::{OwnerId, Task, TaskId, Violations};
use crate::idempotency::Operation;
use crate::service::{NextOccurrence, OccurrenceOutcome};

fn task_response(status: StatusCode, task: &Task) -> Response {
    let mut response = (status, Json(InternalTaskResponse::from(task))).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, headers::etag(task.version));
    if status == StatusCode::CREATED {
        response_headers.insert(header::LOCATION, location(task.id));
    }
    response
}

fn location(id: TaskId) -> HeaderValue {
    HeaderValue::from_str(&format!("/internal/v1/tasks/{id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/internal/v1/tasks"))
}

fn series_not_found() -> Problem {
    Problem::not_found("No such series, or the previous task is not part of it.")
}

/// Create the next occurrence of a recurring series (idempotent).
///
/// The occurrence exists exactly once per (series, `due_at`): a retry with the same `Idempotency-Key` replays
/// the first response (201, `Idempotent-Replayed: true`); a request with another key for an occurrence that
/// already exists answers 200 with that task. Writes `task.created.v1` in the same transaction.
#[utoipa::path(
    post, path = "/internal/v1/series/{series_id}/occurrences", tag = "internal", operation_id = "internal_create_occurrence",
    request_body = CreateOccurrenceRequest,
    params(
        ("series_id" = uuid::Uuid, Path, description = "The series (`series_id` of its tasks)"),
        ("Idempotency-Key" = String, Header, description = "Required; e.g. the id of the event that asked for the occurrence"),
    ),
    responses(
        (status = 201, description = "Created (or replayed for the same key); `Location` and `ETag` set", body = InternalTaskResponse),
        (status = 200, description = "This occurrence already existed (created by another request)", body = InternalTaskResponse),
        (status = 400, description = "Idempotency-Key missing or malformed", content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong service credential", content_type = "application/problem+json"),
        (status = 404, description = "No such series, or the previous task is not in it", content_type = "application/problem+json"),
        (status = 410, description = "The occurrence was created before and its task has since been deleted", content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, previous task not recurring, due_at not after the previous one, or Idempotency-Key reused", content_type = "application/problem+json"),
    ),
    security(("service_token" = []))
)]
pub async fn create_occurrence(
    State(state): State<ApiState>,
    _: ServiceCaller,
    Path(series_id): Path<String>,
    request_headers: HeaderMap,
    body: ApiJson<CreateOccurrenceRequest>,
) -> Result<Response, ApiError> {
    let series_id = Uuid::parse_str(&series_id).map_err(|_| series_not_found())?;
    let idempotency =
        headers::idempotency(&request_headers, Operation::CreateOccurrence, &series_id.to_string(), &body.raw)?
            .ok_or_else(|| Problem::bad_request("Send an Idempotency-Key header: this endpoint requires one."))?;
    let request = NextOccurrence {
        series_id,
        previous_task_id: TaskId::from_uuid(body.value.previous_task_id),
        due_at: body.value.due_at,
    };
    let outcome = match state.tasks.create_occurrence(&request, &idempotency).await {
        Err(crate::service::TaskError::NotFound) => return Err(series_not_found().into()),
        other => other?,
    };
    Ok(match &outcome {
        OccurrenceOutcome::Created(task) => task_response(StatusCode::CREATED, task),
        OccurrenceOutcome::Replayed(task) => {
            let mut response = task_response(StatusCode::CREATED, task);
            response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            response
        }
        OccurrenceOutcome::AlreadyExisted(task) => task_response(StatusCode::OK, task),
    })
}

/// Get any user's task, with its owner.
#[utoipa::path(
    get, path = "/internal/v1/tasks/{id}", tag = "internal", operation_id = "internal_get_task",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = InternalTaskResponse),
        (status = 401, content_type = "application/problem+json"),
        (status = 404, description = "No such task", content_type = "application/problem+json"),
    ),
    security(("service_token" = []))
)]
pub async fn get_task(
    State(state): State<ApiState>,
    _: ServiceCaller,
    TaskPath(id): TaskPath,
) -> Result<Response, ApiError> {
    let task = state.tasks.get_any(id).await?;
    Ok(task_response(StatusCode::OK, &task))
}

/// A user's notification settings (both channels `null` until the user saves them).
#[utoipa::path(
    get, path = "/internal/v1/users/{user_id}/notification-settings", tag = "internal",
    operation_id = "internal_get_notification_settings",
    params(("user_id" = String, Path, description = "The user id (the `sub` of the user's tokens)")),
    responses(
        (status = 200, body = NotificationSettingsDto),
        (status = 400, description = "Not a valid user id", content_type = "application/problem+json"),
        (status = 401, content_type = "application/problem+json"),
    ),
    security(("service_token" = []))
)]
pub async fn get_notification_settings(
    State(state): State<ApiState>,
    _: ServiceCaller,
    Path(user_id): Path<String>,
) -> Result<Json<NotificationSettingsDto>, ApiError> {
    let owner = OwnerId::parse(&user_id).map_err(|_| {
        let violations = Violations::single("user_id", "must be 1 to 255 characters without control characters");
        bad_request_fields("Invalid user id.", violations)
    })?;
    let settings = state.settings.get(&owner).await?;
    Ok(Json(NotificationSettingsDto::from(&settings)))
}
