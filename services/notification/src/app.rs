//! Wires the pieces: settings client, senders, intake, worker, probes, metrics and the router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use messaging::Producer;
use observability::metrics::PrometheusHandle;
use observability::{ClientError, Health, ServiceClient};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::channel::email::{EmailSender, EmailSetupError};
use crate::channel::webhook::{WebhookSender, WebhookSetupError};
use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::intake::ReminderIntake;
use crate::settings::SettingsClient;
use crate::worker::{DeliveryWorker, Senders};

/// A part could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the backend client: {0}")]
    Backend(#[from] ClientError),
    #[error(transparent)]
    Email(#[from] EmailSetupError),
    #[error(transparent)]
    Webhook(#[from] WebhookSetupError),
    #[error("cannot create the Kafka producer for dead letters: {0}")]
    Kafka(#[from] messaging::ClientError),
}

/// What `main` serves and runs.
#[derive(Debug, Clone)]
pub struct App {
    intake: ReminderIntake,
    worker: DeliveryWorker,
    health: Health,
    router: Router,
}

impl App {
    pub fn build(config: &Config, pool: PgPool, metrics: PrometheusHandle) -> Result<Self, BuildError> {
        crate::metrics::describe();
        database::metrics::describe();
        let client = ServiceClient::new(config.backend.client.clone())?;
        let settings = SettingsClient::new(client.clone(), config.backend.service_token.clone());
        let senders = Senders { email: EmailSender::new(&config.smtp)?, webhook: WebhookSender::new(&config.webhook)? };
        // The consumer wakes the local worker as soon as it recorded deliveries; other replicas find them on
        // their next poll.
        let wake = Arc::new(Notify::new());
        let intake = ReminderIntake::new(pool.clone(), settings, Arc::clone(&wake));
        let producer = Producer::new(&config.kafka)?;
        let broker_check = producer.readiness_check(config.database.readiness_timeout);
        let dead_letters = DeadLetters::new(producer);
        let worker = DeliveryWorker::new(pool.clone(), senders, dead_letters, config.delivery.clone(), wake);
        // Postgres and the broker are checks: without them nothing can be recorded, delivered or dead-lettered, and
        // no reminder arrives. The backend breaker is a detail:
        // an open circuit must not take this service out of rotation (it keeps its events and retries).
        let health = Health::new()
            .with_cache_ttl(Duration::from_secs(1))
            .with_check("postgres", config.database.readiness_timeout, database::readiness_check(&pool))
            .with_check("kafka", config.database.readiness_timeout, broker_check)
            .with_detail("backend", move || client.health_detail());
        let faults = observability::faults::install(&config.faults);
        let router =
            Router::new().merge(faults.router()).merge(health.router()).merge(observability::metrics::router(metrics));
        let router = observability::instrument(router, &config.http);
        Ok(Self { intake, worker, health, router })
    }

    pub fn intake(&self) -> &ReminderIntake {
        &self.intake
    }

    pub fn worker(&self) -> &DeliveryWorker {
        &self.worker
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }
}
