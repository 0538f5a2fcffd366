//! RFC 9457 problem details: the one error body every Taskwatch HTTP endpoint returns.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field, reported inside a 422 problem's `errors` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer-like path of the field, e.g. `title` or `reminders[2].offset_minutes`.
    pub field: String,
    /// What is wrong, in words a client developer can act on.
    pub message: String,
}

impl FieldError {
    /// The error `message` for the input at path `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What kind of problem a response reports: its stable `type` URI (RFC 9457 section 3.1.1), which clients branch
/// on instead of parsing titles or details. The URIs identify the kinds; they are not meant to be fetched. Every
/// kind is listed with its status in the backend's API reference, and the OpenAPI document enumerates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// 400: the request itself is malformed (JSON syntax, a header, query parameters, a cursor).
    MalformedRequest,
    /// 401: no credential, or one that is not valid for this API.
    Unauthorized,
    /// 404: no such resource (for the caller).
    NotFound,
    /// 405: the resource exists but not with this method.
    MethodNotAllowed,
    /// 409: the task is already completed.
    AlreadyCompleted,
    /// 409: the task is already open.
    AlreadyOpen,
    /// 409: another request is changing the same thing; retry.
    ConcurrentChange,
    /// 410: it existed and was deleted; it is not recreated.
    Gone,
    /// 412: the `If-Match` precondition failed (the resource changed).
    PreconditionFailed,
    /// 413: the body is larger than the limit.
    PayloadTooLarge,
    /// 415: the body is not in a media type this operation reads.
    UnsupportedMediaType,
    /// 422: fields are invalid; `errors` lists each one.
    ValidationFailed,
    /// 422: the `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
    /// 428: the operation needs `If-Match`.
    PreconditionRequired,
    /// 429: rate limited; `Retry-After` says when to come back.
    RateLimited,
    /// 500: an unexpected error, logged with the request's id.
    Internal,
    /// 503: a dependency (the database) is unavailable; retry.
    ServiceUnavailable,
    /// 504: the request did not finish within the server's deadline.
    Timeout,
    /// Any status: produced on purpose by the fault switch (`/admin/faults`), for demos and drills.
    FaultInjected,
}

impl ProblemType {
    /// Every kind, in the order of the API reference.
    pub const ALL: [ProblemType; 19] = [
        ProblemType::MalformedRequest,
        ProblemType::Unauthorized,
        ProblemType::NotFound,
        ProblemType::MethodNotAllowed,
        ProblemType::AlreadyCompleted,
        ProblemType::AlreadyOpen,
        ProblemType::ConcurrentChange,
        ProblemType::Gone,
        ProblemType::PreconditionFailed,
        ProblemType::PayloadTooLarge,
        ProblemType::UnsupportedMediaType,
        ProblemType::ValidationFailed,
        ProblemType::IdempotencyKeyReused,
        ProblemType::PreconditionRequired,
        ProblemType::RateLimited,
        ProblemType::Internal,
        ProblemType::ServiceUnavailable,
        ProblemType::Timeout,
        ProblemType::FaultInjected,
    ];

    /// The last segment of the URI.
    pub const fn slug(self) -> &'static str {
        match self {
            ProblemType::MalformedRequest => "malformed-request",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::NotFound => "not-found",
            ProblemType::MethodNotAllowed => "method-not-allowed",
            ProblemType::AlreadyCompleted => "already-completed",
            ProblemType::AlreadyOpen => "already-open",
            ProblemType::ConcurrentChange => "concurrent-change",
            ProblemType::Gone => "gone",
            ProblemType::PreconditionFailed => "precondition-failed",
            ProblemType::PayloadTooLarge => "payload-too-large",
            ProblemType::UnsupportedMediaType => "unsupported-media-type",
            ProblemType::ValidationFailed => "validation-failed",
            ProblemType::IdempotencyKeyReused => "idempotency-key-reused",
            ProblemType::PreconditionRequired => "precondition-required",
            ProblemType::RateLimited => "rate-limited",
            ProblemType::Internal => "internal",
            ProblemType::ServiceUnavailable => "service-unavailable",
            ProblemType::Timeout => "timeout",
            ProblemType::FaultInjected => "fault-injected",
        }
    }

    /// The `type` member: `urn:taskwatch:problem:<slug>`.
    pub fn uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.slug())
    }

    /// The status a problem of this kind is sent with (`None` for [`ProblemType::FaultInjected`], which takes
    /// whatever status the fault plan names).
    pub const fn status(self) -> Option<StatusCode> {
        Some(match self {
            ProblemType::MalformedRequest => StatusCode::BAD_REQUEST,
            ProblemType::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemType::NotFound => StatusCode::NOT_FOUND,
            ProblemType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemType::AlreadyCompleted | ProblemType::AlreadyOpen | ProblemType::ConcurrentChange => {
                StatusCode::CONFLICT
            }
            ProblemType::Gone => StatusCode::GONE,
            ProblemType::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ProblemType::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemType::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemType::ValidationFailed | ProblemType::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemType::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ProblemType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemType::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemType::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProblemType::FaultInjected => return None,
        })
    }

    /// The general kind for a status, for problems built from a status alone.
    fn for_status(status: StatusCode) -> ProblemType {
        match status {
            StatusCode::UNAUTHORIZED => ProblemType::Unauthorized,
            StatusCode::NOT_FOUND => ProblemType::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ProblemType::MethodNotAllowed,
            StatusCode::CONFLICT => ProblemType::ConcurrentChange,
            StatusCode::GONE => ProblemType::Gone,
            StatusCode::PRECONDITION_FAILED => ProblemType::PreconditionFailed,
            StatusCode::PAYLOAD_TOO_LARGE => ProblemType::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemType::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ProblemType::ValidationFailed,
            StatusCode::PRECONDITION_REQUIRED => ProblemType::PreconditionRequired,
            StatusCode::TOO_MANY_REQUESTS => ProblemType::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ProblemType::ServiceUnavailable,
            StatusCode::GATEWAY_TIMEOUT => ProblemType::Timeout,
            status if status.is_server_error() => ProblemType::Internal,
            _ => ProblemType::MalformedRequest,
        }
    }
}

/// What every problem `type` URI starts with.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:taskwatch:problem:";

/// An RFC 9457 problem document plus the response headers it needs (e.g. `Retry-After`).
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    type_uri: String,
    title: String,
    detail: Option<String>,
    extensions: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with the status's canonical reason as title and the general [`ProblemType`] of that status.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            type_uri: ProblemType::for_status(status).uri(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: None,
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 400 `malformed-request`: `detail` says what is wrong with the request itself.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST).with_detail(detail)
    }

    /// 401 `unauthorized`, with the `WWW-Authenticate: Bearer` challenge a 401 must carry.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED)
            .with_detail(detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 404 `not-found`: no such resource for this caller.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND).with_detail(detail)
    }

    /// 409 with the general kind `concurrent-change`; [`Problem::of`] gives the other 409 kinds.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT).with_detail(detail)
    }

    /// 412 `precondition-failed`: the resource changed since the ETag the client sent in `If-Match`.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED).with_detail(detail)
    }

    /// 428 `precondition-required`: the operation needs an `If-Match` header.
    pub fn precondition_required(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_REQUIRED).with_detail(detail)
    }

    /// 413 `payload-too-large`: the body exceeds the limit, which `detail` should name.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE).with_detail(detail)
    }

    /// 422 with one entry per invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let errors = serde_json::to_value(errors).unwrap_or(Value::Null);
        Self::new(StatusCode::UNPROCESSABLE_ENTITY)
            .with_title("Validation failed")
            .with_detail("One or more fields are invalid; see `errors`.")
            .with_extension("errors", errors)
    }

    /// 429 telling the client when to come back.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS)
            .with_detail(format!("Rate limit exceeded; retry after {} s.", retry_after_secs.max(1)))
            .with_retry_after(retry_after_secs)
    }

    /// 500 that never leaks internals: the cause belongs in the logs, not the body.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_detail("An unexpected error occurred; it has been logged with this request's id.")
    }

    /// 503 `service-unavailable`: a dependency is down and the client may retry.
    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE).with_detail(detail)
    }

    /// Adds `Retry-After`: how many seconds (at least 1) the client should wait before trying again.
    pub fn with_retry_after(self, seconds: u64) -> Self {
        self.with_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
    }

    /// Replaces the title (by default the status's reason phrase); keep it the same for every problem of a type.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets `detail`, the explanation of this occurrence; clients see it, so it must not carry internals.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A problem of `kind`, with the kind's status.
    pub fn of(kind: ProblemType) -> Self {
        Self::new(kind.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)).with_type(kind)
    }

    /// A failure the fault switch injected on purpose, with the status its plan names.
    pub fn fault_injected(status: StatusCode) -> Self {
        Self::new(status).with_type(ProblemType::FaultInjected)
    }

    /// Sets the `type` URI to `kind`'s, leaving status and title as they are.
    pub fn with_type(mut self, kind: ProblemType) -> Self {
        self.type_uri = kind.uri();
        self
    }

    /// The `type` URI.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// Adds a member to the body; the standard members cannot be overwritten.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if !matches!(key.as_str(), "type" | "title" | "status" | "detail" | "instance") {
            self.extensions.insert(key, value.into());
        }
        self
    }

    /// Sends `name: value` with the response; it replaces an earlier value of that header, content type included.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response status, also sent as the body's `status` member.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `title` member.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The `detail` member; `None` when the body has none.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The JSON body as sent on the wire.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), Value::from(self.type_uri.clone()));
        body.insert("title".into(), Value::from(self.title.clone()));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        if let Some(detail) = &self.detail {
            body.insert("detail".into(), Value::from(detail.clone()));
        }
        body.extend(self.extensions.clone());
        Value::Object(body)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{} {}: {detail}", self.status.as_u16(), self.title),
            None => write!(f, "{} {}", self.status.as_u16(), self.title),
        }
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_lists_every_field() {
        let problem = Problem::validation(vec![
            FieldError::new("title", "must not be empty"),
            FieldError::new("time_zone", "unknown IANA zone `Mars/Olympus`"),
        ]);
        let body = problem.body();
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][1]["field"], "time_zone");
    }

    #[test]
    fn response_carries_problem_media_type_and_retry_after() {
        let response = Problem::too_many_requests(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn every_kind_has_its_own_uri_and_problems_from_a_status_get_its_general_kind() {
        let uris: std::collections::HashSet<String> = ProblemType::ALL.iter().map(|kind| kind.uri()).collect();
        assert_eq!(uris.len(), ProblemType::ALL.len(), "type URIs are unique");
        assert!(uris.iter().all(|uri| uri.starts_with(PROBLEM_TYPE_PREFIX)));
        assert_eq!(Problem::not_found("x").type_uri(), "urn:taskwatch:problem:not-found");
        assert_eq!(Problem::new(StatusCode::CONFLICT).type_uri(), ProblemType::ConcurrentChange.uri());
        assert_eq!(Problem::new(StatusCode::BAD_GATEWAY).type_uri(), ProblemType::Internal.uri());
        assert_eq!(Problem::validation(vec![]).body()["type"], ProblemType::ValidationFailed.uri());
        let injected = Problem::fault_injected(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (injected.status(), injected.type_uri()),
            (StatusCode::SERVICE_UNAVAILABLE, "urn:taskwatch:problem:fault-injected")
        );
        assert_eq!(Problem::of(ProblemType::IdempotencyKeyReused).status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn extensions_cannot_overwrite_standard_members() {
        let body = Problem::not_found("no such task").with_extension("status", 200).body();
        assert_eq!(body["status"], 404);
    }
}
