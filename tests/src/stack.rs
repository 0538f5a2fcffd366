//! The whole Taskwatch system for one test: every dependency started fresh, the four services as real
//! processes wired to them, and the controls a fault test needs.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use testkit::kafka::Broker;
use testkit::otlp::OtlpReceiver;
use testkit::postgres::{PostgresServer, TestDatabase};
use testkit::process::ChildGuard;
use testkit::smtp::{ReceivedMail, SmtpSink};
use testkit::webhook::{ReceivedRequest, WebhookReceiver};

use crate::commands::{
    DeliveryTargets, INTERNAL_SERVICE_TOKEN, backend_with_kafka_command, notification_command, recurring_task_command,
    reminder_command, template_service_command,
};
use crate::kafka::{RawMessage, TopicTap, republish};
use crate::{Api, DEADLINE, HarnessError, free_port, settle, wait_until_ok};

/// How long a service may take to drain and exit on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Partitions of the pipeline's topics, created before the services start so no two race to create them.
const PARTITIONS: u16 = 3;
const TOPICS: [&str; 3] = ["task-events", "reminders", "notifications.dlq"];

/// Short intervals and backoffs so faults heal within seconds on a test machine; variables a service
/// does not read are ignored by it. Each is the documented knob of a service or a shared crate.
const TEST_TUNING: &[(&str, &str)] = &[
    // Traces leave the batch processor quickly, so a test waits on spans, not on a 5 s flush.
    ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    // Small pools: four services share one Postgres server with other tests.
    ("DATABASE_MAX_CONNECTIONS", "4"),
    ("DATABASE_STARTUP_TIMEOUT", "60s"),
    ("READINESS_CHECK_TIMEOUT", "1s"),
    // shared/messaging: prompt commits and lag samples, quick handler retries, fast rebalances after a kill.
    ("KAFKA_COMMIT_INTERVAL", "200ms"),
    ("KAFKA_LAG_INTERVAL", "200ms"),
    ("KAFKA_SESSION_TIMEOUT", "6s"),
    ("KAFKA_DELIVERY_TIMEOUT", "5s"),
    ("KAFKA_RETRY_BACKOFF_INITIAL", "50ms"),
    ("KAFKA_RETRY_BACKOFF_MAX", "1s"),
    // Outbox relays (backend, reminder, notification): wake often, retry soon after a broker outage.
    ("OUTBOX_RELAY_POLL_INTERVAL", "200ms"),
    ("OUTBOX_RELAY_MAX_BACKOFF", "1s"),
    ("OUTBOX_RELAY_LEASE", "15s"),
];

/// Per-service tuning on top of [`TEST_TUNING`].
fn service_tuning(service: Service) -> &'static [(&'static str, &'static str)] {
    match service {
        Service::Backend => &[
            ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
            ("AUDIT_LOG_TIMEOUT", "1s"),
            ("AUDIT_LOG_MAX_RETRIES", "0"),
            ("AUDIT_LOG_BREAKER_OPEN_FOR", "1s"),
        ],
        Service::Reminder => &[("REMINDER_POLL_INTERVAL", "200ms")],
        Service::RecurringTask => &[
            ("BACKEND_TIMEOUT", "1s"),
            ("BACKEND_MAX_RETRIES", "0"),
            ("BACKEND_BREAKER_FAILURE_THRESHOLD", "2"),
            ("BACKEND_BREAKER_OPEN_FOR", "1s"),
        ],
        Service::Notification => &[
            ("NOTIFY_MAX_ATTEMPTS", "3"),
            ("NOTIFY_BACKOFF_INITIAL", "200ms"),
            ("NOTIFY_BACKOFF_MAX", "1s"),
            ("NOTIFY_POLL_INTERVAL", "200ms"),
            // At least twice the longer send timeout, as the service requires.
            ("NOTIFY_LEASE", "10s"),
            ("NOTIFY_BREAKER_OPEN_FOR", "1s"),
            ("SMTP_TIMEOUT", "2s"),
            ("WEBHOOK_TIMEOUT", "2s"),
            ("BACKEND_TIMEOUT", "1s"),
            ("BACKEND_BREAKER_OPEN_FOR", "1s"),
        ],
        #[allow(unreachable_patterns, reason = "reached once `cargo xtask new-service` adds a service")]
        _ => &[],
    }
}

pub use testkit::services::Service;

/// Where the system's data lives: a database on the test run's shared server, or a server of its own
/// that the test may stop and start.
#[derive(Debug)]
enum Postgres {
    Shared(TestDatabase),
    // Field order: the database is dropped while its server still runs.
    Dedicated { database: TestDatabase, server: PostgresServer },
}

impl Postgres {
    fn url(&self) -> &str {
        match self {
            Postgres::Shared(database) | Postgres::Dedicated { database, .. } => database.url(),
        }
    }
}

/// One replica of a service: its fixed port (kept across restarts, so the others' URLs stay valid) and
/// its process while it runs.
#[derive(Debug)]
struct Replica {
    service: Service,
    port: u16,
    process: Option<ChildGuard>,
}

impl Replica {
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What to start: replica counts, a dedicated Postgres server, extra environment.
#[derive(Debug)]
pub struct StackBuilder {
    services: Vec<Service>,
    dedicated_postgres: bool,
    test_tuning: bool,
    replicas: Vec<(Service, usize)>,
    env: Vec<(Service, String, String)>,
}

impl Default for StackBuilder {
    fn default() -> Self {
        Self {
            services: Service::ALL.to_vec(),
            dedicated_postgres: false,
            test_tuning: true,
            replicas: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl StackBuilder {
    /// Runs only `services` (all four unless told), for a test about part of the pipeline.
    pub fn services(mut self, services: &[Service]) -> Self {
        self.services = services.to_vec();
        self
    }

    /// Runs the database on a Postgres server of its own, for [`Stack::stop_postgres`].
    pub fn dedicated_postgres(mut self) -> Self {
        self.dedicated_postgres = true;
        self
    }

    /// Runs the services with their documented defaults instead of the test tuning (short polls and backoffs,
    /// small pools): what a deployment gets, for measuring rather than for healing fast.
    pub fn untuned(mut self) -> Self {
        self.test_tuning = false;
        self
    }

    /// Runs `count` replicas of `service` (1 unless told).
    pub fn replicas(mut self, service: Service, count: usize) -> Self {
        self.replicas.push((service, count));
        self
    }

    /// Sets `key=value` in `service`'s environment, over the harness's defaults.
    pub fn env(mut self, service: Service, key: &str, value: &str) -> Self {
        self.env.push((service, key.to_owned(), value.to_owned()));
        self
    }

    /// Starts every dependency, creates the topics, then the services, and waits until each is ready.
    pub async fn start(self) -> Result<Stack, HarnessError> {
        let otlp = OtlpReceiver::start().await?;
        let smtp = SmtpSink::start().await?;
        let webhook = WebhookReceiver::start().await?;
        let broker = Broker::start().await?;
        for topic in TOPICS {
            broker.create_topic(topic, PARTITIONS).await?;
        }
        let postgres = if self.dedicated_postgres {
            let server = PostgresServer::start().await?;
            let database = TestDatabase::create_on(server.url()).await?;
            Postgres::Dedicated { database, server }
        } else {
            Postgres::Shared(TestDatabase::new().await?)
        };
        let mut replicas = Vec::new();
        for service in Service::ALL.iter().copied().filter(|service| self.services.contains(service)) {
            let count = self.replicas.iter().rev().find(|(s, _)| *s == service).map_or(1, |(_, count)| *count);
            for _ in 0..count {
                replicas.push(Replica { service, port: free_port()?, process: None });
            }
        }
        let mut stack =
            Stack { replicas, otlp, smtp, webhook, broker, postgres, test_tuning: self.test_tuning, env: self.env };
        for service in &self.services {
            stack.spawn(*service)?;
        }
        for service in &self.services {
            stack.wait_until_ready(*service).await?;
        }
        Ok(stack)
    }
}

/// The running system. Dropping it kills every service, then stops the dependencies.
#[derive(Debug)]
pub struct Stack {
    // Declared first so the services die before what they are connected to.
    replicas: Vec<Replica>,
    /// Where every service exports its spans, for tests that follow a trace through the pipeline.
    pub otlp: OtlpReceiver,
    /// The mail server notification sends reminders to; a test may stop and restart it.
    pub smtp: SmtpSink,
    /// The receiver for users' webhooks: it records each call and answers with the status the test sets.
    pub webhook: WebhookReceiver,
    /// The Kafka-protocol broker (tansu) the services share, with the pipeline's topics already created; a test
    /// may stop it and start it again with its data.
    pub broker: Broker,
    postgres: Postgres,
    test_tuning: bool,
    env: Vec<(Service, String, String)>,
}

impl Stack {
    /// The default stack: one replica of each service on a database of the shared test server.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::builder().start().await
    }

    /// A stack to configure (replicas, services, a dedicated Postgres, environment) before starting it.
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// `http://127.0.0.1:PORT` of `service`'s first replica (stable across restarts).
    pub fn url(&self, service: Service) -> String {
        self.replicas_of(service).next().map(Replica::base_url).unwrap_or_default()
    }

    /// Each of `services` as a Prometheus scrape job: its job name and every replica's `host:port`, for
    /// [`crate::monitoring::PrometheusConfig::only_jobs`].
    pub fn scrape_jobs(&self, services: &[Service]) -> Vec<(&'static str, Vec<String>)> {
        services
            .iter()
            .map(|service| {
                let targets = self
                    .replicas_of(*service)
                    .map(|replica| replica.base_url().trim_start_matches("http://").to_owned())
                    .collect();
                (service.name(), targets)
            })
            .collect()
    }

    /// The database every service uses (each in its own schema).
    pub fn database_url(&self) -> &str {
        self.postgres.url()
    }

    /// `user`'s client for the backend API.
    pub fn api(&self, user: &str) -> Result<Api, HarnessError> {
        Api::for_user(&self.url(Service::Backend), user)
    }

    /// Starts every stopped replica of `service` on its port and waits until each is ready.
    pub async fn start_service(&mut self, service: Service) -> Result<(), HarnessError> {
        self.spawn(service)?;
        self.wait_until_ready(service).await
    }

    /// The process ids of `service`'s running replicas.
    pub fn pids(&self, service: Service) -> Vec<u32> {
        self.replicas_of(service).filter_map(|replica| replica.process.as_ref()).map(ChildGuard::id).collect()
    }

    /// SIGTERM to every replica of `service`: a graceful shutdown (drain, commit, flush), then reaped.
    pub async fn stop_service(&mut self, service: Service) -> Result<(), HarnessError> {
        for replica in self.replicas.iter_mut().filter(|replica| replica.service == service) {
            if let Some(mut process) = replica.process.take() {
                process.terminate(STOP_GRACE).await?;
            }
        }
        Ok(())
    }

    /// SIGKILL to every replica of `service`: a crash with no goodbye.
    pub fn kill_service(&mut self, service: Service) -> Result<(), HarnessError> {
        for replica in self.replicas.iter_mut().filter(|replica| replica.service == service) {
            if let Some(mut process) = replica.process.take() {
                process.kill()?;
            }
        }
        Ok(())
    }

    /// `http://127.0.0.1:PORT` of replica `index` (0-based, in start order) of `service`; `None` beyond its count.
    pub fn replica_url(&self, service: Service, index: usize) -> Option<String> {
        self.replicas_of(service).nth(index).map(Replica::base_url)
    }

    /// SIGTERM to replica `index` (0-based, in start order) of `service` only, and its exit status once it exited;
    /// the others keep running.
    pub async fn stop_replica(&mut self, service: Service, index: usize) -> Result<ExitStatus, HarnessError> {
        let replica = self.replica_mut(service, index)?;
        let mut process = replica.process.take().ok_or(HarnessError::NotStarted(service))?;
        Ok(process.terminate(STOP_GRACE).await?)
    }

    /// SIGKILL to replica `index` (0-based, in start order) of `service` only; the others keep running.
    pub fn kill_replica(&mut self, service: Service, index: usize) -> Result<(), HarnessError> {
        let replica = self.replica_mut(service, index)?;
        if let Some(mut process) = replica.process.take() {
            process.kill()?;
        }
        Ok(())
    }

    /// Waits until the running replicas of consumer `service` together own every partition of `topic`
    /// (`taskwatch_consumer_assigned_partitions` summed against `taskwatch_consumer_topic_partitions`), the
    /// state a group that recovered from a crash is in. False at the deadline.
    pub async fn wait_until_partitions_owned(&self, service: Service, topic: &str, timeout: Duration) -> bool {
        testkit::wait::until_some(timeout, || async {
            let expositions = self.metrics_of_replicas(service).await;
            let owned: f64 = expositions
                .iter()
                .filter_map(|exposition| {
                    crate::metric_sum(exposition, "taskwatch_consumer_assigned_partitions", &[("topic", topic)])
                })
                .sum();
            let partitions = expositions
                .iter()
                .filter_map(|exposition| {
                    crate::metric_sum(exposition, "taskwatch_consumer_topic_partitions", &[("topic", topic)])
                })
                .fold(0.0, f64::max);
            (partitions > 0.0 && owned >= partitions).then_some(())
        })
        .await
        .is_ok()
    }

    /// `service`'s first replica's `/metrics`; `None` while it does not answer.
    pub async fn metrics(&self, service: Service) -> Option<String> {
        scrape(&self.url(service)).await
    }

    /// The `/metrics` of every running replica of `service`.
    pub async fn metrics_of_replicas(&self, service: Service) -> Vec<String> {
        let mut expositions = Vec::new();
        for replica in self.replicas_of(service).filter(|replica| replica.process.is_some()) {
            if let Some(exposition) = scrape(&replica.base_url()).await {
                expositions.push(exposition);
            }
        }
        expositions
    }

    /// Waits until `service`'s `/metrics` satisfies `condition` and returns that exposition; `None` at the
    /// deadline.
    pub async fn wait_for_metrics(
        &self,
        service: Service,
        timeout: Duration,
        condition: impl Fn(&str) -> bool,
    ) -> Option<String> {
        testkit::wait::until_some(timeout, || async {
            self.metrics(service).await.filter(|exposition| condition(exposition))
        })
        .await
        .ok()
    }

    /// Waits until nothing is in flight: every outbox drained, notification at the end of `reminders`
    /// with no delivery pending. After this, a mail or webhook call that has not arrived will not arrive,
    /// so counting them proves "exactly once".
    pub async fn wait_until_settled(&self) -> Result<(), HarnessError> {
        let settled = testkit::wait::until(DEADLINE, || async {
            let Some(notification) = self.metrics(Service::Notification).await else { return false };
            if !settle::notification_idle(&notification) {
                return false;
            }
            for service in [Service::Backend, Service::Reminder, Service::Notification] {
                let expositions = self.metrics_of_replicas(service).await;
                if expositions.is_empty() || !expositions.iter().all(|exposition| settle::outbox_drained(exposition)) {
                    return false;
                }
            }
            true
        })
        .await;
        if settled.is_ok() {
            return Ok(());
        }
        let mut metrics = String::new();
        for service in [Service::Backend, Service::Reminder, Service::Notification] {
            let exposition = self.metrics(service).await.unwrap_or_default();
            let relevant: Vec<&str> = exposition
                .lines()
                .filter(|line| {
                    [settle::CONSUMER_LAG, settle::OUTBOX_PENDING, settle::DELIVERIES_PENDING]
                        .iter()
                        .any(|name| line.starts_with(name))
                })
                .collect();
            metrics.push_str(&format!("--- {}\n{}\n", service.name(), relevant.join("\n")));
        }
        Err(HarnessError::NotSettled { metrics })
    }

    /// The HTTP status of `service`'s `/health/ready` (first replica); `None` when it does not answer.
    pub async fn readiness(&self, service: Service) -> Option<u16> {
        let response = reqwest::get(format!("{}/health/ready", self.url(service))).await.ok()?;
        Some(response.status().as_u16())
    }

    /// Waits for a mail matching `predicate` at the SMTP sink.
    pub async fn wait_for_mail(
        &self,
        predicate: impl Fn(&ReceivedMail) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedMail> {
        self.smtp.wait_for(predicate, timeout).await
    }

    /// Waits for a webhook call matching `predicate` at the receiver.
    pub async fn wait_for_webhook(
        &self,
        predicate: impl Fn(&ReceivedRequest) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedRequest> {
        self.webhook.wait_for(predicate, timeout).await
    }

    /// Mails received whose subject contains `text`.
    pub fn mails_mentioning(&self, text: &str) -> Vec<ReceivedMail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|mail| mail.subject.as_deref().is_some_and(|s| s.contains(text)))
            .collect()
    }

    /// Reads `topic` from its beginning in the background.
    pub fn tap(&self, topic: &str) -> Result<TopicTap, HarnessError> {
        TopicTap::start(&self.broker.bootstrap(), topic)
    }

    /// Publishes a byte-exact copy of `message` to its topic: a redelivery.
    pub async fn republish(&self, message: &RawMessage) -> Result<(), HarnessError> {
        republish(&self.broker.bootstrap(), message).await
    }

    /// Stops the dedicated Postgres server (fast shutdown: connections are cut).
    ///
    /// # Panics
    /// When the stack was not built with [`StackBuilder::dedicated_postgres`]: a bug in the test.
    pub async fn stop_postgres(&mut self) -> Result<(), HarnessError> {
        Ok(self.postgres_server().stop().await?)
    }

    /// Starts the dedicated Postgres server again on the same port with the same data.
    pub async fn start_postgres(&mut self) -> Result<(), HarnessError> {
        Ok(self.postgres_server().start_again().await?)
    }

    /// Everything `service`'s replicas printed so far, for failure messages.
    pub fn output(&self, service: Service) -> String {
        self.replicas_of(service)
            .filter_map(|replica| replica.process.as_ref())
            .flat_map(|process| [process.stdout_lines(), process.stderr_lines()].concat())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn postgres_server(&mut self) -> &mut PostgresServer {
        match &mut self.postgres {
            Postgres::Dedicated { server, .. } => server,
            Postgres::Shared(_) => {
                panic!("this stack shares the test Postgres server; build it with dedicated_postgres()")
            }
        }
    }

    /// Replica `index` (0-based, in start order) of `service`.
    fn replica_mut(&mut self, service: Service, index: usize) -> Result<&mut Replica, HarnessError> {
        self.replicas
            .iter_mut()
            .filter(|replica| replica.service == service)
            .nth(index)
            .ok_or(HarnessError::NotStarted(service))
    }

    fn replicas_of(&self, service: Service) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(move |replica| replica.service == service)
    }

    fn spawn(&mut self, service: Service) -> Result<(), HarnessError> {
        let commands: Vec<(usize, Command)> = self
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, replica)| replica.service == service && replica.process.is_none())
            .map(|(index, replica)| self.command(service, replica.port).map(|command| (index, command)))
            .collect::<Result<_, _>>()?;
        for (index, command) in commands {
            self.replicas[index].process = Some(ChildGuard::spawn(service.name(), command)?);
        }
        Ok(())
    }

    async fn wait_until_ready(&self, service: Service) -> Result<(), HarnessError> {
        for replica in self.replicas_of(service) {
            let process = replica.process.as_ref().ok_or(HarnessError::NotStarted(service))?;
            wait_until_ok(process, &replica.base_url(), "/health/ready").await?;
        }
        Ok(())
    }

    /// `service`'s command on `port`: its documented environment, the test tuning, then the test's own.
    fn command(&self, service: Service, port: u16) -> Result<Command, HarnessError> {
        let database = self.postgres.url();
        let kafka = self.broker.bootstrap();
        let backend_url = self.url(Service::Backend);
        let mut command = match service {
            Service::Backend => {
                let mut command = backend_with_kafka_command(database, port, &kafka)?;
                let audit_log = self.url(Service::AuditLog);
                if !audit_log.is_empty() {
                    command.env("AUDIT_LOG_URL", audit_log);
                }
                command
            }
            Service::AuditLog => {
                let mut command = template_service_command(service.name(), database, &kafka, port)?;
                command.env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN);
                command
            }
            Service::Reminder => reminder_command(database, &kafka, port)?,
            Service::RecurringTask => recurring_task_command(&kafka, &backend_url, port)?,
            Service::Notification => {
                let targets = DeliveryTargets { smtp_host: self.smtp.host(), smtp_port: self.smtp.port() };
                notification_command(database, &kafka, &backend_url, &targets, port)?
            }
            // A service generated from the template (`Service::is_template_shaped`) needs no more than this.
            #[allow(unreachable_patterns, reason = "reached once `cargo xtask new-service` adds a service")]
            _ => template_service_command(service.name(), database, &kafka, port)?,
        };
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", self.otlp.endpoint());
        if self.test_tuning {
            command.envs(TEST_TUNING.iter().copied()).envs(service_tuning(service).iter().copied());
        }
        for (_, key, value) in self.env.iter().filter(|(target, _, _)| *target == service) {
            command.env(key, value);
        }
        Ok(command)
    }
}

/// `GET {base_url}/metrics`; `None` unless it answers 200.
pub(crate) async fn scrape(base_url: &str) -> Option<String> {
    let response = reqwest::get(format!("{base_url}/metrics")).await.ok()?;
    if response.status() != 200 {
        return None;
    }
    response.text().await.ok()
}
