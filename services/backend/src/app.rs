//! Wires the layers into one router plus the background chores that keep it healthy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use observability::Health;
use observability::metrics::PrometheusHandle;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::rate_limit::Limiter;
use crate::api::{self, ApiState};
use crate::auth::TokenVerifier;
use crate::config::Config;
use crate::domain::OwnerId;
use crate::service::{SettingsService, TaskService};
use crate::service_token::ServiceToken;
use crate::{metrics, store};

const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// The assembled service: its router, its probes and what its background chores need.
#[derive(Debug, Clone)]
pub struct App {
    router: Router,
    health: Health,
    pool: PgPool,
    user_limiter: Option<Arc<Limiter<OwnerId>>>,
    client_limiter: Option<Arc<Limiter<IpAddr>>>,
    idempotency_ttl: Duration,
}

/// Builds the full router: `/v1` API, `/openapi.json`, `/docs`, `/health/*` and `/metrics`, all wrapped in the
/// shared HTTP layer (request ids, traces, RED metrics, limits). Readiness checks Postgres; the caller marks
/// start-up complete with `app.health().mark_started()`.
pub fn build(config: &Config, pool: PgPool, metrics_handle: PrometheusHandle) -> App {
    metrics::describe();
    let (user_limiter, client_limiter) = if config.rate_limit.enabled {
        (
            Some(Arc::new(Limiter::new(config.rate_limit.per_user))),
            Some(Arc::new(Limiter::new(config.rate_limit.per_client))),
        )
    } else {
        (None, None)
    };
    let state = ApiState {
        tasks: TaskService::new(pool.clone()),
        settings: SettingsService::new(pool.clone(), config.webhook_policy),
        verifier: Arc::new(TokenVerifier::new(&config.auth)),
        service_token: config.internal_service_token.as_ref().map(|token| Arc::new(ServiceToken::new(token))),
        user_limiter: user_limiter.clone(),
    };
    let health =
        Health::new().with_check("postgres", config.database.readiness_timeout, database::readiness_check(&pool));
    let faults = observability::faults::install(&config.faults);
    let router = api::router(state, client_limiter.clone())
        .merge(faults.router())
        .merge(health.router())
        .merge(observability::metrics::router(metrics_handle));
    let router = observability::instrument(router, &config.http);
    App { router, health, pool, user_limiter, client_limiter, idempotency_ttl: config.idempotency_ttl }
}

impl App {
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Starts the periodic chores (pool gauges, rate-limiter cleanup, expired idempotency keys); they stop when
    /// `stop` is cancelled.
    pub fn spawn_background(&self, stop: CancellationToken) -> JoinSet<()> {
        let mut chores = JoinSet::new();
        chores.spawn(database::metrics::sample_pool(
            self.pool.clone(),
            metrics::POOL_NAME,
            database::metrics::POOL_SAMPLE_INTERVAL,
            stop.clone(),
        ));
        let (users, clients) = (self.user_limiter.clone(), self.client_limiter.clone());
        chores.spawn(every(LIMITER_CLEANUP_INTERVAL, stop.clone(), move || {
            let (users, clients) = (users.clone(), clients.clone());
            async move {
                users.iter().for_each(|limiter| limiter.forget_idle());
                clients.iter().for_each(|limiter| limiter.forget_idle());
            }
        }));
        let (pool, ttl) = (self.pool.clone(), self.idempotency_ttl);
        chores.spawn(every(IDEMPOTENCY_PURGE_INTERVAL, stop, move || {
            let pool = pool.clone();
            async move {
                let cutoff = Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
                match store::idempotency::purge_created_before(&pool, cutoff).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
                    Err(error) => tracing::warn!(%error, "purging idempotency keys failed; will retry"),
                }
            }
        }));
        chores
    }
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
