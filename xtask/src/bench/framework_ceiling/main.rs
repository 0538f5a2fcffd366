//! `bench-framework-ceiling`: the least a Rust service can do to answer the backend's `get` and `list`, so that
//! `cargo xtask bench` can tell what the backend's own layers cost on top of the framework and the driver.
//!
//! The same stack as the backend (axum, sqlx with a pool of the same size, jsonwebtoken), the same SQL and the
//! same work a correct answer needs (verify the bearer token, read the owner's rows, write them as JSON), and
//! nothing else: no telemetry, no validation of the rows, no error documents, no middleware.
//!
//! Configured by `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS`, `AUTH_JWT_SECRET`, `BIND_ADDR` and `PORT`, as the
//! backend is (xtask/src/bench/backend.rs starts both).

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

/// The backend's columns (services/backend/src/store/tasks.rs), in its order.
const COLUMNS: &str = "id, owner_id, series_id, title, description, priority, labels, due_at, time_zone, rrule, \
                       rrule_anchor, series_start, reminders, status, completed_at, version, created_at, updated_at";
/// The backend's default page, plus the one row it reads to know whether another page follows.
const LIST_LIMIT: i64 = 51;

/// A row of `backend.tasks`, written out as it was read.
#[derive(Debug, Serialize, sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    owner_id: String,
    series_id: Uuid,
    title: String,
    description: Option<String>,
    priority: String,
    labels: Vec<String>,
    due_at: Option<DateTime<Utc>>,
    time_zone: String,
    rrule: Option<String>,
    rrule_anchor: Option<String>,
    series_start: Option<DateTime<Utc>>,
    reminders: sqlx::types::JsonValue,
    status: String,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A page of the list, as the backend wraps it.
#[derive(Debug, Serialize)]
struct Page {
    items: Vec<TaskRow>,
}

/// The claim the answer depends on.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
}

/// What every handler shares.
#[derive(Debug, Clone)]
struct Ceiling {
    pool: PgPool,
    key: DecodingKey,
    validation: Validation,
}

impl Ceiling {
    /// The owner a request's bearer token stands for, verified as the backend verifies it (HS256, `exp` and `sub`
    /// required, 5 s leeway).
    fn owner(&self, headers: &HeaderMap) -> Result<String, StatusCode> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| StatusCode::UNAUTHORIZED)?;
        Ok(data.claims.sub)
    }
}

/// `GET /v1/tasks?status=…`: the list's filter the bench uses.
#[derive(Debug, Deserialize)]
struct ListFilter {
    status: Option<String>,
}

async fn get_task(State(ceiling): State<Ceiling>, headers: HeaderMap, Path(id): Path<Uuid>) -> Response {
    let owner = match ceiling.owner(&headers) {
        Ok(owner) => owner,
        Err(status) => return status.into_response(),
    };
    let row: Result<Option<TaskRow>, _> =
        sqlx::query_as(AssertSqlSafe(format!("SELECT {COLUMNS} FROM backend.tasks WHERE id = $1 AND owner_id = $2")))
            .bind(id)
            .bind(owner)
            .fetch_optional(&ceiling.pool)
            .await;
    match row {
        Ok(Some(task)) => Json(task).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn list_tasks(State(ceiling): State<Ceiling>, headers: HeaderMap, Query(filter): Query<ListFilter>) -> Response {
    let owner = match ceiling.owner(&headers) {
        Ok(owner) => owner,
        Err(status) => return status.into_response(),
    };
    // The statement the backend's query builder makes for the same filter.
    let status_filter = if filter.status.is_some() { " AND status = $2" } else { "" };
    let limit = if filter.status.is_some() { "$3" } else { "$2" };
    // Built from constants only.
    let sql = AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backend.tasks WHERE owner_id = $1{status_filter} \
         ORDER BY due_at ASC NULLS LAST, id ASC LIMIT {limit}"
    ));
    let mut query = sqlx::query_as(sql).bind(owner);
    if let Some(status) = filter.status {
        query = query.bind(status);
    }
    let rows: Result<Vec<TaskRow>, _> = query.bind(LIST_LIMIT).fetch_all(&ceiling.pool).await;
    match rows {
        Ok(items) => Json(Page { items }).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn variable(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let connections: u32 = variable("DATABASE_MAX_CONNECTIONS")?.parse().context("DATABASE_MAX_CONNECTIONS")?;
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .connect(&variable("DATABASE_URL")?)
        .await
        .context("connecting to DATABASE_URL")?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let ceiling = Ceiling { pool, key: DecodingKey::from_secret(variable("AUTH_JWT_SECRET")?.as_bytes()), validation };

    let app =
        Router::new().route("/v1/tasks", get(list_tasks)).route("/v1/tasks/{id}", get(get_task)).with_state(ceiling);
    let address: SocketAddr = format!("{}:{}", variable("BIND_ADDR")?, variable("PORT")?).parse().context("address")?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let shutdown = async move {
        terminate.recv().await;
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving")
}
