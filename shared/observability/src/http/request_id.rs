//! `x-request-id`: accepted when sane, generated otherwise, always echoed.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The header carrying the request id in both directions.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// The request's id, available to handlers as an extension: `Extension(id): Extension<RequestId>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts a caller's id only if it is 1–128 visible ASCII characters, so it is safe to log,
    /// to echo in a header and to use as a label without escaping surprises.
    pub fn parse(candidate: &str) -> Option<Self> {
        let sane = (1..=MAX_LEN).contains(&candidate.len()) && candidate.bytes().all(|byte| byte.is_ascii_graphic());
        sane.then(|| Self(candidate.to_owned()))
    }

    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The id as sent in `x-request-id` and logged as `request_id`; always visible ASCII.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives `request` its id (the caller's when sane, else a new one), runs `next` with it, and echoes it on the
/// response.
pub(super) async fn assign_request_id<F>(mut request: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    // Visible ASCII always makes a valid header value.
    let header = HeaderValue::from_str(request_id.as_str()).ok();
    if let Some(header) = &header {
        request.headers_mut().insert(REQUEST_ID_HEADER, header.clone());
    }
    request.extensions_mut().insert(request_id);
    let mut response = next(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_short_visible_ascii() {
        assert!(RequestId::parse("abc-123_XYZ.~").is_some());
        assert!(RequestId::parse(&"a".repeat(128)).is_some());
        assert!(RequestId::parse(&"a".repeat(129)).is_none());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("has space").is_none());
        assert!(RequestId::parse("tab\there").is_none());
        assert!(RequestId::parse("ünïcode").is_none());
    }

    #[test]
    fn generated_ids_are_uuid_v7() {
        let id = RequestId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }
}
