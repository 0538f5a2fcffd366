//! Opaque pagination cursors: the sort key of the last task on a page, bound to the filters of its listing.
//!
//! Clients must treat a cursor as an opaque string; it is base64url JSON so that it is easy to debug, and it
//! carries a hash of the filters so a cursor cannot silently be reused with a different query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::{Position, TaskFilter, TaskId};

const VERSION: u8 = 1;
/// Generous for the JSON above; anything longer is not one of ours.
const MAX_LEN: usize = 512;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorData {
    v: u8,
    d: Option<DateTime<Utc>>,
    i: Uuid,
    q: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed")]
    Malformed,
    #[error("the cursor belongs to a listing with different filters")]
    OtherQuery,
}

pub fn encode(position: Position, filter: &TaskFilter) -> String {
    let data = CursorData { v: VERSION, d: position.due_at, i: position.id.as_uuid(), q: filter_hash(filter) };
    // Serialising this plain struct cannot fail; an empty cursor would only restart the listing.
    let json = serde_json::to_vec(&data).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode(cursor: &str, filter: &TaskFilter) -> Result<Position, CursorError> {
    if cursor.len() > MAX_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Malformed)?;
    let data: CursorData = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if data.v != VERSION {
        return Err(CursorError::Malformed);
    }
    if data.q != filter_hash(filter) {
        return Err(CursorError::OtherQuery);
    }
    Ok(Position { due_at: data.d, id: TaskId::from_uuid(data.i) })
}

fn filter_hash(filter: &TaskFilter) -> String {
    let canonical = serde_json::json!({
        "status": filter.status.map(|s| s.as_str()),
        "due_from": filter.due_from,
        "due_to": filter.due_to,
        "label": filter.label,
        "priority": filter.priority.map(|p| p.as_str()),
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TaskStatus;

    #[test]
    fn round_trips_and_rejects_tampering() {
        let filter = TaskFilter { status: Some(TaskStatus::Open), ..TaskFilter::default() };
        let position = Position { due_at: Some(Utc::now()), id: TaskId::generate() };
        let cursor = encode(position, &filter);
        assert_eq!(decode(&cursor, &filter), Ok(position));
        assert_eq!(decode(&cursor, &TaskFilter::default()), Err(CursorError::OtherQuery));
        assert_eq!(decode("not-a-cursor!", &filter), Err(CursorError::Malformed));
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode(b"{}"), &filter), Err(CursorError::Malformed));
        let undated = Position { due_at: None, id: TaskId::generate() };
        assert_eq!(decode(&encode(undated, &filter), &filter), Ok(undated));
    }
}
