//! The metrics this crate emits: one documented list that seeds the telemetry registry.
//!
//! Names follow the OpenTelemetry semantic conventions rendered the Prometheus way (dots become
//! underscores, the unit is a suffix); Taskwatch's own metrics are prefixed `taskwatch_`. Every label
//! value is bounded: route templates, status codes, downstream names, check names — never raw paths
//! or ids.

/// A metric's registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    /// The Prometheus name, e.g. `http_server_request_duration_seconds`; counters end in `_total`, histograms in
    /// `_seconds`.
    pub name: &'static str,
    /// Which `describe_*` registration and `# TYPE` the metric gets.
    pub kind: MetricKind,
    /// The unit in words (`seconds`, `requests`, `state`); documentation only: [`describe`] registers every
    /// histogram in seconds and the other kinds without a unit.
    pub unit: &'static str,
    /// The label keys the metric is recorded with; each takes a bounded set of values.
    pub labels: &'static [&'static str],
    /// The `# HELP` text on `/metrics`.
    pub help: &'static str,
}

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever goes up (restarting at 0 with the process); the name ends in `_total`.
    Counter,
    /// A current value that goes up and down.
    Gauge,
    /// A distribution of durations in seconds, bucketed as [`crate::metrics`] configures.
    Histogram,
}

impl MetricKind {
    /// The Prometheus `# TYPE` keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Histogram · seconds · `http_request_method`, `http_route`, `http_response_status_code`.
/// Time from the request reaching the server layer to the response head leaving it. `http_route` is
/// the matched route template (e.g. `/v1/tasks/{id}`) or `unmatched`.
pub const HTTP_SERVER_REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
/// Gauge · requests · `http_request_method`. Requests currently being served.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Histogram · seconds · `downstream`, `http_request_method`, `http_response_status_code` (or
/// `error` when no response arrived). One observation per attempt, retries included.
pub const HTTP_CLIENT_REQUEST_DURATION_SECONDS: &str = "http_client_request_duration_seconds";
/// Gauge · state · `downstream`. Circuit breaker state: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_BREAKER_STATE: &str = "taskwatch_circuit_breaker_state";
/// Counter · transitions · `downstream`, `to_state` (`closed`, `half_open`, `open`).
pub const CIRCUIT_BREAKER_TRANSITIONS_TOTAL: &str = "taskwatch_circuit_breaker_transitions_total";
/// Counter · calls · `downstream`. Calls refused without touching the network because the circuit was open.
pub const CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL: &str = "taskwatch_circuit_breaker_rejected_calls_total";
/// Counter · responses · `downstream`. Reads answered from the fallback cache because the downstream failed.
pub const CLIENT_FALLBACK_CACHE_HITS_TOTAL: &str = "taskwatch_client_fallback_cache_hits_total";
/// Gauge · status · `check`. Last readiness check result: 1 up, 0 down.
pub const HEALTH_CHECK_STATUS: &str = "taskwatch_health_check_status";
/// Gauge · state · `fault` (`http_latency`, `http_errors`, `consumer_delay`, `consumer_stuck`,
/// `outage_<dependency>`). 1 while a demo fault is switched on through `/admin/faults`, else 0.
pub const FAULT_ACTIVE: &str = "taskwatch_fault_active";

/// Every metric above, with its type, unit, labels and meaning.
pub const REGISTRY: &[MetricSpec] = &[
    MetricSpec {
        name: HTTP_SERVER_REQUEST_DURATION_SECONDS,
        kind: MetricKind::Histogram,
        unit: "seconds",
        labels: &["http_request_method", "http_route", "http_response_status_code"],
        help: "Duration of HTTP server requests by method, route template and status code.",
    },
    MetricSpec {
        name: HTTP_SERVER_ACTIVE_REQUESTS,
        kind: MetricKind::Gauge,
        unit: "requests",
        labels: &["http_request_method"],
        help: "HTTP server requests currently in flight.",
    },
    MetricSpec {
        name: HTTP_CLIENT_REQUEST_DURATION_SECONDS,
        kind: MetricKind::Histogram,
        unit: "seconds",
        labels: &["downstream", "http_request_method", "http_response_status_code"],
        help: "Duration of outgoing HTTP request attempts by downstream, method and status code (or error).",
    },
    MetricSpec {
        name: CIRCUIT_BREAKER_STATE,
        kind: MetricKind::Gauge,
        unit: "state",
        labels: &["downstream"],
        help: "Circuit breaker state per downstream: 0 closed, 1 half-open, 2 open.",
    },
    MetricSpec {
        name: CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
        kind: MetricKind::Counter,
        unit: "transitions",
        labels: &["downstream", "to_state"],
        help: "Circuit breaker state transitions per downstream and target state.",
    },
    MetricSpec {
        name: CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL,
        kind: MetricKind::Counter,
        unit: "calls",
        labels: &["downstream"],
        help: "Calls rejected without a network attempt because the circuit was open.",
    },
    MetricSpec {
        name: CLIENT_FALLBACK_CACHE_HITS_TOTAL,
        kind: MetricKind::Counter,
        unit: "responses",
        labels: &["downstream"],
        help: "Reads served from the short-lived fallback cache because the downstream failed or was open.",
    },
    MetricSpec {
        name: HEALTH_CHECK_STATUS,
        kind: MetricKind::Gauge,
        unit: "status",
        labels: &["check"],
        help: "Result of the last readiness check: 1 up, 0 down.",
    },
    MetricSpec {
        name: FAULT_ACTIVE,
        kind: MetricKind::Gauge,
        unit: "state",
        labels: &["fault"],
        help: "Whether a demo fault injected through /admin/faults is on: 1 on, 0 off.",
    },
];

/// Registers every metric's help text with the recorder so `/metrics` carries `# HELP` lines.
pub fn describe_all() {
    describe(REGISTRY);
}

/// Registers the help text of `specs` (any crate's registry) with the installed recorder.
pub fn describe(specs: &[MetricSpec]) {
    for spec in specs {
        let help = spec.help;
        match spec.kind {
            MetricKind::Counter => metrics::describe_counter!(spec.name, help),
            MetricKind::Gauge => metrics::describe_gauge!(spec.name, help),
            MetricKind::Histogram => metrics::describe_histogram!(spec.name, metrics::Unit::Seconds, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_well_formed() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for spec in REGISTRY {
            assert!(spec.name.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_'), "{}", spec.name);
            assert_eq!(spec.kind == MetricKind::Counter, spec.name.ends_with("_total"), "{}", spec.name);
            assert_eq!(spec.kind == MetricKind::Histogram, spec.name.ends_with("_seconds"), "{}", spec.name);
        }
    }
}
