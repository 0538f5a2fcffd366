//! Runs the real backend router over real HTTP on 127.0.0.1:0 against a fresh database per test.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use backend::config::Config;
use observability::Shutdown;
use observability::config::Env;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use testkit::postgres::TestDatabase;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The `INTERNAL_SERVICE_TOKEN` every test app accepts on `/internal/v1`.
pub const SERVICE_TOKEN: &str = "service-token-service-token-service-token";

/// One backend instance with its own database.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub db: TestDatabase,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<()>,
}

/// Start-up is migrations on a fresh database: generous on two shared cores.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

impl TestApp {
    /// Rate limits off, default limits otherwise.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customise: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::new().await.expect("test database");
        Self::on_database(db, customise).await
    }

    /// Serves the backend on `db`, after applying its migrations.
    pub async fn on_database(db: TestDatabase, customise: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::from_env(Env::from_pairs(
            [
                ("DATABASE_URL", db.url()),
                ("AUTH_JWT_SECRET", JWT_SECRET),
                ("RATE_LIMIT_ENABLED", "false"),
                ("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        ))
        .expect("test config");
        config.base.readiness_timeout = Duration::from_secs(1);
        config.database.acquire_timeout = Duration::from_secs(2);
        config.database.max_connections = 8;
        customise(&mut config);

        config.base.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

        // The very entry point `main` runs: build, bind, run until stopped (migrations are its start-up step).
        let metrics = observability::metrics::install().expect("metrics recorder");
        let bound = backend::app::build(&config, metrics).expect("backend builds").bind().await.expect("bind");
        let address = bound.local_addr();
        let health = bound.health();
        let shutdown = Shutdown::new();
        let server = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { bound.run_until_stopped(shutdown).await.expect("backend runs") }
        });
        testkit::wait::until(STARTUP_WAIT, || std::future::ready(health.is_started())).await.expect("backend starts");
        Self {
            base_url: format!("http://{address}"),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
            config,
            db,
            shutdown,
            server,
        }
    }

    pub fn pool(&self) -> PgPool {
        self.db.pool()
    }

    pub fn token(&self, user: &str) -> String {
        backend::auth::mint(&self.config.auth, user, Duration::from_secs(3600)).expect("token")
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base_url))
    }

    /// A request authenticated as `user`.
    pub fn as_user(&self, user: &str, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(self.token(user))
    }

    /// A request to the internal API carrying the service credential.
    pub fn as_service(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(SERVICE_TOKEN)
    }

    /// Creates a task for `user` and returns its JSON.
    pub async fn create_task(&self, user: &str, body: Value) -> Value {
        let response = self.as_user(user, Method::POST, "/v1/tasks").json(&body).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::CREATED, "create failed: {:?}", response.text().await);
        response.json().await.expect("task JSON")
    }

    pub async fn create_simple_task(&self, user: &str, title: &str) -> Value {
        self.create_task(user, json!({ "title": title })).await
    }

    /// Rows in `backend.outbox` for `task_id`, oldest first.
    pub async fn outbox_rows(&self, task_id: &str) -> Vec<OutboxRow> {
        sqlx::query_as::<_, OutboxRow>(
            "SELECT id, topic, message_key, event_type, payload, headers, attempts, claimed_until IS NOT NULL AS claimed, \
             published_at IS NOT NULL AS published FROM backend.outbox WHERE payload->>'subject' = $1 ORDER BY id",
        )
        .bind(task_id)
        .fetch_all(&self.pool())
        .await
        .expect("outbox query")
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool()).await.expect("count query")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.server.abort();
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: uuid::Uuid,
    pub topic: String,
    pub message_key: String,
    pub event_type: String,
    pub payload: Value,
    pub headers: Value,
    pub attempts: i32,
    pub claimed: bool,
    pub published: bool,
}

/// Asserts a problem+json response with `status` and returns its body.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert_eq!(content_type, "application/problem+json", "not problem+json; body: {text}");
    let body: Value = serde_json::from_str(&text).expect("problem JSON");
    assert_eq!(body["status"], status.as_u16(), "problem status member: {body}");
    body
}

/// The `field` members of a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub fn etag_of(response: &Response) -> String {
    response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("ETag header").to_owned()
}
