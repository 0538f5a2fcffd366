//! What a fault plan says, as JSON: the faults themselves, an optional schedule, and their validation.
//!
//! ```json
//! {
//!   "http": { "latency": "300ms", "jitter": "200ms", "error_ratio": 0.2, "error_status": 503 },
//!   "outages": ["backend"],
//!   "consumer": { "delay": "2s", "stuck": false }
//! }
//! ```
//! or, instead of the faults, a schedule that cycles through steps:
//! ```json
//! { "schedule": { "repeat": true, "steps": [
//!     { "for": "2m", "faults": { "http": { "error_ratio": 0.5 } } },
//!     { "for": "3m" } ] } }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::problem::FieldError;

/// Upper bound of added latency and jitter: beyond it every request would time out anyway.
const MAX_LATENCY: Duration = Duration::from_secs(60);
/// Upper bound of the per-message consumer delay.
const MAX_CONSUMER_DELAY: Duration = Duration::from_secs(600);
/// Bounds of a schedule: enough for any demo, small enough to keep the plan readable.
const MAX_STEPS: usize = 32;
const MIN_STEP: Duration = Duration::from_secs(1);
const MAX_STEP: Duration = Duration::from_secs(24 * 3600);

/// The faults in effect at one moment. The default is "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Latency and errors on the service's API routes (never `/health/*`, `/metrics`, `/admin/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFault>,
    /// Dependencies that are "down": calls to them fail at once as connection errors. Names are the
    /// service client's downstreams (`backend`) and notification's channels (`smtp`, `webhook`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<String>,
    /// A slow or stuck message consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerFault>,
}

impl FaultSet {
    /// Whether the set does nothing: no outage, and any HTTP or consumer fault in it has only zero values.
    pub fn is_empty(&self) -> bool {
        self.http.is_none_or(|http| http.is_noop())
            && self.outages.is_empty()
            && self.consumer.is_none_or(|c| c.is_noop())
    }
}

/// Added latency (fixed + uniformly random jitter) and a share of requests answered with a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFault {
    /// Fixed wait before each API request's handler (e.g. `"300ms"`), at most 60 s; none by default.
    #[serde(default, with = "duration")]
    pub latency: Duration,
    /// Upper bound of a uniformly random extra wait on top of `latency`, at most 60 s; none by default.
    #[serde(default, with = "duration")]
    pub jitter: Duration,
    /// Share of API requests answered with `error_status`, from 0.0 to 1.0.
    #[serde(default)]
    pub error_ratio: f64,
    /// 500–599; 503 by default.
    #[serde(default = "default_error_status")]
    pub error_status: u16,
}

fn default_error_status() -> u16 {
    503
}

impl HttpFault {
    /// Whether requests are delayed at all; drives `taskwatch_fault_active{fault="http_latency"}`.
    pub fn has_latency(&self) -> bool {
        !(self.latency.is_zero() && self.jitter.is_zero())
    }

    /// Whether some requests are answered with `error_status`; drives `taskwatch_fault_active{fault="http_errors"}`.
    pub fn has_errors(&self) -> bool {
        self.error_ratio > 0.0
    }

    fn is_noop(&self) -> bool {
        !self.has_latency() && !self.has_errors()
    }
}

/// A delay before each message is handled, or a consumer that stops taking messages altogether.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerFault {
    /// Wait before each message's handler runs (e.g. `"2s"`), at most 10 min; none by default.
    #[serde(default, with = "duration")]
    pub delay: Duration,
    /// Take no new message until the fault is cleared, so consumer lag grows.
    #[serde(default)]
    pub stuck: bool,
}

impl ConsumerFault {
    fn is_noop(&self) -> bool {
        self.delay.is_zero() && !self.stuck
    }
}

/// What `PUT /admin/faults` takes: either faults, or a schedule of them (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// HTTP fault in effect until the plan is replaced, as in [`FaultSet::http`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFault>,
    /// Dependencies down until the plan is replaced, as in [`FaultSet::outages`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<String>,
    /// Consumer fault in effect until the plan is replaced, as in [`FaultSet::consumer`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerFault>,
    /// Faults that change over time; when given, the three fixed fields above must stay empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// Steps run in order from the moment the plan is set; with `repeat` the cycle starts over, without it
/// no fault is active after the last step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Start over after the last step instead of ending with no fault.
    #[serde(default)]
    pub repeat: bool,
    /// The steps, in order: 1 to 32 of them.
    pub steps: Vec<Step>,
}

/// One stretch of a [`Schedule`]: `faults` in effect for `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// How long the step lasts (JSON `for`, e.g. `"2m"`), from 1 s to 24 h.
    #[serde(rename = "for", with = "duration")]
    pub duration: Duration,
    /// The faults in effect during the step; omitted, none (a quiet pause between faulty steps).
    #[serde(default)]
    pub faults: FaultSet,
}

/// Where a plan stands at some instant: the faults in effect and, for a schedule, the step index.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The faults in effect; none once a non-repeating schedule has ended.
    pub faults: FaultSet,
    /// Index of the current schedule step; `None` without a schedule or after it ended.
    pub step: Option<usize>,
}

impl FaultPlan {
    /// The plan's faults without a schedule (what is in effect all the time).
    fn fixed(&self) -> FaultSet {
        FaultSet { http: self.http, outages: self.outages.clone(), consumer: self.consumer }
    }

    /// The faults in effect `elapsed` after the plan was set.
    pub fn at(&self, elapsed: Duration) -> Position {
        let Some(schedule) = &self.schedule else {
            return Position { faults: self.fixed(), step: None };
        };
        let cycle: Duration = schedule.steps.iter().map(|step| step.duration).sum();
        if cycle.is_zero() || (!schedule.repeat && elapsed >= cycle) {
            return Position { faults: FaultSet::default(), step: None };
        }
        let cycle_nanos = cycle.as_nanos();
        let mut offset = elapsed.as_nanos() % cycle_nanos;
        for (index, step) in schedule.steps.iter().enumerate() {
            if offset < step.duration.as_nanos() {
                return Position { faults: step.faults.clone(), step: Some(index) };
            }
            offset -= step.duration.as_nanos();
        }
        Position { faults: FaultSet::default(), step: None }
    }

    /// Every problem with the plan, each naming its field. `known_outages` are the dependency names this
    /// process registered (an unknown name is almost always a typo, and would make a fault that does
    /// nothing); `None` skips that check (at start-up, before the clients exist).
    pub fn validate(&self, known_outages: Option<&[&str]>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_set(&self.fixed(), "", known_outages, &mut errors);
        if let Some(schedule) = &self.schedule {
            if !self.fixed().is_empty() {
                errors.push(FieldError::new("schedule", "give either faults or a schedule, not both"));
            }
            if schedule.steps.is_empty() || schedule.steps.len() > MAX_STEPS {
                errors.push(FieldError::new("schedule.steps", format!("must have 1 to {MAX_STEPS} steps")));
            }
            for (index, step) in schedule.steps.iter().enumerate() {
                if !(MIN_STEP..=MAX_STEP).contains(&step.duration) {
                    errors.push(FieldError::new(format!("schedule.steps[{index}].for"), "must be between 1s and 24h"));
                }
                validate_set(&step.faults, &format!("schedule.steps[{index}].faults."), known_outages, &mut errors);
            }
        }
        errors
    }
}

fn validate_set(set: &FaultSet, prefix: &str, known_outages: Option<&[&str]>, errors: &mut Vec<FieldError>) {
    if let Some(http) = &set.http {
        if http.latency > MAX_LATENCY {
            errors.push(FieldError::new(format!("{prefix}http.latency"), "must be at most 60s"));
        }
        if http.jitter > MAX_LATENCY {
            errors.push(FieldError::new(format!("{prefix}http.jitter"), "must be at most 60s"));
        }
        if !(0.0..=1.0).contains(&http.error_ratio) {
            errors.push(FieldError::new(format!("{prefix}http.error_ratio"), "must be between 0.0 and 1.0"));
        }
        if !(500..=599).contains(&http.error_status) {
            errors.push(FieldError::new(format!("{prefix}http.error_status"), "must be a 5xx status"));
        }
    }
    for (index, name) in set.outages.iter().enumerate() {
        if let Some(known_outages) = known_outages
            && !known_outages.contains(&name.as_str())
        {
            let known = if known_outages.is_empty() { "none".to_owned() } else { known_outages.join(", ") };
            errors.push(FieldError::new(
                format!("{prefix}outages[{index}]"),
                format!("`{name}` is not a dependency of this service (known: {known})"),
            ));
        }
    }
    if let Some(consumer) = &set.consumer
        && consumer.delay > MAX_CONSUMER_DELAY
    {
        errors.push(FieldError::new(format!("{prefix}consumer.delay"), "must be at most 10m"));
    }
}

/// Durations as the configuration writes them: `"250ms"`, `"5s"`, `"2m"`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::config::DurationValue;

    pub(super) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&DurationValue::new(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<DurationValue>().map(DurationValue::get).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(value: serde_json::Value) -> FaultPlan {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn parses_durations_with_units_and_defaults_the_status() {
        let plan = plan(json!({"http": {"latency": "250ms", "error_ratio": 0.5}, "consumer": {"stuck": true}}));
        let http = plan.http.unwrap();
        assert_eq!(http.latency, Duration::from_millis(250));
        assert_eq!(http.jitter, Duration::ZERO);
        assert_eq!(http.error_status, 503);
        assert!(plan.validate(Some(&[])).is_empty());
        assert_eq!(serde_json::to_value(&plan).unwrap()["http"]["latency"], "250ms");
    }

    #[test]
    fn unknown_fields_and_bare_numbers_are_refused() {
        assert!(serde_json::from_value::<FaultPlan>(json!({"htp": {}})).is_err());
        assert!(serde_json::from_value::<FaultPlan>(json!({"http": {"latency": 250}})).is_err());
    }

    #[test]
    fn every_invalid_field_is_named() {
        let plan = plan(json!({
            "http": {"latency": "2m", "error_ratio": 1.5, "error_status": 404},
            "outages": ["backend", "bakend"],
            "consumer": {"delay": "1h"},
        }));
        let fields: Vec<String> = plan.validate(Some(&["backend"])).into_iter().map(|error| error.field).collect();
        assert_eq!(fields, ["http.latency", "http.error_ratio", "http.error_status", "outages[1]", "consumer.delay"]);
    }

    #[test]
    fn a_schedule_excludes_fixed_faults_and_bounds_its_steps() {
        let plan = plan(json!({"outages": ["smtp"], "schedule": {"steps": [{"for": "0s"}]}}));
        let fields: Vec<String> = plan.validate(Some(&["smtp"])).into_iter().map(|error| error.field).collect();
        assert_eq!(fields, ["schedule", "schedule.steps[0].for"]);
    }

    #[test]
    fn a_schedule_walks_its_steps_and_repeats_or_ends() {
        let steps = json!([
            {"for": "10s", "faults": {"http": {"error_ratio": 1.0}}},
            {"for": "5s"},
        ]);
        let once = plan(json!({"schedule": {"steps": steps}}));
        let at = |plan: &FaultPlan, secs| plan.at(Duration::from_secs(secs));
        assert_eq!(at(&once, 0).step, Some(0));
        assert!(at(&once, 9).faults.http.is_some());
        assert_eq!(at(&once, 10).step, Some(1));
        assert!(at(&once, 12).faults.is_empty());
        assert_eq!(at(&once, 15), Position { faults: FaultSet::default(), step: None });

        let cycling = plan(json!({"schedule": {"repeat": true, "steps": steps}}));
        assert_eq!(at(&cycling, 16).step, Some(0));
        assert_eq!(at(&cycling, 31).step, Some(0));
        assert_eq!(at(&cycling, 41).step, Some(1));
    }

    #[test]
    fn a_plan_without_schedule_is_always_in_effect() {
        let plan = plan(json!({"outages": ["backend"]}));
        assert_eq!(plan.at(Duration::from_secs(86_400)).faults.outages, ["backend"]);
        assert!(!plan.at(Duration::ZERO).faults.is_empty());
    }
}
