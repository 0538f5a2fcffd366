//! Request and response headers the task API speaks: `ETag`/`If-Match`, `Idempotency-Key`, `Location`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use observability::Problem;

use super::error::{ApiError, bad_request_fields};
use crate::domain::{TaskId, Version};
use crate::idempotency::{Fingerprint, IdempotencyKey, IdempotentRequest, Operation};
use crate::service::Precondition;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a response that replays the stored outcome of an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A strong entity tag for a task version: `"7"`.
pub fn etag(version: Version) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", version.get())).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

pub fn location(id: TaskId) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/tasks/{id}")).unwrap_or_else(|_| HeaderValue::from_static("/v1/tasks"))
}

/// `If-Match`, if present. `*` matches any current version; weak tags never match (RFC 9110 strong comparison).
pub fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ApiError> {
    let values: Vec<&HeaderValue> = headers.get_all(header::IF_MATCH).iter().collect();
    if values.is_empty() {
        return Ok(None);
    }
    let malformed = || Problem::bad_request("If-Match must be `*` or a list of entity tags such as \"3\".");
    let mut tags = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| malformed())?;
        tags.extend(text.split(',').map(str::trim).filter(|tag| !tag.is_empty()));
    }
    // `*` stands alone: "any current version" cannot be listed beside particular ones.
    match tags.as_slice() {
        ["*"] => return Ok(Some(Precondition::None)),
        tags if tags.contains(&"*") => return Err(malformed().into()),
        _ => {}
    }
    let mut versions = Vec::new();
    for tag in tags.iter().copied() {
        // RFC 9110 entity-tag: an optional `W/`, then a quoted string of etagc (visible ASCII but `"`; the
        // documented pattern also leaves out `,`, the list separator). Anything else is malformed, weak or not.
        let (weak, opaque) = tag.strip_prefix("W/").map_or((false, tag), |rest| (true, rest));
        let inner = opaque.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(malformed)?;
        if !inner.bytes().all(|byte| matches!(byte, b'!' | b'#'..=b'+' | b'-'..=b'~')) {
            return Err(malformed().into());
        }
        if weak {
            continue;
        }
        // A well-formed tag that is not one of ours simply never matches.
        if let Ok(number) = inner.parse::<i64>() {
            versions.push(Version::new(number));
        }
    }
    // A header without a single tag is a client mistake, not a precondition that can fail.
    if tags.is_empty() {
        return Err(malformed().into());
    }
    Ok(Some(Precondition::OneOf(versions)))
}

/// `Idempotency-Key`, if present, bound to the operation and the canonical request it accompanies.
pub fn idempotency(
    headers: &HeaderMap,
    operation: Operation,
    target: &str,
    body: &serde_json::Value,
) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| crate::domain::Violations::single("Idempotency-Key", "must be visible ASCII"))
        .and_then(IdempotencyKey::parse)
        .map_err(|violations| bad_request_fields("Invalid Idempotency-Key header.", violations))?;
    Ok(Some(IdempotentRequest { key, operation, fingerprint: Fingerprint::of(operation, target, body) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(if_match: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_str(if_match).expect("header"));
        headers
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(&HeaderMap::new()).expect("ok"), None);
        assert_eq!(if_match(&headers("*")).expect("ok"), Some(Precondition::None));
        assert_eq!(
            if_match(&headers("\"3\", \"4\"")).expect("ok"),
            Some(Precondition::OneOf(vec![Version::new(3), Version::new(4)]))
        );
        assert_eq!(if_match(&headers("W/\"3\"")).expect("ok"), Some(Precondition::OneOf(vec![])));
        assert!(if_match(&headers("3")).is_err());
        // A weak tag must be quoted too (schemathesis sent `W/d&0Q`, which the OpenAPI pattern refuses).
        assert!(if_match(&headers("W/d&0Q")).is_err());
        assert!(if_match(&headers("\"a b\"")).is_err(), "no space inside a tag");
        assert!(if_match(&headers("\"1\", *")).is_err(), "`*` stands alone");
        assert!(if_match(&headers("")).is_err(), "no tag at all is malformed");
        assert!(if_match(&headers(" , ")).is_err());
    }

    #[test]
    fn etag_is_a_quoted_version() {
        assert_eq!(etag(Version::new(12)), "\"12\"");
    }
}
