//! `GET /v1/tasks` query parameters: parsed as strings and validated together, so every bad parameter is
//! reported at once (400 with `errors`).

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use observability::Problem;
use serde::Deserialize;
use utoipa::IntoParams;

use super::cursor;
use super::error::{ApiError, bad_request_fields};
use crate::domain::text::Labels;
use crate::domain::violations::Collector;
use crate::domain::{ListQuery, PageSize, Priority, TaskFilter, TaskStatus, Violations};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tasks in this state.
    #[param(value_type = Option<TaskStatus>)]
    pub status: Option<String>,
    /// RFC 3339; tasks due at or after this instant.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub due_from: Option<String>,
    /// RFC 3339; tasks due before this instant (none when it is not after `due_from`).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub due_to: Option<String>,
    /// Tasks carrying this label (1 to 50 characters, one line).
    #[param(min_length = 1, max_length = 50)]
    pub label: Option<String>,
    /// Only tasks of this priority.
    #[param(value_type = Option<Priority>)]
    pub priority: Option<String>,
    /// Page size; default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, with the same filters (any other value is a 400).
    pub cursor: Option<String>,
}

/// Extracts the raw parameters; an unknown parameter is a 400 problem.
#[derive(Debug)]
pub struct ListParamsQuery(pub ListParams);

impl<S: Send + Sync> FromRequestParts<S> for ListParamsQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<ListParams>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| Problem::bad_request(format!("Invalid query string: {}", rejection.body_text())))?;
        Ok(Self(params))
    }
}

impl ListParams {
    pub fn into_query(self) -> Result<ListQuery, ApiError> {
        let mut collector = Collector::new();
        let status = parse_optional(&mut collector, "status", self.status.as_deref(), |s| {
            TaskStatus::from_name(s).ok_or("must be `open` or `completed`")
        });
        let priority = parse_optional(&mut collector, "priority", self.priority.as_deref(), |s| {
            Priority::from_name(s).ok_or("must be `low`, `medium`, `high` or `urgent`")
        });
        let due_from = parse_optional(&mut collector, "due_from", self.due_from.as_deref(), parse_instant);
        let due_to = parse_optional(&mut collector, "due_to", self.due_to.as_deref(), parse_instant);
        // A filter names a label a task can carry (1 to 50 characters, one line), so Postgres never sees the rest.
        let label = match self.label {
            None => Some(None),
            Some(raw) => collector.take(
                Labels::parse(std::slice::from_ref(&raw))
                    .map(|labels| labels.as_slice().first().cloned())
                    .map_err(|_| Violations::single("label", "must be a label: 1 to 50 characters, one line")),
            ),
        };
        let page_size = match self.limit.as_deref() {
            None => Some(PageSize::DEFAULT),
            Some(raw) => match raw.parse::<u32>().ok().filter(|size| *size <= PageSize::MAX).and_then(PageSize::new) {
                Some(size) => Some(size),
                None => {
                    collector.add("limit", format!("must be a whole number from 1 to {}", PageSize::MAX));
                    None
                }
            },
        };
        let filter = collector.finish(|| {
            Some(TaskFilter {
                status: status?,
                due_from: due_from?,
                due_to: due_to?,
                label: label?,
                priority: priority?,
            })
        });
        let filter = filter.map_err(|violations| bad_request_fields("Invalid query parameters.", violations))?;
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                cursor::decode(raw, &filter)
                    .map_err(|error| Problem::bad_request(format!("Invalid cursor: {error}.")))?,
            ),
        };
        Ok(ListQuery { filter, after, page_size: page_size.unwrap_or(PageSize::DEFAULT) })
    }
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` (violation recorded) when invalid.
fn parse_optional<T>(
    collector: &mut Collector,
    field: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => match parse(raw) {
            Ok(value) => Some(Some(value)),
            Err(reason) => {
                collector.add(field, reason);
                None
            }
        },
    }
}

fn parse_instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    DateTime::parse_from_rfc3339(raw)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp such as 2026-05-01T09:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_parameter_is_reported() {
        let params = ListParams {
            status: Some("done".into()),
            priority: Some("extreme".into()),
            due_from: Some("yesterday".into()),
            limit: Some("0".into()),
            ..ListParams::default()
        };
        let error = params.into_query().expect_err("invalid");
        let body = error.problem().body();
        assert_eq!(body["status"], 400);
        let fields: Vec<&str> =
            body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(fields, vec!["status", "priority", "due_from", "limit"]);
    }

    #[test]
    fn limit_is_bounded_and_defaults() {
        let largest = ListParams { limit: Some("100".into()), ..ListParams::default() }.into_query().expect("valid");
        assert_eq!(largest.page_size.get(), PageSize::MAX);
        assert!(ListParams { limit: Some("101".into()), ..ListParams::default() }.into_query().is_err());
        assert_eq!(ListParams::default().into_query().expect("valid").page_size, PageSize::DEFAULT);
    }

    #[test]
    fn garbage_cursor_is_a_bad_request() {
        let error =
            ListParams { cursor: Some("%%%".into()), ..ListParams::default() }.into_query().expect_err("invalid");
        assert_eq!(error.problem().status(), axum::http::StatusCode::BAD_REQUEST);
    }
}
