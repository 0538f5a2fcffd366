//! The notification service as deployed, against real parts: its own binary as a process, the real backend
//! binary (for notification settings) on a throwaway Postgres, a tansu broker, an SMTP sink speaking SMTP over
//! TCP and a webhook receiver over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::CloudEvent;
use events::reminder::ReminderDue;
use events::topics::{NOTIFICATIONS_DLQ, REMINDERS};
use messaging::{HandlerError, IncomingMessage, KafkaConfig, OutgoingMessage, Producer, Subscription};
use observability::config::Env;
use observability::{ServiceInfo, Shutdown};
use testkit::collected::Collected;
use testkit::exposition::metric_sum;
use testkit::kafka::Broker;
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;
use testkit::smtp::SmtpSink;
use testkit::webhook::WebhookReceiver;
use uuid::Uuid;

/// Covers consumer start-up, a group join and a few retries on two busy cores.
pub const DEADLINE: Duration = Duration::from_secs(90);
pub const JWT_SECRET: &str = "notification-test-jwt-secret-at-least-32-bytes";
pub const SERVICE_TOKEN: &str = "notification-test-internal-token-at-least-32-bytes";
pub const SIGNING_SECRET: &str = "notification-test-webhook-secret-32-bytes-long";

const TEST_CLIENT: ServiceInfo = ServiceInfo { name: "notification-test", version: "test" };

/// The real backend binary (the test needs the backend, not a stand-in), as the workspace build leaves it.
///
/// It is not built from here: `cargo build -p backend` resolves the backend's dependencies with other features
/// than the workspace build, so it recompiles them (minutes on a cold run, holding cargo's lock) and then
/// replaces `target/debug/backend` while other suites may be starting it.
fn backend_binary() -> PathBuf {
    testkit::workspace::binary("backend").unwrap_or_else(|error| panic!("{error}"))
}

/// Below the ephemeral range, so the backend can be restarted on its port (see `testkit::ports`).
pub fn free_port() -> u16 {
    testkit::ports::free_port().unwrap()
}

/// A real backend process with its internal API open to [`SERVICE_TOKEN`]; killed when dropped.
pub struct Backend {
    pub process: Option<ChildGuard>,
    pub port: u16,
    database_url: String,
}

impl Backend {
    pub async fn start(database_url: &str) -> Self {
        let mut backend = Self { process: None, port: free_port(), database_url: database_url.to_owned() };
        backend.start_again().await;
        backend
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts it on its port and waits until it is ready.
    pub async fn start_again(&mut self) {
        let mut command = Command::new(backend_binary());
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("AUTH_JWT_SECRET", JWT_SECRET)
            .env("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN)
            .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            .env("OUTBOX_RELAY_ENABLED", "false")
            .env("RATE_LIMIT_ENABLED", "false")
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("RUST_LOG", "warn");
        let process = ChildGuard::spawn("backend", command).unwrap();
        wait_until_ok(&process, &self.url(), "/health/ready").await;
        self.process = Some(process);
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
        }
    }

    /// Saves `user`'s notification settings through the public API with a token the backend minted.
    pub async fn save_settings(&self, user: &str, email: Option<&str>, webhook_url: Option<&str>) {
        let output = Command::new(backend_binary())
            .env_clear()
            .env("AUTH_JWT_SECRET", JWT_SECRET)
            .args(["token", "--sub", user])
            .output()
            .unwrap();
        let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let response = reqwest::Client::new()
            .put(format!("{}/v1/me/notification-settings", self.url()))
            .bearer_auth(token)
            .json(&serde_json::json!({ "email": email, "webhook_url": webhook_url }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }
}

/// The notification binary under test; killed when dropped.
pub struct Notification {
    pub process: ChildGuard,
    pub url: String,
}

/// Everything a notification test runs against.
pub struct World {
    pub db: TestDatabase,
    pub broker: Broker,
    pub smtp: SmtpSink,
    pub webhook: WebhookReceiver,
    pub backend: Backend,
}

impl World {
    pub async fn start() -> Self {
        let db = TestDatabase::new().await.unwrap();
        let broker = Broker::start().await.unwrap();
        let smtp = SmtpSink::start().await.unwrap();
        let webhook = WebhookReceiver::start().await.unwrap();
        let backend = Backend::start(db.url()).await;
        Self { db, broker, smtp, webhook, backend }
    }

    /// Starts the service with test tuning, `extra` on top, and waits until it consumes.
    pub async fn notification(&self, extra: &[(&str, &str)]) -> Notification {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_notification"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url())
            .env("KAFKA_BROKERS", self.broker.bootstrap())
            .env("BACKEND_URL", self.backend.url())
            .env("INTERNAL_SERVICE_TOKEN", SERVICE_TOKEN)
            .env("SMTP_HOST", self.smtp.host())
            .env("SMTP_PORT", self.smtp.port().to_string())
            .env("SMTP_TLS", "none")
            .env("SMTP_FROM", "Taskwatch <reminders@taskwatch.test>")
            .env("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET)
            .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("RUST_LOG", "info")
            .envs([
                ("KAFKA_COMMIT_INTERVAL", "200ms"),
                ("KAFKA_SESSION_TIMEOUT", "6s"),
                ("KAFKA_DELIVERY_TIMEOUT", "5s"),
                ("KAFKA_RETRY_BACKOFF_INITIAL", "50ms"),
                ("KAFKA_RETRY_BACKOFF_MAX", "500ms"),
                ("NOTIFY_POLL_INTERVAL", "200ms"),
                ("NOTIFY_BACKOFF_INITIAL", "200ms"),
                ("NOTIFY_BACKOFF_MAX", "1s"),
                ("NOTIFY_LEASE", "10s"),
                ("SMTP_TIMEOUT", "2s"),
                ("WEBHOOK_TIMEOUT", "2s"),
                ("BACKEND_TIMEOUT", "1s"),
                ("BACKEND_MAX_RETRIES", "0"),
                ("BACKEND_BREAKER_FAILURE_THRESHOLD", "2"),
                ("BACKEND_BREAKER_OPEN_FOR", "1s"),
            ])
            .envs(extra.iter().copied());
        let process = ChildGuard::spawn("notification", command).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ok(&process, &url, "/health/startup").await;
        Notification { process, url }
    }

    pub fn kafka(&self) -> KafkaConfig {
        let pairs = [("KAFKA_BROKERS".to_owned(), self.broker.bootstrap())];
        Env::from_pairs(pairs).load(|env| KafkaConfig::from_env(env, TEST_CLIENT)).unwrap()
    }

    /// Publishes `event` to `reminders` as the reminder service would (key = task id).
    pub async fn publish(&self, event: &CloudEvent<ReminderDue>) {
        let producer = Producer::new(&self.kafka()).unwrap();
        let message = OutgoingMessage::event(REMINDERS, event.data.partition_key(), event).unwrap();
        producer.send(message).await.unwrap();
    }

    /// Reads `notifications.dlq` from the beginning in the background until the reader is dropped.
    pub fn read_dead_letters(&self) -> DeadLetterReader {
        let pairs = [
            ("KAFKA_BROKERS".to_owned(), self.broker.bootstrap()),
            ("KAFKA_GROUP_ID".to_owned(), format!("dlq-reader-{}", Uuid::now_v7())),
        ];
        let config = Env::from_pairs(pairs).load(|env| KafkaConfig::from_env(env, TEST_CLIENT)).unwrap();
        let letters = Arc::new(Collected::new());
        let shutdown = Shutdown::new();
        let subscription = Subscription::new([NOTIFICATIONS_DLQ], "dlq-reader.unused").unwrap();
        let sink = Arc::clone(&letters);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let handler = move |message: IncomingMessage| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.push(message);
                    Ok::<(), HandlerError>(())
                }
            };
            messaging::run(&config, subscription, handler, stop).await.unwrap();
        });
        DeadLetterReader { letters, shutdown, task }
    }
}

pub struct DeadLetterReader {
    pub letters: Arc<Collected<IncomingMessage>>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DeadLetterReader {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}

/// How long one scrape of a test's service may take. Without a bound, a connection that stalls on a loaded machine
/// would hang the waiting test for ever instead of being tried again by its deadline loop.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Notification {
    /// The service's `/metrics`, or `None` when it does not answer within [`SCRAPE_TIMEOUT`].
    pub async fn metrics(&self) -> Option<String> {
        let client = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build().ok()?;
        let response = client.get(format!("{}/metrics", self.url)).send().await.ok()?;
        response.text().await.ok()
    }

    /// The sum of `metric`'s samples whose labels include every pair in `labels`.
    pub async fn metric(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics().await.and_then(|text| metric_sum(&text, metric, labels)).unwrap_or(0.0)
    }

    /// Waits until `metric` (summed over matching series) reaches `at_least`.
    pub async fn wait_for_metric(&self, metric: &str, labels: &[(&str, &str)], at_least: f64) {
        let reached = testkit::wait::until(DEADLINE, || async { self.metric(metric, labels).await >= at_least }).await;
        assert!(reached.is_ok(), "{metric}{labels:?} never reached {at_least}; output:\n{}", self.output());
    }

    pub fn output(&self) -> String {
        [self.process.stdout_lines(), self.process.stderr_lines()].concat().join("\n")
    }
}

async fn wait_until_ok(process: &ChildGuard, base_url: &str, path: &str) {
    let client = reqwest::Client::new();
    let url = format!("{base_url}{path}");
    let ok = testkit::wait::until(DEADLINE, || {
        let request = client.get(&url).send();
        async move { matches!(request.await, Ok(response) if response.status() == 200) }
    })
    .await;
    assert!(
        ok.is_ok(),
        "{} never answered {path}:\n{}",
        process.name(),
        [process.stdout_lines(), process.stderr_lines()].concat().join("\n")
    );
}

/// A reminder for `owner`'s task titled `title`, due in an hour in Berlin.
pub fn reminder(owner: &str, title: &str) -> CloudEvent<ReminderDue> {
    let task_id = Uuid::now_v7();
    let now = Utc::now();
    ReminderDue {
        job_id: Uuid::now_v7(),
        task_id,
        series_id: task_id,
        owner_id: owner.into(),
        title: title.into(),
        due_at: Some(now + chrono::Duration::hours(1)),
        time_zone: "Europe/Berlin".into(),
        remind_at: now,
        fired_at: now,
    }
    .into_cloud_event()
}

/// Delivery rows of `event_id` as (channel, status, attempts).
pub async fn deliveries(db: &TestDatabase, event_id: Uuid) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT channel, status, attempts FROM notification.deliveries WHERE event_id = $1 ORDER BY channel")
        .bind(event_id)
        .fetch_all(&db.pool())
        .await
        .unwrap()
}
