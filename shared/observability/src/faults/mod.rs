//! Runtime fault switches, so a demo can make a chosen alert fire and clear without restarting anything.
//!
//! Off by default. `FAULT_INJECTION_ENABLED=true` mounts `GET | PUT | DELETE /admin/faults` (JSON, see
//! [`spec`](self::FaultPlan)); `PUT` replaces the whole plan, `DELETE` clears it. What each fault does, and
//! where the hook sits:
//!
//! | Fault | Hook | Effect |
//! |---|---|---|
//! | `http.latency` + `http.jitter` | HTTP server layer ([`crate::instrument`]) | each API request waits `latency + U(0, jitter)` before its handler |
//! | `http.error_ratio` / `error_status` | HTTP server layer | that share of API requests is answered with a 5xx problem+json (`"fault": "http_errors"`) |
//! | `outages: ["backend"]` | [`crate::ServiceClient`] | calls to that downstream fail at once as connection errors: they count against its circuit breaker, which opens |
//! | `outages: ["smtp"]`, `["webhook"]` | notification's channels | sends fail as a transient error: retries, breaker, finally the dead-letter topic |
//! | `consumer.delay` | the Kafka consumer loop (`shared/messaging`) | each message waits before its handler runs |
//! | `consumer.stuck` | the Kafka consumer loop | no new message is taken; lag grows (past `max.poll.interval.ms`, 5 min, the member leaves its group and rejoins when unstuck) |
//!
//! API routes are all routes except `/health/*`, `/metrics` and `/admin/*`, so probes, scrapes and the
//! switch itself keep working while the API "fails". A `schedule` cycles through steps of faults over time.
//! `taskwatch_fault_active{fault}` shows on dashboards which fault is on.
//!
//! # Environment variables
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `FAULT_INJECTION_ENABLED` | `false` | mounts `/admin/faults`; refused (exit 78) when the deployment is production |
//! | `DEPLOYMENT_ENVIRONMENT` | unset | `production` or `prod` (any case) marks a production deployment; so does `deployment.environment(.name)=production` in `OTEL_RESOURCE_ATTRIBUTES` |
//! | `FAULT_ADMIN_TOKEN` | unset | ≥ 32 bytes; `/admin/faults` then needs `Authorization: Bearer <token>`. Unset: the service's `INTERNAL_SERVICE_TOKEN` is required instead, if it has one; with neither the switch is open (local demos) |
//! | `FAULT_SCHEDULE` | unset | a schedule (`{"repeat": true, "steps": [...]}`) in effect from start-up |

mod admin;
mod inject;
mod spec;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use chrono::{DateTime, Utc};

pub(crate) use self::inject::inject_http_faults;
pub use self::spec::{ConsumerFault, FaultPlan, FaultSet, HttpFault, Position, Schedule, Step};
use crate::config::{Env, Secret};
use crate::metric_names::FAULT_ACTIVE;
use crate::problem::FieldError;

/// A fault admin token must be as hard to guess as the services' other credentials.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;
/// `DEPLOYMENT_ENVIRONMENT` values (compared without case) that mark production.
const PRODUCTION_NAMES: [&str; 2] = ["production", "prod"];
/// How often the gauges are refreshed, so a schedule's steps show up on dashboards.
const GAUGE_REFRESH: Duration = Duration::from_secs(1);

/// The fault switch's configuration (see the module's variable table).
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// `FAULT_INJECTION_ENABLED` (default off): whether `/admin/faults` is mounted and the hooks act at all.
    pub enabled: bool,
    /// The bearer token `/admin/faults` requires: `FAULT_ADMIN_TOKEN`, or the fallback given to
    /// [`FaultConfig::with_fallback_token`]; `None` leaves the switch open.
    pub admin_token: Option<Secret>,
    /// `FAULT_SCHEDULE`: a schedule in effect from start-up (only with `enabled`).
    pub schedule: Option<Schedule>,
}

impl FaultConfig {
    /// Reads the `FAULT_*` variables and `DEPLOYMENT_ENVIRONMENT`, recording problems in `env`: fault
    /// injection in production is a configuration error, not a warning.
    pub fn from_env(env: &mut Env) -> Self {
        let enabled = env.with_default("FAULT_INJECTION_ENABLED", false);
        let admin_token = env.optional::<Secret>("FAULT_ADMIN_TOKEN");
        let schedule = env.optional::<ScheduleVar>("FAULT_SCHEDULE").map(|ScheduleVar(schedule)| schedule);
        if enabled && let Some(marker) = production_marker(env) {
            env.invalid("FAULT_INJECTION_ENABLED", format!("fault injection is refused in production ({marker})"));
        }
        if admin_token.as_ref().is_some_and(|token| token.expose().len() < MIN_ADMIN_TOKEN_BYTES) {
            env.invalid("FAULT_ADMIN_TOKEN", format!("must be at least {MIN_ADMIN_TOKEN_BYTES} bytes"));
        }
        if schedule.is_some() && !enabled {
            env.invalid("FAULT_SCHEDULE", "needs FAULT_INJECTION_ENABLED=true");
        }
        if let Some(schedule) = &schedule {
            let plan = FaultPlan { schedule: Some(schedule.clone()), ..FaultPlan::default() };
            for error in plan.validate(None) {
                env.invalid("FAULT_SCHEDULE", format!("{}: {}", error.field, error.message));
            }
        }
        Self { enabled, admin_token, schedule }
    }

    /// Uses `token` (the service's `INTERNAL_SERVICE_TOKEN`) to protect `/admin/faults` unless
    /// `FAULT_ADMIN_TOKEN` is set.
    pub fn with_fallback_token(mut self, token: Option<&Secret>) -> Self {
        if self.admin_token.is_none() {
            self.admin_token = token.cloned();
        }
        self
    }
}

/// `FAULT_SCHEDULE`'s JSON.
struct ScheduleVar(Schedule);

impl FromStr for ScheduleVar {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(text).map(Self).map_err(|error| format!("not a fault schedule: {error}"))
    }
}

/// Why this deployment counts as production, if it does.
fn production_marker(env: &Env) -> Option<String> {
    let is_production = |value: &str| PRODUCTION_NAMES.iter().any(|name| value.trim().eq_ignore_ascii_case(name));
    if let Some(value) = env.raw("DEPLOYMENT_ENVIRONMENT").filter(|value| is_production(value)) {
        return Some(format!("DEPLOYMENT_ENVIRONMENT={}", value.trim()));
    }
    let attributes = env.raw("OTEL_RESOURCE_ATTRIBUTES")?;
    attributes.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let key = key.trim();
        (matches!(key, "deployment.environment" | "deployment.environment.name") && is_production(value))
            .then(|| format!("OTEL_RESOURCE_ATTRIBUTES {key}={}", value.trim()))
    })
}

/// The process's fault switch: cheap to clone, clones share the plan.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    admin_token: Option<Secret>,
    state: RwLock<State>,
}

#[derive(Debug, Clone)]
struct State {
    plan: FaultPlan,
    /// Monotonic, for the schedule; the wall clock only for display.
    set_at: Instant,
    set_at_wall: DateTime<Utc>,
}

impl Faults {
    /// A switch set up from `config`, its start-up schedule running from now. The hooks consult only the switch
    /// made by [`install`]; a switch of one's own is for tests.
    pub fn new(config: &FaultConfig) -> Self {
        let plan = FaultPlan { schedule: config.schedule.clone(), ..FaultPlan::default() };
        let state = State { plan, set_at: Instant::now(), set_at_wall: Utc::now() };
        Self {
            inner: Arc::new(Inner {
                enabled: config.enabled,
                admin_token: config.admin_token.clone(),
                state: RwLock::new(state),
            }),
        }
    }

    /// A switch that is off: no route, no fault, ever.
    pub fn disabled() -> Self {
        Self::new(&FaultConfig::default())
    }

    /// Whether fault injection is on (`FAULT_INJECTION_ENABLED`); when off, every query answers "no fault".
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The faults in effect now (and the schedule step, if any).
    pub fn position(&self) -> Position {
        if !self.inner.enabled {
            return Position { faults: FaultSet::default(), step: None };
        }
        let state = self.state();
        state.plan.at(state.set_at.elapsed())
    }

    /// The plan as last set.
    pub fn plan(&self) -> FaultPlan {
        self.state().plan
    }

    /// The HTTP fault in effect, if it does anything.
    pub fn http(&self) -> Option<HttpFault> {
        self.position().faults.http.filter(|http| http.has_latency() || http.has_errors())
    }

    /// Whether calls to dependency `name` must fail now.
    pub fn is_down(&self, name: &str) -> bool {
        self.inner.enabled && self.position().faults.outages.iter().any(|down| down == name)
    }

    /// The consumer fault in effect (the default does nothing).
    pub fn consumer(&self) -> ConsumerFault {
        self.position().faults.consumer.unwrap_or_default()
    }

    /// Validates `plan` against the registered dependencies and puts it in effect from now.
    pub fn replace(&self, plan: FaultPlan) -> Result<(), Vec<FieldError>> {
        let known = known_dependencies();
        let errors = plan.validate(Some(&known));
        if !errors.is_empty() {
            return Err(errors);
        }
        let logged = serde_json::to_string(&plan).unwrap_or_default();
        *self.inner.state.write().unwrap_or_else(PoisonError::into_inner) =
            State { plan, set_at: Instant::now(), set_at_wall: Utc::now() };
        tracing::warn!(plan = %logged, "fault injection plan replaced");
        self.publish_gauges();
        Ok(())
    }

    /// Clears every fault.
    pub fn clear(&self) {
        *self.inner.state.write().unwrap_or_else(PoisonError::into_inner) =
            State { plan: FaultPlan::default(), set_at: Instant::now(), set_at_wall: Utc::now() };
        tracing::warn!("fault injection plan cleared");
        self.publish_gauges();
    }

    /// `GET | PUT | DELETE /admin/faults` when enabled; an empty router otherwise. Merge it into the
    /// service's router before [`crate::instrument`], so the switch's own calls are observed too.
    pub fn router(&self) -> Router {
        if self.inner.enabled { admin::router(self.clone()) } else { Router::new() }
    }

    /// Sets `taskwatch_fault_active` for every fault this process can have: 1 on, 0 off.
    pub fn publish_gauges(&self) {
        let faults = self.position().faults;
        let http = faults.http.unwrap_or(HttpFault {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            error_ratio: 0.0,
            error_status: 503,
        });
        let consumer = faults.consumer.unwrap_or_default();
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        metrics::gauge!(FAULT_ACTIVE, "fault" => "http_latency").set(flag(http.has_latency()));
        metrics::gauge!(FAULT_ACTIVE, "fault" => "http_errors").set(flag(http.has_errors()));
        metrics::gauge!(FAULT_ACTIVE, "fault" => "consumer_delay").set(flag(!consumer.delay.is_zero()));
        metrics::gauge!(FAULT_ACTIVE, "fault" => "consumer_stuck").set(flag(consumer.stuck));
        for name in known_dependencies() {
            let down = faults.outages.iter().any(|down| down == name);
            metrics::gauge!(FAULT_ACTIVE, "fault" => outage_label(name)).set(flag(down));
        }
    }

    fn state(&self) -> State {
        self.inner.state.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn admin_token(&self) -> Option<&Secret> {
        self.inner.admin_token.as_ref()
    }

    fn set_at(&self) -> DateTime<Utc> {
        self.state().set_at_wall
    }
}

/// The `fault` label of an outage: `outage_backend`, `outage_smtp`, …
fn outage_label(name: &str) -> String {
    format!("outage_{name}")
}

static GLOBAL: OnceLock<Faults> = OnceLock::new();
static DEPENDENCIES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// Makes `config`'s switch the process's one (what the hooks consult), publishes the gauges and, when
/// enabled, refreshes them every second from a background task. A second call keeps the first switch
/// (hooks must agree on one) and returns it.
pub fn install(config: &FaultConfig) -> Faults {
    let mut fresh = false;
    let faults = GLOBAL
        .get_or_init(|| {
            fresh = true;
            Faults::new(config)
        })
        .clone();
    if !fresh {
        if faults.is_enabled() != config.enabled {
            tracing::warn!("fault switch already installed in this process; keeping the first one");
        }
        return faults;
    }
    faults.publish_gauges();
    if faults.is_enabled() {
        tracing::warn!(
            protected = faults.admin_token().is_some(),
            "fault injection enabled: /admin/faults can degrade this service on purpose"
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let refreshed = faults.clone();
            runtime.spawn(async move {
                let mut ticker = tokio::time::interval(GAUGE_REFRESH);
                let mut step = None;
                loop {
                    ticker.tick().await;
                    refreshed.publish_gauges();
                    let now = refreshed.position().step;
                    if now != step {
                        if let Some(index) = now {
                            tracing::warn!(step = index, "fault schedule moved to the next step");
                        }
                        step = now;
                    }
                }
            });
        }
    }
    faults
}

/// The installed switch, if any.
pub fn installed() -> Option<&'static Faults> {
    GLOBAL.get().filter(|faults| faults.is_enabled())
}

/// Declares a dependency that can be switched "down" under `name` (the service client does this for its
/// downstream; notification for `smtp` and `webhook`). `PUT` refuses names nobody registered.
pub fn register_dependency(name: &'static str) {
    let added = DEPENDENCIES.lock().unwrap_or_else(PoisonError::into_inner).insert(name);
    if added {
        let down = installed().is_some_and(|faults| faults.is_down(name));
        metrics::gauge!(FAULT_ACTIVE, "fault" => outage_label(name)).set(if down { 1.0 } else { 0.0 });
    }
}

/// Hook: whether calls to dependency `name` must fail now.
pub fn is_down(name: &str) -> bool {
    installed().is_some_and(|faults| faults.is_down(name))
}

/// Hook: the consumer fault in effect now.
pub fn consumer_fault() -> ConsumerFault {
    installed().map(Faults::consumer).unwrap_or_default()
}

fn known_dependencies() -> Vec<&'static str> {
    DEPENDENCIES.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    fn load(pairs: &[(&str, &str)]) -> Result<FaultConfig, crate::ConfigError> {
        env(pairs).load(|env| Some(FaultConfig::from_env(env)))
    }

    #[test]
    fn off_by_default() {
        let config = load(&[]).unwrap();
        assert!(!config.enabled);
        let faults = Faults::new(&config);
        assert!(!faults.is_enabled());
        assert_eq!(faults.position().faults, FaultSet::default());
    }

    #[test]
    fn refused_in_production_however_it_is_said() {
        for pairs in [
            &[("FAULT_INJECTION_ENABLED", "true"), ("DEPLOYMENT_ENVIRONMENT", "Production")][..],
            &[("FAULT_INJECTION_ENABLED", "true"), ("DEPLOYMENT_ENVIRONMENT", "prod")],
            &[
                ("FAULT_INJECTION_ENABLED", "true"),
                ("OTEL_RESOURCE_ATTRIBUTES", "a=b,deployment.environment.name=production"),
            ],
        ] {
            let error = load(pairs).unwrap_err();
            assert_eq!(error.problems[0].name(), "FAULT_INJECTION_ENABLED", "{pairs:?}");
            assert!(error.to_string().contains("production"), "{error}");
        }
        assert!(load(&[("FAULT_INJECTION_ENABLED", "true"), ("DEPLOYMENT_ENVIRONMENT", "staging")]).is_ok());
        // Production with the switch off is the normal case.
        assert!(load(&[("DEPLOYMENT_ENVIRONMENT", "production")]).is_ok());
    }

    #[test]
    fn a_schedule_needs_the_switch_and_must_be_valid() {
        let schedule = r#"{"repeat": true, "steps": [{"for": "1m", "faults": {"http": {"error_ratio": 0.5}}}]}"#;
        let error = load(&[("FAULT_SCHEDULE", schedule)]).unwrap_err();
        assert_eq!(error.problems[0].name(), "FAULT_SCHEDULE");
        let config = load(&[("FAULT_INJECTION_ENABLED", "true"), ("FAULT_SCHEDULE", schedule)]).unwrap();
        assert!(Faults::new(&config).http().is_some_and(|http| http.error_ratio == 0.5));
        let bad = r#"{"steps": [{"for": "1m", "faults": {"http": {"error_ratio": 2}}}]}"#;
        let error = load(&[("FAULT_INJECTION_ENABLED", "true"), ("FAULT_SCHEDULE", bad)]).unwrap_err();
        assert!(error.to_string().contains("error_ratio"), "{error}");
    }

    #[test]
    fn the_admin_token_falls_back_to_the_service_token_and_must_be_long() {
        let service = Secret::new("s".repeat(32));
        let config = load(&[("FAULT_INJECTION_ENABLED", "true")]).unwrap().with_fallback_token(Some(&service));
        assert_eq!(config.admin_token.as_ref().map(Secret::expose), Some(service.expose()));
        let error = load(&[("FAULT_ADMIN_TOKEN", "short")]).unwrap_err();
        assert_eq!(error.problems[0].name(), "FAULT_ADMIN_TOKEN");
        assert!(!error.to_string().contains("short\""), "{error}");
    }

    #[test]
    fn a_disabled_switch_ignores_any_plan() {
        let faults = Faults::disabled();
        let stuck = ConsumerFault { delay: Duration::ZERO, stuck: true };
        let plan = FaultPlan { consumer: Some(stuck), ..FaultPlan::default() };
        faults.replace(plan).unwrap();
        assert!(!faults.consumer().stuck);
    }
}
