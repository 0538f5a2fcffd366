//! `Idempotency-Key` semantics: the first outcome of a keyed request is stored with a fingerprint of the request,
//! and replayed to every retry carrying the same key; the same key on a different request is refused.

use sha2::{Digest, Sha256};

use crate::domain::Violations;

/// A client-chosen key: 1 to 255 visible ASCII characters (UUIDs fit comfortably).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key, in bytes (all ASCII).
    pub const MAX_LEN: usize = 255;

    /// Checks a raw `Idempotency-Key` header value; the violation names the header (a 400, not a 422).
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let valid = !raw.is_empty() && raw.len() <= Self::MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Violations::single(
                "Idempotency-Key",
                format!("must be 1 to {} visible ASCII characters", Self::MAX_LEN),
            ))
        }
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which use case a key was first used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/tasks`.
    CreateTask,
    /// `POST /v1/tasks/{id}/complete`.
    CompleteTask,
    /// The internal API's "create the next occurrence of a series".
    CreateOccurrence,
}

impl Operation {
    /// The name stored with the key, so a key reused for another operation is refused.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::CreateTask => "create_task",
            Operation::CompleteTask => "complete_task",
            Operation::CreateOccurrence => "create_occurrence",
        }
    }
}

/// SHA-256 over the operation, its target and the request body in canonical JSON form (sorted keys, no
/// insignificant whitespace), so a byte-for-byte different but equivalent retry still matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprints `operation` on `target` (the task or series id; empty for a create) with its `body` (`null`
    /// when the request has none).
    pub fn of(operation: Operation, target: &str, body: &serde_json::Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(operation.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(target.as_bytes());
        hasher.update([0]);
        // serde_json's default map is ordered by key, so serialising a `Value` is canonical.
        hasher.update(body.to_string().as_bytes());
        Self(hasher.finalize().into())
    }

    /// A fingerprint read back from storage; `None` unless `bytes` is exactly 32 long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 32-byte digest, for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A keyed request: the key plus what it was used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// The client's key; keys are scoped per user.
    pub key: IdempotencyKey,
    /// Which use case the request is for.
    pub operation: Operation,
    /// What the request asked for, to tell a retry from a different request with the same key.
    pub fingerprint: Fingerprint,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_key_order_but_not_content() {
        let a = Fingerprint::of(Operation::CreateTask, "", &json!({"title": "x", "priority": "low"}));
        let b = Fingerprint::of(Operation::CreateTask, "", &json!({"priority": "low", "title": "x"}));
        let c = Fingerprint::of(Operation::CreateTask, "", &json!({"priority": "low", "title": "y"}));
        let d = Fingerprint::of(Operation::CompleteTask, "", &json!({"priority": "low", "title": "x"}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn key_syntax() {
        assert!(IdempotencyKey::parse("0190b6c8-7f3a-7000-8000-000000000000").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
