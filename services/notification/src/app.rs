//! Assembles the service for the runtime: settings client, senders, the reminder consumer and the delivery worker,
//! with the Postgres and broker checks.

use std::sync::Arc;

use events::topics::{NOTIFICATIONS_DLQ, REMINDERS};
use messaging::{Producer, Subscription};
use observability::metrics::PrometheusHandle;
use observability::{ClientError, ServiceClient, Shutdown};
use runtime::Service;
use tokio::sync::Notify;

use crate::channel::email::{EmailSender, EmailSetupError};
use crate::channel::guard::TargetPolicy;
use crate::channel::webhook::{WebhookSender, WebhookSetupError};
use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::intake::ReminderIntake;
use crate::settings::SettingsClient;
use crate::store::SCHEMA;
use crate::worker::{DeliveryWorker, Senders};

/// A part could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The backend client's settings were refused.
    #[error("cannot build the backend client")]
    Backend(#[from] ClientError),
    /// The SMTP sender could not be set up.
    #[error(transparent)]
    Email(#[from] EmailSetupError),
    /// The webhook sender could not be set up.
    #[error(transparent)]
    Webhook(#[from] WebhookSetupError),
    /// The dead-letter producer could not be created.
    #[error("cannot create the Kafka producer for dead letters")]
    Kafka(#[from] messaging::ClientError),
    /// The dead-letter topic is among the consumed ones.
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}

/// The notification service. Start-up steps: migrations (waiting up to `DATABASE_STARTUP_TIMEOUT` for Postgres),
/// the topics (waiting up to `STARTUP_TIMEOUT` for the broker). Workers: the consumer of `reminders`, which records
/// deliveries, the delivery worker, which sends them, and the pool sampler. Postgres and the broker are checks:
/// without them nothing can be recorded, delivered or dead-lettered. The backend breaker is a detail: an open
/// circuit must not take this service out of rotation (it keeps its events and retries).
pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Service, BuildError> {
    if config.webhook.targets == TargetPolicy::AllowPrivate {
        tracing::warn!(
            "WEBHOOK_ALLOW_PRIVATE_TARGETS=true: webhooks may reach loopback and private networks (development only)"
        );
    }
    crate::metrics::describe();
    let pool = database::connect(&config.database, crate::SERVICE.name);
    let client = ServiceClient::new(config.backend.client.clone())?;
    let settings = SettingsClient::new(client.clone(), config.backend.service_token.clone());
    let senders = Senders { email: EmailSender::new(&config.smtp)?, webhook: WebhookSender::new(&config.webhook)? };
    // The consumer wakes the local worker as soon as it recorded deliveries; other replicas find them on
    // their next poll.
    let wake = Arc::new(Notify::new());
    let intake = ReminderIntake::new(pool.clone(), settings, Arc::clone(&wake));
    let producer = Producer::new(&config.kafka)?;
    let broker = producer.readiness_check(config.base.readiness_timeout);
    let worker = DeliveryWorker::new(pool.clone(), senders, DeadLetters::new(producer), config.delivery.clone(), wake);
    let subscription = Subscription::new([REMINDERS], NOTIFICATIONS_DLQ).ok_or(BuildError::Subscription)?;
    let database = config.database.clone();
    Ok(Service::new(crate::SERVICE, &config.base, metrics)
        .database(&pool, crate::SERVICE.name)
        .check("kafka", broker)
        .detail("backend", move || client.health_detail())
        .start_step("migrations", async move { database::migrate(&database, SCHEMA, crate::migrator()).await })
        .consume(&config.kafka, subscription, &[], config.startup_timeout, intake)
        .worker("delivery worker", |shutdown: Shutdown| worker.run(shutdown)))
}
