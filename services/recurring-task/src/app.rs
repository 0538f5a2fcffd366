//! Wires probes, metrics and the router around the handler.

use std::time::Duration;

use axum::Router;
use messaging::Producer;
use observability::metrics::PrometheusHandle;
use observability::{ClientError, Health, ServiceClient};

use crate::backend::BackendClient;
use crate::config::Config;
use crate::handler::CompletionHandler;

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the backend client")]
    Backend(#[from] ClientError),
    #[error("cannot create the Kafka client of the broker readiness check")]
    Kafka(#[from] messaging::ClientError),
}

/// What `main` serves and runs.
#[derive(Debug, Clone)]
pub struct App {
    handler: CompletionHandler,
    health: Health,
    router: Router,
}

impl App {
    pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Self, BuildError> {
        crate::metrics::describe();
        let client = ServiceClient::new(config.backend.client.clone())?;
        let backend = BackendClient::new(client.clone(), config.backend.service_token.clone());
        // The broker is a check: without it no completion arrives. The breaker state is a detail, not a check: an
        // open circuit to the backend must not take this service out of rotation (it keeps its events and
        // retries), it only shows why nothing is created.
        let broker = Producer::new(&config.kafka)?;
        let health = Health::new()
            .with_cache_ttl(Duration::from_secs(1))
            .with_check("kafka", config.readiness_timeout, broker.readiness_check(config.readiness_timeout))
            .with_detail("backend", move || client.health_detail());
        let faults = observability::faults::install(&config.faults);
        let router =
            Router::new().merge(faults.router()).merge(health.router()).merge(observability::metrics::router(metrics));
        let router = observability::instrument(router, &config.http);
        Ok(Self { handler: CompletionHandler::new(backend), health, router })
    }

    pub fn handler(&self) -> &CompletionHandler {
        &self.handler
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }
}
