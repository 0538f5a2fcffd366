//! `/internal/v1`: the API other Taskwatch services call, authenticated with the service credential
//! (`INTERNAL_SERVICE_TOKEN`), never with a user's token. Not rate limited per client: the callers are a few
//! trusted services whose volume follows the event flow, and an unauthenticated call costs one hash.

mod caller;
pub mod dto;
pub mod handlers;

use axum::Router;
use axum::routing::{get, post};

use super::{ApiState, method_not_allowed};

/// The `/internal/v1` routes over `state`; every handler requires the service credential (401 without it).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/internal/v1/series/{series_id}/occurrences", post(handlers::create_occurrence))
        .route("/internal/v1/tasks/{id}", get(handlers::get_task))
        .route("/internal/v1/users/{user_id}/notification-settings", get(handlers::get_notification_settings))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}
