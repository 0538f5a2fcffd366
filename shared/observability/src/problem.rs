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
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

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
    /// A problem with the status's canonical reason as title and `about:blank` as type.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            type_uri: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: None,
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST).with_detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED)
            .with_detail(detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND).with_detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT).with_detail(detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED).with_detail(detail)
    }

    pub fn precondition_required(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_REQUIRED).with_detail(detail)
    }

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
        let retry_after = HeaderValue::from(retry_after_secs.max(1));
        Self::new(StatusCode::TOO_MANY_REQUESTS)
            .with_detail(format!("Rate limit exceeded; retry after {} s.", retry_after_secs.max(1)))
            .with_header(header::RETRY_AFTER, retry_after)
    }

    /// 500 that never leaks internals: the cause belongs in the logs, not the body.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_detail("An unexpected error occurred; it has been logged with this request's id.")
    }

    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE).with_detail(detail)
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Adds a member to the body; the standard members cannot be overwritten.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if !matches!(key.as_str(), "type" | "title" | "status" | "detail" | "instance") {
            self.extensions.insert(key, value.into());
        }
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn title(&self) -> &str {
        &self.title
    }

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
    fn extensions_cannot_overwrite_standard_members() {
        let body = Problem::not_found("no such task").with_extension("status", 200).body();
        assert_eq!(body["status"], 404);
    }
}
