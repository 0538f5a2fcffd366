//! The HTTP API: routes, extractors and the mapping between HTTP and the use cases.

mod auth;
mod cursor;
pub mod dto;
mod error;
mod headers;
mod history;
pub mod internal;
mod json;
mod list;
pub mod openapi;
mod path;
pub mod rate_limit;
mod settings;
pub mod stream;
mod tasks;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use observability::Problem;

use crate::audit_log::AuditLogClient;
use crate::auth::TokenVerifier;
use crate::domain::OwnerId;
use crate::service::{SettingsService, TaskService};
use observability::ServiceToken;
use rate_limit::Limiter;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The task use cases, for `/v1/tasks` and the internal API.
    pub tasks: TaskService,
    /// The notification-settings use cases, for `/v1/me/notification-settings` and the internal API.
    pub settings: SettingsService,
    /// Checks the bearer token of `/v1` calls and yields the caller's user id.
    pub verifier: Arc<TokenVerifier>,
    /// `None` when `INTERNAL_SERVICE_TOKEN` is unset: the internal API then refuses every call.
    pub service_token: Option<Arc<ServiceToken>>,
    /// `None` when rate limiting is switched off.
    pub user_limiter: Option<Arc<Limiter<OwnerId>>>,
    /// audit-log's internal API, for task histories; `None` when `AUDIT_LOG_URL` is unset.
    pub audit_log: Option<AuditLogClient>,
    /// The live task stream; `None` when it is switched off (`GET /v1/tasks/stream` then answers 503).
    pub stream: Option<stream::TaskStream>,
}

/// The `/v1` routes, limited per client address when `client_limiter` is set, the `/internal/v1` routes, plus
/// `/openapi.json` and `/docs`.
pub fn router(state: ApiState, client_limiter: Option<Arc<Limiter<IpAddr>>>) -> Router {
    let v1 = Router::new()
        .route("/v1/tasks", post(tasks::create_task).get(tasks::list_tasks))
        .route("/v1/tasks/stream", get(stream::stream_tasks))
        .route("/v1/tasks/{id}", get(tasks::get_task).patch(tasks::update_task).delete(tasks::delete_task))
        .route("/v1/tasks/{id}/complete", post(tasks::complete_task))
        .route("/v1/tasks/{id}/reopen", post(tasks::reopen_task))
        .route("/v1/tasks/{id}/history", get(history::task_history))
        .route("/v1/me/notification-settings", get(settings::get_settings).put(settings::put_settings))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let v1 = match client_limiter {
        Some(limiter) => v1.layer(axum::middleware::from_fn_with_state(limiter, rate_limit::limit_per_client)),
        None => v1,
    };
    v1.merge(internal::router(state)).merge(openapi::router()).fallback(not_found)
}

async fn not_found() -> Problem {
    Problem::not_found("No such resource.")
}

async fn method_not_allowed() -> Problem {
    Problem::new(axum::http::StatusCode::METHOD_NOT_ALLOWED).with_detail("This method is not allowed on this resource.")
}
