//! Wires probes, metrics and the router around the handler.

use std::time::Duration;

use axum::Router;
use observability::metrics::PrometheusHandle;
use observability::{ClientError, Health, ServiceClient};

use crate::backend::BackendClient;
use crate::config::Config;
use crate::handler::CompletionHandler;

/// What `main` serves and runs.
#[derive(Debug, Clone)]
pub struct App {
    handler: CompletionHandler,
    health: Health,
    router: Router,
}

impl App {
    pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Self, ClientError> {
        crate::metrics::describe();
        let client = ServiceClient::new(config.backend.client.clone())?;
        let backend = BackendClient::new(client.clone(), config.backend.service_token.clone());
        // The breaker state is a detail, not a check: an open circuit to the backend must not take this
        // service out of rotation (it keeps its events and retries), it only shows why nothing is created.
        let health =
            Health::new().with_cache_ttl(Duration::from_secs(1)).with_detail("backend", move || client.health_detail());
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
