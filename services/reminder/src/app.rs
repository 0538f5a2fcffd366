//! Wires the pieces: the pool, the outbox and its relay, the handler, the scheduler, probes and metrics; prepares
//! the database and topics at start-up and runs the workers until shutdown.

use axum::Router;
use events::reminder::REMINDER_DUE_V1;
use events::topics::REMINDERS;
use messaging::{ConsumeError, TopicSpec};
use observability::metrics::PrometheusHandle;
use observability::{Health, Shutdown};
use outbox::{Outbox, Relay};
use sqlx::PgPool;

use crate::config::Config;
use crate::consumer;
use crate::handler::{SchedulerWake, TaskEventHandler};
use crate::scheduler::Scheduler;
use crate::store::migrations::{SCHEMA, migrator};

/// Why the service could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the outbox relay's Kafka producer")]
    Producer(#[from] messaging::ClientError),
    #[error(transparent)]
    Migrate(#[from] database::MigrationError),
    #[error("cannot install the outbox table")]
    Outbox(#[from] outbox::OutboxError),
    /// Boxed: the consumer's error is large and rare, and every other result of this type would carry its size.
    #[error(transparent)]
    Consume(Box<ConsumeError>),
}

impl From<ConsumeError> for StartError {
    fn from(error: ConsumeError) -> Self {
        Self::Consume(Box::new(error))
    }
}

/// What `main` serves and runs.
#[derive(Debug)]
pub struct App {
    pool: PgPool,
    outbox: Outbox,
    handler: TaskEventHandler,
    scheduler: Scheduler,
    relay: Relay,
    health: Health,
    router: Router,
}

impl App {
    /// Builds everything without I/O: the pool connects lazily and the producer in the background, so this
    /// succeeds while Postgres or the broker are still starting.
    pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Self, StartError> {
        crate::metrics::describe();
        database::metrics::describe();
        outbox::metrics::describe(&[REMINDER_DUE_V1]);
        let pool = database::connect(&config.database, crate::SERVICE.name);
        let outbox = Outbox::new(SCHEMA);
        let relay = Relay::new(pool.clone(), outbox.clone(), config.relay.clone())?
            .ensuring_topics([TopicSpec::new(REMINDERS)]);
        let wake = SchedulerWake::new();
        let handler = TaskEventHandler::new(pool.clone(), wake.clone());
        let scheduler = Scheduler::new(pool.clone(), outbox.clone(), config.scheduler, wake);
        let health = Health::new()
            .with_check("postgres", config.database.readiness_timeout, database::readiness_check(&pool))
            .with_check(
                "kafka",
                config.database.readiness_timeout,
                relay.producer().readiness_check(config.database.readiness_timeout),
            );
        let faults = observability::faults::install(&config.faults);
        let router =
            Router::new().merge(faults.router()).merge(health.router()).merge(observability::metrics::router(metrics));
        let router = observability::instrument(router, &config.http);
        Ok(Self { pool, outbox, handler, scheduler, relay, health, router })
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Start-up work that needs the dependencies: migrations (waiting up to `DATABASE_STARTUP_TIMEOUT` for
    /// Postgres), the outbox table, and the topics (waiting up to `STARTUP_TIMEOUT` for the broker).
    pub async fn prepare(&self, config: &Config) -> Result<(), StartError> {
        database::migrate(&config.database, SCHEMA, migrator()).await?;
        self.outbox.install(&self.pool).await?;
        consumer::ensure_topics(&config.kafka, config.startup_timeout).await?;
        Ok(())
    }

    /// Runs the consumer, the scheduler, the relay, the pool sampler and the retention chore until `shutdown` fires (or the consumer
    /// cannot run, which stops the rest too). Each worker finishes what it has in flight: the scheduler its claim
    /// transaction, the relay its batch, the consumer its message.
    pub async fn run(self, config: &Config, shutdown: Shutdown) -> Result<(), StartError> {
        let stop = shutdown.token();
        let scheduler = tokio::spawn(self.scheduler.run(stop.clone()));
        let relay = tokio::spawn(self.relay.run(stop.clone()));
        let sampler = tokio::spawn(database::metrics::sample_pool(
            self.pool.clone(),
            crate::SERVICE.name,
            database::metrics::POOL_SAMPLE_INTERVAL,
            stop.clone(),
        ));
        let housekeeping = tokio::spawn(crate::housekeeping::run(self.pool.clone(), config.retention, stop.clone()));
        let consumed = consumer::run(&config.kafka, self.handler, shutdown.clone()).await;
        shutdown.trigger();
        let workers = [
            ("scheduler", scheduler),
            ("outbox relay", relay),
            ("pool sampler", sampler),
            ("housekeeping", housekeeping),
        ];
        for (name, worker) in workers {
            if let Err(error) = worker.await {
                tracing::error!(%error, worker = name, "worker ended abnormally");
            }
        }
        self.pool.close().await;
        Ok(consumed?)
    }
}
