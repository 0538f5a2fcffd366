//! The OpenAPI document (`/openapi.json`) and the interactive docs page (`/docs`).
//!
//! The handlers' annotations describe each operation's own outcomes; [`document`] then adds what the shared
//! machinery makes every operation able to return (see [`contract`]), so no operation can forget a status.

mod contract;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::internal::{dto as internal_dto, handlers as internal};
use super::{dto, history, settings, stream, tasks};

/// The document as the handlers' and schemas' annotations describe it; [`document`] completes it.
#[derive(OpenApi)]
#[openapi(
    info(title = "Taskwatch API", description = "Tasks with due times, recurrence and reminders. Errors are RFC 9457 problem+json."),
    paths(
        tasks::create_task, tasks::list_tasks, tasks::get_task, tasks::update_task, tasks::delete_task,
        tasks::complete_task, tasks::reopen_task, history::task_history, stream::stream_tasks, settings::get_settings, settings::put_settings,
        internal::create_occurrence, internal::get_task, internal::get_notification_settings,
    ),
    components(schemas(
        dto::CreateTaskRequest, dto::UpdateTaskRequest, dto::TaskResponse, dto::TaskListResponse,
        dto::TaskChangeMessage, dto::TaskChangeKind, dto::TaskHistoryResponse, dto::TaskHistoryEntry, dto::FieldChange, dto::NotificationSettingsDto, dto::ReminderDto, dto::RecurrenceDto, dto::RecurrenceResponse, vocabulary::Priority, vocabulary::TaskStatus,
        vocabulary::RecurrenceAnchor, internal_dto::CreateOccurrenceRequest, internal_dto::InternalTaskResponse,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks"), (name = "settings"),
        (name = "history", description = "Read from the audit-log service: without it (as in the backend's own tests) every call is 503, so schemathesis runs this tag against the whole system, in tests/tests/task_history.rs"),
        (name = "stream", description = "Server-Sent Events: an endless response, so schemathesis leaves it to the stream tests"),
        (name = "internal", description = "For other Taskwatch services only: bearer INTERNAL_SERVICE_TOKEN, not a user token"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "service_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The shared INTERNAL_SERVICE_TOKEN of the Taskwatch services"))
                    .build(),
            ),
        );
    }
}

/// The complete document: the annotations plus [`contract::complete`].
pub fn document() -> utoipa::openapi::OpenApi {
    let mut json = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    contract::complete(&mut json);
    // The completed JSON is still an OpenAPI document; the typed form is what Swagger UI takes. Should it ever
    // not read back, the annotated document is served and the log says why (the contract test then fails).
    serde_json::from_value(json).unwrap_or_else(|error| {
        tracing::error!(%error, "the completed OpenAPI document does not read back; serving the annotated one");
        ApiDoc::openapi()
    })
}

/// `/openapi.json` and `/docs`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    SwaggerUi::new("/docs").url("/openapi.json", document()).into()
}
