//! Instants for task bodies, as the API writes them (RFC 3339, UTC, whole seconds).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

/// Now plus `seconds`, truncated to the second.
pub fn seconds_from_now(seconds: i64) -> DateTime<Utc> {
    let now = Utc::now();
    let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    whole + TimeDelta::seconds(seconds)
}

/// `instant` as the API renders it: `2030-01-15T09:00:00Z`.
pub fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A JSON string holding an RFC 3339 instant (as the API returns `due_at`), in UTC; `None` otherwise.
pub fn parse_instant(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|instant| instant.with_timezone(&Utc))
}
