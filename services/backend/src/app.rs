//! Assembles the backend for the runtime: the API router over its services, the Postgres check, migrations, and
//! the background chores that keep it healthy.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use observability::Shutdown;
use observability::metrics::PrometheusHandle;
use runtime::Service;
use tokio_util::sync::CancellationToken;

use crate::api::rate_limit::Limiter;
use crate::api::stream::TaskStream;
use crate::api::{self, ApiState};
use crate::audit_log::AuditLogClient;
use crate::auth::TokenVerifier;
use crate::config::Config;
use crate::service::{SettingsService, TaskService};
use crate::stream::Hub;
use crate::{metrics, store};
use observability::ServiceToken;

const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Why the service could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The outbox relay's producer could not be created.
    #[error("cannot create the outbox relay's Kafka producer")]
    Producer(#[from] messaging::ClientError),
    /// The HTTP client for audit-log's internal API could not be created.
    #[error("cannot create the audit-log client")]
    AuditLog(#[from] observability::ClientError),
}

/// The backend for the runtime: the `/v1` API, `/internal/v1`, `/openapi.json` and `/docs` beside the probes.
/// Readiness checks Postgres. Start-up step: migrations (waiting up to `DATABASE_STARTUP_TIMEOUT` for Postgres;
/// safe with many replicas starting at once). Workers: the outbox relay and the task stream's feed (unless
/// switched off), the pool sampler, the rate limiters' cleanup and the purge of expired idempotency keys.
pub fn build(config: &Config, metrics_handle: PrometheusHandle) -> Result<Service, BuildError> {
    metrics::describe();
    let pool = database::connect(&config.database, crate::SERVICE.name);
    let (user_limiter, client_limiter) = if config.rate_limit.enabled {
        (
            Some(Arc::new(Limiter::new(config.rate_limit.per_user))),
            Some(Arc::new(Limiter::new(config.rate_limit.per_client))),
        )
    } else {
        (None, None)
    };
    let hub = config.task_stream.as_ref().map(|stream| (Hub::new(stream.limits), stream.clone()));
    let audit_log = match (&config.audit_log, &config.internal_service_token) {
        (Some(client), Some(token)) => Some(AuditLogClient::new(client.clone(), token.clone())?),
        _ => None,
    };
    let state = ApiState {
        tasks: TaskService::new(pool.clone()),
        settings: SettingsService::new(pool.clone(), config.webhook_policy),
        verifier: Arc::new(TokenVerifier::new(&config.auth)),
        service_token: config.internal_service_token.as_ref().map(|token| Arc::new(ServiceToken::new(token))),
        user_limiter: user_limiter.clone(),
        audit_log: audit_log.clone(),
        stream: hub.as_ref().map(|(hub, config)| TaskStream {
            hub: Arc::clone(hub),
            heartbeat: config.heartbeat,
            reconnect: config.reconnect,
        }),
    };
    let database = config.database.clone();
    let service = Service::new(crate::SERVICE, &config.base, metrics_handle)
        .routes(api::router(state, client_limiter.clone()))
        .database(&pool, metrics::POOL_NAME)
        .start_step("migrations", async move {
            database::migrate(&database, store::migrate::SCHEMA, store::migrate::migrator()).await
        })
        .worker("rate limiter cleanup", move |shutdown: Shutdown| {
            every(LIMITER_CLEANUP_INTERVAL, shutdown.token(), move || {
                let (users, clients) = (user_limiter.clone(), client_limiter.clone());
                async move {
                    users.iter().for_each(|limiter| limiter.forget_idle());
                    clients.iter().for_each(|limiter| limiter.forget_idle());
                }
            })
        });
    let (purged, ttl) = (pool.clone(), config.idempotency_ttl);
    let service = service.worker("idempotency purge", move |shutdown: Shutdown| {
        every(IDEMPOTENCY_PURGE_INTERVAL, shutdown.token(), move || {
            let pool = purged.clone();
            async move {
                let cutoff = Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
                match store::idempotency::purge_created_before(&pool, cutoff).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
                    Err(error) => tracing::warn!(%error, "purging idempotency keys failed; will retry"),
                }
            }
        })
    });
    let service = match hub {
        Some((hub, stream)) => service.worker("task stream feed", move |shutdown: Shutdown| {
            crate::stream::feed::run(stream.kafka, hub, stream.limits.resume_window, shutdown)
        }),
        None => {
            tracing::warn!("task stream disabled (TASK_STREAM_ENABLED=false or KAFKA_BROKERS unset)");
            service
        }
    };
    Ok(match &config.outbox_relay {
        Some(relay) => {
            let relay = crate::relay::new(pool, relay.clone())?;
            service.worker("outbox relay", |shutdown: Shutdown| relay.run(shutdown.token()))
        }
        None => {
            tracing::warn!("outbox relay disabled (OUTBOX_RELAY_ENABLED=false or KAFKA_BROKERS unset)");
            service
        }
    })
}

/// Runs `chore` every `interval` until `stop` fires.
async fn every<F, Fut>(interval: Duration, stop: CancellationToken, chore: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => chore().await,
        }
    }
}
