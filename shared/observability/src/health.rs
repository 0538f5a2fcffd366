//! Liveness, readiness and startup probes.
//!
//! * `/health/live`: the process answers HTTP. Never consults dependencies, so a flaky database cannot
//!   make an orchestrator restart healthy pods.
//! * `/health/startup`: 503 until [`Health::mark_started`] (migrations ran, workers spawned).
//! * `/health/ready`: 503 before start-up completes, once shutdown begins, or when any named check fails
//!   or times out. Check results are cached briefly and computed by one caller at a time, so frequent
//!   probes from several sources cannot hammer a dependency.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

use crate::metric_names::HEALTH_CHECK_STATUS;

/// How often [`Health::sample_until`] evaluates the checks when nothing else probes.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a readiness result is reused before checks run again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);

/// The future a readiness check returns: `Err` says why the dependency is down. Crates that offer a check for
/// [`Health::with_check`] (Postgres in `database`, the broker in `messaging`) return this type.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = dyn Fn() -> CheckFuture + Send + Sync;
type DetailFn = dyn Fn() -> Value + Send + Sync;

#[derive(Clone)]
struct Check {
    name: &'static str,
    timeout: Duration,
    run: Arc<CheckFn>,
}

#[derive(Clone)]
struct Detail {
    name: &'static str,
    read: Arc<DetailFn>,
}

/// Probe state and the dependency checks behind `/health/ready`.
///
/// Register checks and details before cloning: clones share the started/shutting-down flags and the
/// result cache, and are meant to be handed to the server, the shutdown handler and the workers.
#[derive(Clone)]
pub struct Health {
    checks: Arc<Vec<Check>>,
    details: Arc<Vec<Detail>>,
    cache_ttl: Duration,
    state: Arc<State>,
}

struct State {
    started: AtomicBool,
    shutting_down: AtomicBool,
    // An async mutex on purpose: the first prober runs the checks while later ones wait for its result.
    cache: tokio::sync::Mutex<Option<CachedChecks>>,
}

struct CachedChecks {
    taken_at: Instant,
    results: BTreeMap<&'static str, CheckResult>,
}

/// The outcome of one dependency check, as shown in the readiness JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// `down` when the check failed or exceeded its timeout; sets `taskwatch_health_check_status{check}` to 0.
    pub status: Status,
    /// How long the check ran, in milliseconds rounded to two decimals (about the timeout when it timed out).
    pub latency_ms: f64,
    /// Why the check is down, credentials scrubbed; `None` when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Up or down, for one check or for readiness as a whole; serialised as `"up"` / `"down"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working: readiness answers 200, a check's gauge is 1.
    Up,
    /// Not working: readiness answers 503, a check's gauge is 0.
    Down,
}

/// The `/health/ready` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadyReport {
    /// The verdict: `up` (200) only once started, not shutting down, and with every check up.
    pub status: Status,
    /// Why it is down: `starting`, `shutting down` or `dependency check failed`; `None` when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Each check's result by name; empty while starting or shutting down, when no check runs.
    pub checks: BTreeMap<&'static str, CheckResult>,
    /// The non-gating details registered with [`Health::with_detail`], by name; they never affect `status`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<&'static str, Value>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("checks", &self.checks.iter().map(|check| check.name).collect::<Vec<_>>())
            .field("details", &self.details.iter().map(|detail| detail.name).collect::<Vec<_>>())
            .field("started", &self.is_started())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Probe state with no checks: not started, so readiness and startup answer 503 until [`Health::mark_started`].
    pub fn new() -> Self {
        Self {
            checks: Arc::new(Vec::new()),
            details: Arc::new(Vec::new()),
            cache_ttl: DEFAULT_CACHE_TTL,
            state: Arc::new(State {
                started: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                cache: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Adds a gating dependency check; it counts as down if it errs or exceeds `timeout`.
    pub fn with_check<F, Fut>(mut self, name: &'static str, timeout: Duration, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let run: Arc<CheckFn> = Arc::new(move || Box::pin(check()) as CheckFuture);
        // No gauge value until the first evaluation: a made-up "down" would page someone, a made-up
        // "up" would hide an outage.
        Arc::make_mut(&mut self.checks).push(Check { name, timeout, run });
        self
    }

    /// Adds a non-gating detail (e.g. circuit breaker states) shown under `details` in `/health/ready`.
    pub fn with_detail<F>(mut self, name: &'static str, detail: F) -> Self
    where
        F: Fn() -> Value + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.details).push(Detail { name, read: Arc::new(detail) });
        self
    }

    /// How long readiness results are reused (default [`DEFAULT_CACHE_TTL`]).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Start-up finished: `/health/startup` turns 200 and readiness checks begin to count.
    pub fn mark_started(&self) {
        self.state.started.store(true, Ordering::Release);
    }

    /// Shutdown began: `/health/ready` is 503 from now on, whatever the checks say.
    pub fn set_shutting_down(&self) {
        self.state.shutting_down.store(true, Ordering::Release);
    }

    /// Whether [`Health::mark_started`] was called (what `/health/startup` answers).
    pub fn is_started(&self) -> bool {
        self.state.started.load(Ordering::Acquire)
    }

    /// Whether [`Health::set_shutting_down`] was called; it is never undone.
    pub fn is_shutting_down(&self) -> bool {
        self.state.shutting_down.load(Ordering::Acquire)
    }

    /// The readiness verdict with every check's result; runs checks unless a fresh result is cached.
    pub async fn ready_report(&self) -> ReadyReport {
        let details = self.details.iter().map(|detail| (detail.name, (detail.read)())).collect();
        let reason = if self.is_shutting_down() {
            Some("shutting down")
        } else if !self.is_started() {
            Some("starting")
        } else {
            None
        };
        if reason.is_some() {
            return ReadyReport { status: Status::Down, reason, checks: BTreeMap::new(), details };
        }
        let checks = self.check_results().await;
        let all_up = checks.values().all(|result| result.status == Status::Up);
        ReadyReport {
            status: if all_up { Status::Up } else { Status::Down },
            reason: (!all_up).then_some("dependency check failed"),
            checks,
            details,
        }
    }

    /// Evaluates the readiness checks every `interval` until `stop` fires, so `taskwatch_health_check_status`
    /// (and the alerts on it) stays current however rarely an orchestrator probes: natively and in tests
    /// nothing may probe at all. Results go through the same cache as the probes, so this adds at most one
    /// evaluation per `interval`.
    pub async fn sample_until(self, interval: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let _ = self.ready_report().await;
        }
    }

    async fn check_results(&self) -> BTreeMap<&'static str, CheckResult> {
        let ttl = self.cache_ttl;
        let mut cache = self.state.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|cached| cached.taken_at.elapsed() < ttl) {
            return cached.results.clone();
        }
        let previous = cache.take().map(|cached| cached.results);
        let results: BTreeMap<_, _> =
            futures::future::join_all(self.checks.iter().map(|check| async { (check.name, run_check(check).await) }))
                .await
                .into_iter()
                .collect();
        for (name, result) in &results {
            record_check(name, result, previous.as_ref().and_then(|previous| previous.get(name)));
        }
        *cache = Some(CachedChecks { taken_at: Instant::now(), results: results.clone() });
        results
    }

    /// `/health/live`, `/health/ready` and `/health/startup`.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let ready = self.clone();
        let startup = self.clone();
        Router::new()
            .route(
                "/health/live",
                get(|| async { json_response(StatusCode::OK, &serde_json::json!({"status": "up"})) }),
            )
            .route(
                "/health/ready",
                get(move || {
                    let health = ready.clone();
                    async move {
                        let report = health.ready_report().await;
                        let status = match report.status {
                            Status::Up => StatusCode::OK,
                            Status::Down => StatusCode::SERVICE_UNAVAILABLE,
                        };
                        json_response(status, &report)
                    }
                }),
            )
            .route(
                "/health/startup",
                get(move || {
                    let started = startup.is_started();
                    async move {
                        if started {
                            json_response(StatusCode::OK, &serde_json::json!({"status": "up"}))
                        } else {
                            json_response(
                                StatusCode::SERVICE_UNAVAILABLE,
                                &serde_json::json!({"status": "down", "reason": "starting"}),
                            )
                        }
                    }
                }),
            )
    }
}

async fn run_check(check: &Check) -> CheckResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(check.timeout, (check.run)()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let latency_ms = (latency_ms * 100.0).round() / 100.0;
    match outcome {
        Ok(Ok(())) => CheckResult { status: Status::Up, latency_ms, error: None },
        Ok(Err(error)) => {
            CheckResult { status: Status::Down, latency_ms, error: Some(crate::redact::scrub(&error).into_owned()) }
        }
        Err(_) => CheckResult {
            status: Status::Down,
            latency_ms,
            error: Some(format!("timed out after {} ms", check.timeout.as_millis())),
        },
    }
}

/// Updates the gauge and logs only on a change of status, so a long outage is one line, not thousands.
fn record_check(name: &'static str, result: &CheckResult, previous: Option<&CheckResult>) {
    let up = result.status == Status::Up;
    metrics::gauge!(HEALTH_CHECK_STATUS, "check" => name).set(if up { 1.0 } else { 0.0 });
    let changed = previous.is_none_or(|previous| previous.status != result.status);
    match (changed, up) {
        (true, false) => tracing::warn!(
            check = name,
            error = result.error.as_deref().unwrap_or_default(),
            latency_ms = result.latency_ms,
            "health check down"
        ),
        (true, true) if previous.is_some() => {
            tracing::info!(check = name, latency_ms = result.latency_ms, "health check recovered");
        }
        _ => {}
    }
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let body = serde_json::to_string(body).unwrap_or_else(|_| r#"{"status":"down"}"#.to_owned());
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Probes must see the live answer, never a cached one from a proxy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
