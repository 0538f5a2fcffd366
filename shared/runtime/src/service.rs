//! [`Service`]: what one service gives the runtime (routes, readiness checks, start-up steps, workers), and the
//! one way it is run ([`Bound::run_until_stopped`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use futures::future::Either;
use messaging::{Handler, KafkaConfig, Subscription, TopicSpec};
use observability::faults::FaultConfig;
use observability::health::SAMPLE_INTERVAL;
use observability::metrics::PrometheusHandle;
use observability::{CheckFuture, ErrorChain, Health, HttpConfig, Problem, ServiceInfo, Shutdown};
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::BaseConfig;

/// Any error of a start-up step or a worker, kept whole for the log line that reports it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a service stopped other than by a requested shutdown, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The service could not be assembled from a valid configuration (a TLS setup, a client).
    #[error("cannot build the service")]
    Build(#[source] BoxError),
    /// The listener could not be bound (address in use, no permission).
    #[error("cannot listen on {address}")]
    Bind {
        /// `BIND_ADDR`:`PORT`.
        address: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A start-up step failed: the service never became ready.
    #[error("start-up step `{step}` failed")]
    Step {
        /// The step's name (`migrations`, `kafka topics`, …).
        step: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// A worker failed while the service ran; the others were stopped.
    #[error("worker `{worker}` failed")]
    Worker {
        /// The worker's name.
        worker: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// A worker returned or panicked although no shutdown was requested; the others were stopped.
    #[error("worker `{worker}` stopped on its own")]
    WorkerStopped {
        /// The worker's name.
        worker: &'static str,
    },
    /// The HTTP server failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// What a worker's future may return: nothing (it cannot fail) or a `Result`.
pub trait WorkerOutcome: Send + 'static {
    /// The outcome as a result.
    fn into_result(self) -> Result<(), BoxError>;
}

impl WorkerOutcome for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E> WorkerOutcome for Result<(), E>
where
    E: Into<BoxError> + Send + 'static,
{
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

struct Step {
    name: &'static str,
    run: BoxFuture<Result<(), BoxError>>,
}

struct Worker {
    name: &'static str,
    run: Box<dyn FnOnce(Shutdown) -> BoxFuture<Result<(), BoxError>> + Send>,
}

/// A service assembled without I/O (pools connect lazily, producers in the background), so building succeeds
/// while Postgres or the broker are still starting. [`bind`](Self::bind) it, then
/// [`run_until_stopped`](Bound::run_until_stopped): the same two calls in `main` and in tests.
pub struct Service {
    info: ServiceInfo,
    listen: SocketAddr,
    http: HttpConfig,
    faults: FaultConfig,
    readiness_timeout: Duration,
    metrics: PrometheusHandle,
    routes: Router,
    health: Health,
    steps: Vec<Step>,
    workers: Vec<Worker>,
    pools: Vec<PgPool>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("service", &self.info.name)
            .field("listen", &self.listen)
            .field("health", &self.health)
            .field("steps", &self.steps.iter().map(|step| step.name).collect::<Vec<_>>())
            .field("workers", &self.workers.iter().map(|worker| worker.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service with no routes, checks, steps or workers yet; it serves `/health/*`, `/metrics` and
    /// `/admin/faults` (when enabled) with `base`'s limits, on `base.listen`.
    pub fn new(info: ServiceInfo, base: &BaseConfig, metrics: PrometheusHandle) -> Self {
        Self {
            info,
            listen: base.listen,
            http: base.http.clone(),
            faults: base.faults.clone(),
            readiness_timeout: base.readiness_timeout,
            metrics,
            routes: Router::new(),
            health: Health::new(),
            steps: Vec::new(),
            workers: Vec::new(),
            pools: Vec::new(),
        }
    }

    /// Serves `routes` beside the probes. Until start-up completes they answer 503 problem+json
    /// (`urn:taskwatch:problem:service-unavailable`): the schema or topics they need may not exist yet.
    #[must_use]
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// A readiness check (`/health/ready`, `taskwatch_health_check_status{check=name}`), bounded by the base
    /// config's `READINESS_CHECK_TIMEOUT`.
    #[must_use]
    pub fn check<F>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> CheckFuture + Send + Sync + 'static,
    {
        self.health = self.health.with_check(name, self.readiness_timeout, check);
        self
    }

    /// A detail shown by `/health/ready` that does not decide readiness (a breaker's state, say).
    #[must_use]
    pub fn detail<F>(mut self, name: &'static str, detail: F) -> Self
    where
        F: Fn() -> Value + Send + Sync + 'static,
    {
        self.health = self.health.with_detail(name, detail);
        self
    }

    /// The service's Postgres pool: a `postgres` readiness check, pool gauges sampled under `pool_name` while it
    /// runs, and the pool closed once every worker stopped.
    #[must_use]
    pub fn database(self, pool: &PgPool, pool_name: &'static str) -> Self {
        database::metrics::describe();
        let sampled = pool.clone();
        let mut service = self.check("postgres", database::readiness_check(pool)).worker(
            "pool sampler",
            move |shutdown: Shutdown| {
                database::metrics::sample_pool(
                    sampled,
                    pool_name,
                    database::metrics::POOL_SAMPLE_INTERVAL,
                    shutdown.token(),
                )
            },
        );
        service.pools.push(pool.clone());
        service
    }

    /// Work that must finish before the service is started (migrations, tables, topics); steps run in the order
    /// they were added, each bounded by its own timeout. A failed step stops the service with
    /// [`RunError::Step`].
    #[must_use]
    pub fn start_step<F, E>(mut self, name: &'static str, step: F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.steps.push(Step { name, run: Box::pin(async move { step.await.map_err(Into::into) }) });
        self
    }

    /// Work that runs from start-up until shutdown; `run` gets the shutdown signal and must return soon after it
    /// fires, once what it has in flight is finished. A worker that fails or returns on its own stops the service.
    #[must_use]
    pub fn worker<F, Fut>(mut self, name: &'static str, run: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: WorkerOutcome,
    {
        let run = Box::new(move |shutdown: Shutdown| -> BoxFuture<Result<(), BoxError>> {
            let running = run(shutdown);
            Box::pin(async move { running.await.into_result() })
        });
        self.workers.push(Worker { name, run });
        self
    }

    /// Consumes `subscription` with `handler` (`messaging`'s at-least-once loop) as the worker `consumer`, after a
    /// start-up step `kafka topics` that creates the subscribed topics, the dead-letter topic and `also_writes`
    /// when missing, waiting up to `wait_for_broker` for a broker that is still starting.
    #[must_use]
    pub fn consume<H>(
        self,
        kafka: &KafkaConfig,
        subscription: Subscription,
        also_writes: &[&str],
        wait_for_broker: Duration,
        handler: H,
    ) -> Self
    where
        H: Handler + 'static,
    {
        let topics: Vec<TopicSpec> = subscription
            .topics()
            .iter()
            .map(String::as_str)
            .chain([subscription.dead_letter_topic()])
            .chain(also_writes.iter().copied())
            .map(TopicSpec::new)
            .collect();
        let (for_topics, for_consumer) = (kafka.clone(), kafka.clone());
        self.start_step("kafka topics", async move {
            messaging::ensure_topics_within(&for_topics, &topics, wait_for_broker).await
        })
        .worker("consumer", move |shutdown: Shutdown| async move {
            messaging::run(&for_consumer, subscription, handler, shutdown).await
        })
    }

    /// The probes: what `/health/*` answers and what tests wait on.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The whole router, as served: the service's routes (refused until started), `/health/*`, `/metrics` and
    /// `/admin/faults`, inside the shared HTTP layer. For `oneshot` tests.
    pub fn router(&self) -> Router {
        let faults = observability::faults::install(&self.faults);
        let routes = self.routes.clone().layer(StartupGateLayer(self.health.clone()));
        let router = routes
            .merge(faults.router())
            .merge(self.health.router())
            .merge(observability::metrics::router(self.metrics.clone()));
        observability::instrument(router, &self.http)
    }

    /// Binds the listener on `BIND_ADDR`:`PORT` (port 0: any free port, see [`Bound::local_addr`]).
    pub async fn bind(self) -> Result<Bound, RunError> {
        let listener =
            TcpListener::bind(self.listen).await.map_err(|source| RunError::Bind { address: self.listen, source })?;
        Ok(Bound { listener, service: self })
    }
}

/// Until start-up completed, a service route answers 503: its schema, topics or workers are not there yet.
///
/// A plain service rather than a `from_fn` layer: that would clone every route below it and box its future on every
/// request, for a check that is one atomic load (BENCHMARKS.md measures what such a layer costs).
#[derive(Debug, Clone)]
struct StartupGate<S> {
    /// The routes behind the gate.
    inner: S,
    /// Whose start-up opens it.
    health: Health,
}

/// Puts routes behind a [`StartupGate`] on the service's health.
#[derive(Debug, Clone)]
struct StartupGateLayer(Health);

impl<S> tower::Layer<S> for StartupGateLayer {
    type Service = StartupGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StartupGate { inner, health: self.0.clone() }
    }
}

impl<S> tower::Service<Request> for StartupGate<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.health.is_started() {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(ready(Ok(Problem::service_unavailable("the service is starting").into_response())))
        }
    }
}

/// A [`Service`] with its listener bound.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    service: Service,
}

impl Bound {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.service.listen)
    }

    /// The probes; clones share their state, so a test can wait for [`Health::is_started`].
    pub fn health(&self) -> Health {
        self.service.health.clone()
    }

    /// Runs the service until `shutdown` fires, a worker fails or the server does; see the crate documentation
    /// for the order. Returns once every worker stopped and the pools are closed.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), RunError> {
        let router = self.service.router();
        let Service { info, http, health, steps, workers, pools, .. } = self.service;

        let mut helpers = JoinSet::new();
        helpers.spawn(unready_on_shutdown(health.clone(), shutdown.clone()));
        helpers.spawn(health.clone().sample_until(SAMPLE_INTERVAL, shutdown.token()));
        let serving = shutdown.clone();
        let mut server = tokio::spawn(async move { observability::serve(self.listener, router, serving, &http).await });

        let mut failure = run_steps(steps, &shutdown).await.err();
        let mut running = JoinSet::new();
        let mut names = HashMap::new();
        let mut served = None;
        if failure.is_none() && !shutdown.is_requested() {
            health.mark_started();
            for worker in workers {
                let handle = running.spawn((worker.run)(shutdown.clone()));
                names.insert(handle.id(), worker.name);
            }
            tracing::info!(service = info.name, workers = names.len(), "started");
            tokio::select! {
                () = shutdown.requested() => {}
                Some(joined) = running.join_next_with_id() => {
                    // Both may be ready at once: a worker that returned because shutdown was requested is no
                    // failure, whichever branch was picked.
                    failure = worker_failure(joined, &names, shutdown.is_requested());
                }
                result = &mut server => served = Some(result),
            }
        }

        shutdown.trigger();
        while let Some(joined) = running.join_next_with_id().await {
            let failed = worker_failure(joined, &names, true);
            failure = failure.or(failed);
        }
        let served = match served {
            Some(result) => result,
            None => (&mut server).await,
        };
        match served {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(RunError::Serve(error))),
            Err(panic) => failure = failure.or(Some(RunError::Serve(std::io::Error::other(panic.to_string())))),
        }
        while helpers.join_next().await.is_some() {}
        for pool in pools {
            pool.close().await;
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Runs the start-up steps in order; abandons them when shutdown is requested meanwhile.
async fn run_steps(steps: Vec<Step>, shutdown: &Shutdown) -> Result<(), RunError> {
    for step in steps {
        tracing::info!(step = step.name, "start-up step");
        tokio::select! {
            result = step.run => result.map_err(|source| RunError::Step { step: step.name, source })?,
            () = shutdown.requested() => {
                tracing::info!(step = step.name, "shutdown requested during start-up");
                return Ok(());
            }
        }
    }
    Ok(())
}

/// What one finished worker means: nothing after shutdown was requested (unless it failed), a failure before.
fn worker_failure(
    joined: Result<(tokio::task::Id, Result<(), BoxError>), tokio::task::JoinError>,
    names: &HashMap<tokio::task::Id, &'static str>,
    shutdown_requested: bool,
) -> Option<RunError> {
    let name = |id| names.get(&id).copied().unwrap_or("unnamed");
    match joined {
        Ok((_, Ok(()))) if shutdown_requested => None,
        Ok((id, Ok(()))) => Some(RunError::WorkerStopped { worker: name(id) }),
        Ok((id, Err(source))) => {
            tracing::error!(worker = name(id), error = %ErrorChain(source.as_ref()), "worker failed");
            Some(RunError::Worker { worker: name(id), source })
        }
        Err(error) => {
            tracing::error!(worker = name(error.id()), %error, "worker panicked or was cancelled");
            Some(RunError::WorkerStopped { worker: name(error.id()) })
        }
    }
}

/// Turns readiness off the moment shutdown is requested, before the listener closes, so load balancers stop
/// routing here first.
async fn unready_on_shutdown(health: Health, shutdown: Shutdown) {
    shutdown.requested().await;
    health.set_shutting_down();
}
