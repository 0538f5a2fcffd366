//! Assembles the service for the runtime: the pool, the task-event consumer, the internal API, retention, and
//! the Postgres and broker checks.

use messaging::{Producer, Subscription};
use observability::ServiceToken;
use observability::metrics::PrometheusHandle;
use runtime::Service;

use crate::config::Config;
use crate::handler::TaskEventHandler;
use crate::store::{SCHEMA, migrator};

/// The topic this service reads.
pub const SOURCE_TOPIC: &str = "task-events";
/// Where events this service can never read go, with the reason.
pub const DEAD_LETTER_TOPIC: &str = "task-events.audit-log.dlq";

/// Why the service could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The broker check's client could not be created.
    #[error("cannot create the Kafka client of the broker readiness check")]
    Producer(#[from] messaging::ClientError),
    /// The dead-letter topic is among the consumed ones.
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}

/// The service. Start-up steps: migrations (waiting up to `DATABASE_STARTUP_TIMEOUT` for Postgres), the topics
/// (waiting up to `STARTUP_TIMEOUT` for the broker). Routes: the internal history API. Workers: the consumer,
/// which finishes the message it has in flight at shutdown, retention, and the pool sampler.
pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Service, BuildError> {
    crate::metrics::describe();
    let pool = database::connect(&config.database, crate::SERVICE.name);
    let broker = Producer::new(&config.kafka)?.readiness_check(config.base.readiness_timeout);
    let subscription = Subscription::new([SOURCE_TOPIC], DEAD_LETTER_TOPIC).ok_or(BuildError::Subscription)?;
    let database = config.database.clone();
    let service_token = config.internal_service_token.as_ref().map(ServiceToken::new);
    let (retention_pool, retention) = (pool.clone(), config.retention);
    Ok(Service::new(crate::SERVICE, &config.base, metrics)
        .database(&pool, crate::SERVICE.name)
        .check("kafka", broker)
        .start_step("migrations", async move { database::migrate(&database, SCHEMA, migrator()).await })
        .routes(crate::api::router(pool.clone(), service_token))
        .worker("retention", move |shutdown| crate::retention::run(retention_pool, retention, shutdown))
        .consume(&config.kafka, subscription, &[], config.startup_timeout, TaskEventHandler::new(pool)))
}
