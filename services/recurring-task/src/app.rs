//! Assembles the service for the runtime: the backend client, the completion consumer and the broker check.

use events::topics::TASK_EVENTS;
use messaging::{Producer, Subscription};
use observability::metrics::PrometheusHandle;
use observability::{ClientError, ServiceClient};
use runtime::Service;

use crate::backend::BackendClient;
use crate::config::Config;
use crate::handler::CompletionHandler;

/// Where events this service can never handle go, with the reason.
pub const DEAD_LETTER_TOPIC: &str = "task-events.recurring-task.dlq";

/// Why the service could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The backend client's settings were refused.
    #[error("cannot build the backend client")]
    Backend(#[from] ClientError),
    /// The broker check's client could not be created.
    #[error("cannot create the Kafka client of the broker readiness check")]
    Kafka(#[from] messaging::ClientError),
    /// The dead-letter topic is among the consumed ones.
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}

/// The recurring-task service. Start-up step: the topics (waiting up to `STARTUP_TIMEOUT` for the broker).
/// Worker: the consumer of `task-events`, which asks the backend for each next occurrence.
pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Service, BuildError> {
    crate::metrics::describe();
    let client = ServiceClient::new(config.backend.client.clone())?;
    let backend = BackendClient::new(client.clone(), config.backend.service_token.clone());
    // The broker is a check: without it no completion arrives. The breaker state is a detail, not a check: an
    // open circuit to the backend must not take this service out of rotation (it keeps its events and
    // retries), it only shows why nothing is created.
    let broker = Producer::new(&config.kafka)?;
    let subscription = Subscription::new([TASK_EVENTS], DEAD_LETTER_TOPIC).ok_or(BuildError::Subscription)?;
    Ok(Service::new(crate::SERVICE, &config.base, metrics)
        .check("kafka", broker.readiness_check(config.base.readiness_timeout))
        .detail("backend", move || client.health_detail())
        .consume(&config.kafka, subscription, &[], config.startup_timeout, CompletionHandler::new(backend)))
}
