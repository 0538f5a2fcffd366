//! `/v1/me/notification-settings` handlers.

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::auth::Caller;
use super::dto::NotificationSettingsDto;
use super::error::ApiError;
use super::json::ApiJson;

/// The caller's notification settings (both channels off until saved).
#[utoipa::path(
    get, path = "/v1/me/notification-settings", tag = "settings",
    responses((status = 200, body = NotificationSettingsDto), (status = 401, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn get_settings(
    State(state): State<ApiState>,
    Caller(owner): Caller,
) -> Result<Json<NotificationSettingsDto>, ApiError> {
    let settings = state.settings.get(&owner).await?;
    Ok(Json(NotificationSettingsDto::from(&settings)))
}

/// Replace the caller's notification settings.
#[utoipa::path(
    put, path = "/v1/me/notification-settings", tag = "settings",
    request_body = NotificationSettingsDto,
    responses(
        (status = 200, body = NotificationSettingsDto),
        (status = 422, description = "Invalid e-mail or webhook URL", content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_settings(
    State(state): State<ApiState>,
    Caller(owner): Caller,
    body: ApiJson<NotificationSettingsDto>,
) -> Result<Json<NotificationSettingsDto>, ApiError> {
    let saved = state.settings.put(&owner, &body.value.into()).await?;
    Ok(Json(NotificationSettingsDto::from(&saved)))
}
