//! The real backend, in process: its router served over real HTTP on 127.0.0.1 against a throwaway Postgres
//! database, with its internal API open to [`SERVICE_TOKEN`]. It can be stopped (listener and connections
//! closed, so calls are refused) and restarted on the same address with its data intact. Tasks are made through
//! its public API as [`USER`]; the events the service consumes are the ones the backend wrote to its outbox.

// Each test binary uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Once;
use std::time::Duration;

use backend::config::Config;
use events::CloudEvent;
use observability::config::Env;
use observability::telemetry::TelemetrySettings;
use observability::{ServiceInfo, Shutdown};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use testkit::postgres::TestDatabase;
use tokio::task::JoinHandle;

pub const JWT_SECRET: &str = "recurring-task-test-jwt-secret-32-bytes-long";
/// The backend's `INTERNAL_SERVICE_TOKEN`: the credential the service must present.
pub const SERVICE_TOKEN: &str = "recurring-task-test-internal-token-32-bytes";
/// The owner of every task the tests create.
pub const USER: &str = "alice";
/// 09:00 Europe/Berlin on the day before the clocks go forward.
pub const DUE: &str = "2026-03-28T08:00:00Z";
/// The next day at 09:00 Berlin: after the change to summer time.
pub const NEXT_DUE: &str = "2026-03-29T07:00:00Z";

/// A task as the backend's public API returns it, with the event its completion wrote.
pub struct CompletedTask {
    pub task: Value,
    /// `task.completed.v1`, exactly as the outbox holds it (and the relay would publish it).
    pub event: CloudEvent<Value>,
}

impl CompletedTask {
    pub fn id(&self) -> &str {
        self.task["id"].as_str().unwrap()
    }

    pub fn series_id(&self) -> &str {
        self.task["series_id"].as_str().unwrap()
    }
}

/// A daily 09:00 Berlin task due on [`DUE`], optionally recurring by `rrule`.
pub fn daily_task(rrule: Option<&str>) -> Value {
    let mut task = json!({ "title": "Water the plants", "due_at": DUE, "time_zone": "Europe/Berlin" });
    if let Some(rrule) = rrule {
        task["recurrence"] = json!({ "rrule": rrule, "anchor": "due" });
    }
    task
}

/// The backend, serving until dropped or [`RealBackend::stop`]ped.
pub struct RealBackend {
    config: Config,
    db: TestDatabase,
    address: SocketAddr,
    http: reqwest::Client,
    serving: Option<Serving>,
}

/// One run of the backend: its server and workers.
struct Serving {
    shutdown: Shutdown,
    server: JoinHandle<()>,
}

impl RealBackend {
    /// Migrates a fresh database and serves on a free port. The outbox relay stays off (no `KAFKA_BROKERS`),
    /// so every event remains readable in `backend.outbox`.
    pub async fn start() -> Self {
        let db = TestDatabase::new().await.unwrap();
        let pairs = [
            ("DATABASE_URL", db.url()),
            ("AUTH_JWT_SECRET", JWT_SECRET),
            ("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN),
            ("RATE_LIMIT_ENABLED", "false"),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            // Idle keep-alive connections close at once on shutdown; this bounds a stuck request.
            ("HTTP_DRAIN_TIMEOUT", "5s"),
        ];
        let mut config = Config::from_env(Env::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())))).unwrap();
        config.base.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut backend = Self { address: config.base.listen, config, db, http, serving: None };
        backend.serve().await;
        backend
    }

    /// Runs the backend through the entry point `main` runs (build, bind, run until stopped; migrations are its
    /// start-up step) and waits until it started. Later runs take the address of the first.
    async fn serve(&mut self) {
        let metrics = observability::metrics::install().unwrap();
        let bound = backend::app::build(&self.config, metrics).unwrap().bind().await.unwrap();
        self.address = bound.local_addr();
        self.config.base.listen = self.address;
        let health = bound.health();
        let shutdown = Shutdown::new();
        let server = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { bound.run_until_stopped(shutdown).await.unwrap() }
        });
        testkit::wait::until(Duration::from_secs(60), || std::future::ready(health.is_started())).await.unwrap();
        self.serving = Some(Serving { shutdown, server });
    }

    /// Stops serving and waits until the listener and every connection are closed: from then on a call is
    /// refused, as when the backend is down.
    pub async fn stop(&mut self) {
        let serving = self.serving.take().expect("the backend is running");
        serving.shutdown.trigger();
        serving.server.await.unwrap();
    }

    /// Serves again on the same address, on the same database.
    pub async fn restart(&mut self) {
        assert!(self.serving.is_none(), "the backend is already running");
        self.serve().await;
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A request to the public API as [`USER`], with a token the backend itself mints.
    fn as_user(&self, method: Method, path: &str) -> RequestBuilder {
        let token = backend::auth::mint(&self.config.auth, USER, Duration::from_secs(3600)).unwrap();
        self.http.request(method, format!("{}{path}", self.base_url())).bearer_auth(token)
    }

    /// A request to the internal API with the service credential.
    pub fn as_service(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url())).bearer_auth(SERVICE_TOKEN)
    }

    pub async fn create_task(&self, body: &Value) -> Value {
        let response = self.as_user(Method::POST, "/v1/tasks").json(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Creates the task, completes it and returns it with its completion event.
    pub async fn completed_task(&self, body: &Value) -> CompletedTask {
        let created = self.create_task(body).await;
        let id = created["id"].as_str().unwrap();
        let response = self.as_user(Method::POST, &format!("/v1/tasks/{id}/complete")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
        let task: Value = response.json().await.unwrap();
        let event = self.event(id, "task.completed.v1").await;
        CompletedTask { task, event }
    }

    pub async fn delete_task(&self, id: &str) {
        let response = self.as_user(Method::DELETE, &format!("/v1/tasks/{id}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{}", response.text().await.unwrap());
    }

    /// Every task of [`USER`], through the public API (all pages).
    pub async fn tasks(&self) -> Vec<Value> {
        let mut tasks = Vec::new();
        let mut path = "/v1/tasks?limit=100".to_owned();
        loop {
            let response = self.as_user(Method::GET, &path).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            tasks.extend(page["items"].as_array().expect("a page of tasks").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/tasks?limit=100&cursor={cursor}"),
                None => return tasks,
            }
        }
    }

    /// The open tasks of one series: the occurrences the service created.
    pub async fn open_occurrences(&self, series_id: &str) -> Vec<Value> {
        let tasks = self.tasks().await;
        tasks.into_iter().filter(|task| task["series_id"] == series_id && task["status"] == "open").collect()
    }

    /// The W3C `traceparent` the backend stored with the event of `event_type` for task `task_id`: the trace of
    /// the request that wrote it (present once [`record_traces`] is on).
    pub async fn traceparent(&self, task_id: &str, event_type: &str) -> Option<String> {
        sqlx::query_scalar(
            "SELECT headers->>'traceparent' FROM backend.outbox WHERE payload->>'subject' = $1 AND event_type = $2",
        )
        .bind(task_id)
        .bind(event_type)
        .fetch_one(&self.db.pool())
        .await
        .unwrap()
    }

    /// The event of `event_type` the backend wrote for task `task_id`, read from `backend.outbox` (a test may
    /// read the backend's schema; services may not).
    pub async fn event(&self, task_id: &str, event_type: &str) -> CloudEvent<Value> {
        let payload: Value =
            sqlx::query_scalar("SELECT payload FROM backend.outbox WHERE payload->>'subject' = $1 AND event_type = $2")
                .bind(task_id)
                .bind(event_type)
                .fetch_one(&self.db.pool())
                .await
                .unwrap();
        CloudEvent::decode(&serde_json::to_vec(&payload).unwrap()).unwrap()
    }
}

impl Drop for RealBackend {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.shutdown.trigger();
            serving.server.abort();
        }
    }
}

/// Records this process's spans (the in-process backend's) with OpenTelemetry and propagates W3C trace context,
/// as a deployed service does; nothing is exported and logs are discarded. Idempotent.
pub fn record_traces() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        const TEST: ServiceInfo = ServiceInfo { name: "recurring-task-test", version: "test" };
        let pairs = [("OTEL_SDK_DISABLED", "true"), ("RUST_LOG", "info")];
        let env = Env::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let settings = env.load(|env| Some(TelemetrySettings::from_env(env, TEST))).unwrap();
        // The subscriber's tracer keeps the provider alive.
        let provider = settings.traces.tracer_provider().unwrap();
        observability::telemetry::install_propagator();
        let subscriber = observability::telemetry::subscriber(&settings, &provider, std::io::sink);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// The trace id of a W3C `traceparent` (`version-traceid-spanid-flags`).
pub fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).expect("a traceparent")
}

pub fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}
