//! The JSON body extractor: every way a body can be wrong becomes a precise problem+json response.
//!
//! * wrong or missing `Content-Type` → 415
//! * body over the limit → 413
//! * not JSON at all → 400
//! * JSON of the wrong shape (wrong type, unknown or read-only field, missing field) → 422 naming the field

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use observability::{FieldError, Problem};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Fields the server sets; a client sending one gets a clear "read-only" error rather than "unknown field".
const READ_ONLY_FIELDS: [&str; 8] =
    ["id", "series_id", "status", "completed_at", "version", "created_at", "updated_at", "owner_id"];

/// A deserialised JSON body, plus the parsed JSON it came from (for idempotency fingerprints).
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    pub raw: serde_json::Value,
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .with_detail(
                    "Send the body as JSON: `Content-Type: application/json` or another `application/*+json` type \
                     (e.g. `application/merge-patch+json`).",
                )
                .into());
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::payload_too_large("The request body exceeds the size limit.")
            } else {
                Problem::bad_request("The request body could not be read.")
            }
        })?;
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|error| Problem::bad_request(format!("The request body is not valid JSON: {error}.")))?;
        if !raw.is_object() {
            return Err(Problem::validation(vec![FieldError::new("body", "must be a JSON object")]).into());
        }
        let value = serde_path_to_error::deserialize(raw.clone())
            .map_err(|error| Problem::validation(vec![field_error(&error)]))?;
        Ok(Self { value, raw })
    }
}

/// `application/json` or any `application/*+json` (e.g. `application/merge-patch+json`), parameters allowed.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(mime) = content_type.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Names the offending field: serde reports unknown and missing fields at their parent's path, with the field's
/// name in backticks in the message.
fn field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = error.path().to_string();
    let parent = if path == "." { String::new() } else { path.clone() };
    let message = error.inner().to_string();
    let join = |name: &str| if parent.is_empty() { name.to_owned() } else { format!("{parent}.{name}") };
    if let Some(name) = quoted_after(&message, "unknown field `") {
        // Depending on the nesting, the path may already end in the unknown key itself.
        let field = if parent.ends_with(name) { parent.clone() } else { join(name) };
        let reason = if READ_ONLY_FIELDS.contains(&name) {
            "is read-only: the server sets it".to_owned()
        } else {
            match message.split_once(", expected ") {
                Some((_, expected)) => format!("is not a known field (expected {expected})"),
                None => "is not a known field".to_owned(),
            }
        };
        return FieldError::new(field, reason);
    }
    if let Some(name) = quoted_after(&message, "missing field `") {
        return FieldError::new(join(name), "is required");
    }
    let field = if parent.is_empty() { "body".to_owned() } else { parent };
    FieldError::new(field, message)
}

fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialised
    struct Outer {
        title: String,
        #[serde(default)]
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        minutes: i64,
    }

    fn error_for(json: serde_json::Value) -> FieldError {
        let error = serde_path_to_error::deserialize::<_, Outer>(json).expect_err("invalid");
        field_error(&error)
    }

    #[test]
    fn names_the_field_in_each_kind_of_error() {
        assert_eq!(error_for(serde_json::json!({})).field, "title");
        assert_eq!(error_for(serde_json::json!({"title": 5})).field, "title");
        let unknown = error_for(serde_json::json!({"title": "x", "colour": "red"}));
        assert_eq!(unknown.field, "colour");
        let read_only = error_for(serde_json::json!({"title": "x", "version": 3}));
        assert_eq!(read_only.field, "version");
        assert!(read_only.message.contains("read-only"));
        assert_eq!(error_for(serde_json::json!({"title": "x", "inner": [{"minutes": "5"}]})).field, "inner[0].minutes");
        assert_eq!(error_for(serde_json::json!({"title": "x", "inner": [{}]})).field, "inner[0].minutes");
    }

    #[test]
    fn json_media_types() {
        let value = |s: &'static str| header::HeaderValue::from_static(s);
        assert!(is_json(Some(&value("application/json"))));
        assert!(is_json(Some(&value("application/json; charset=utf-8"))));
        assert!(is_json(Some(&value("application/merge-patch+json"))));
        assert!(!is_json(Some(&value("text/plain"))));
        assert!(!is_json(None));
    }
}
