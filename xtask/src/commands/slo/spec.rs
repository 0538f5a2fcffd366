//! The SLO spec (`monitoring/prometheus/slos.yaml`): parsed, then validated into [`Slo`]s the rule renderer can
//! trust (names usable as labels and alert names, exact decimal objectives, counter selectors of the SLO's own
//! service).

use std::collections::BTreeSet;

use serde::Deserialize;

/// The only SLO period the alert policy is written for: the SRE workbook's burn-rate factors assume 30 days.
pub const PERIOD: &str = "30d";

/// Objectives are given in percent with at most this many decimals (99.9, 99.95, 99.999 …), so every ratio the
/// rules need is an exact decimal and the output never carries float noise such as `0.0010000000000000009`.
const OBJECTIVE_DECIMALS: i32 = 4;
/// Ratios are rendered in millionths: percent × 10^4.
const RATIO_SCALE: u32 = 6;
const RATIO_ONE: u64 = 1_000_000;

/// Why the spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("not valid YAML for an SLO spec")]
    Yaml(#[from] serde_norway::Error),
    #[error("period `{0}` is not supported: the burn-rate alerts are the SRE workbook's for a {PERIOD} budget")]
    Period(String),
    #[error("the spec lists no SLO")]
    Empty,
    #[error("SLO name `{0}` must be kebab-case (lowercase letters and digits separated by single dashes)")]
    Name(String),
    #[error("SLO `{0}` is defined twice")]
    Duplicate(String),
    #[error("SLO `{slo}`: service `{service}` must be a job name (lowercase letters, digits, dashes)")]
    Service { slo: String, service: String },
    #[error(
        "SLO `{slo}`: objective {objective} must be a percentage above 0 and below 100 with at most {OBJECTIVE_DECIMALS} decimals"
    )]
    Objective { slo: String, objective: f64 },
    #[error("SLO `{0}`: description must be one non-empty line without quotes or backslashes")]
    Description(String),
    #[error("SLO `{0}`: the SLI needs exactly one of `errors` or `good`, and `total`, each a non-empty list")]
    Events(String),
    #[error("SLO `{0}`: min_events must be at least 1 (0 would let a single bad event page)")]
    MinEvents(String),
    #[error("SLO `{slo}`: selector `{selector}` {problem}")]
    Selector { slo: String, selector: String, problem: &'static str },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    period: String,
    /// The default minimum of events an alert's long window must count before it may fire.
    min_events: u32,
    slos: Vec<RawSlo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: String,
    service: String,
    objective: f64,
    description: String,
    /// Overrides the spec's `min_events` for this SLO.
    #[serde(default)]
    min_events: Option<u32>,
    sli: RawSli,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSli {
    #[serde(default)]
    errors: Vec<String>,
    #[serde(default)]
    good: Vec<String>,
    #[serde(default)]
    total: Vec<String>,
}

/// One validated SLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slo {
    /// Kebab-case name: the `slo` label.
    pub name: String,
    /// The service (scrape job) it measures: the `service` label.
    pub service: String,
    /// The objective as a ratio, exact, e.g. `0.999`.
    pub objective: String,
    /// The error budget (1 − objective) as a ratio, exact, e.g. `0.001`.
    pub error_budget: String,
    /// The objective in percent as written, e.g. `99.9`.
    pub objective_percent: String,
    /// The error budget in percent, e.g. `0.1`.
    pub error_budget_percent: String,
    pub description: String,
    /// Counted events that are bad, or good.
    pub events: Events,
    /// Counted events in all.
    pub total: Vec<String>,
    /// How many events an alert's long window must count before the alert may fire.
    pub min_events: u32,
}

/// How the SLI counts: bad events directly, or good ones (the error ratio is then 1 − good / total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Events {
    Errors(Vec<String>),
    Good(Vec<String>),
}

impl Slo {
    /// `backend-api-availability` → `BackendApiAvailability`.
    pub fn pascal_name(&self) -> String {
        self.name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| first.to_ascii_uppercase().to_string() + chars.as_str())
            })
            .collect()
    }

    /// The burn-rate alert's name, which is also its runbook's file stem.
    pub fn alert_name(&self) -> String {
        format!("{}ErrorBudgetBurn", self.pascal_name())
    }
}

/// Parses and validates the spec's text.
pub fn parse(text: &str) -> Result<Vec<Slo>, SpecError> {
    let raw: RawSpec = serde_norway::from_str(text)?;
    if raw.period != PERIOD {
        return Err(SpecError::Period(raw.period));
    }
    if raw.slos.is_empty() {
        return Err(SpecError::Empty);
    }
    let mut seen = BTreeSet::new();
    let mut slos = Vec::with_capacity(raw.slos.len());
    for slo in raw.slos {
        let slo = validate(slo, raw.min_events)?;
        if !seen.insert(slo.name.clone()) {
            return Err(SpecError::Duplicate(slo.name));
        }
        slos.push(slo);
    }
    Ok(slos)
}

fn validate(raw: RawSlo, default_min_events: u32) -> Result<Slo, SpecError> {
    let RawSlo { name, service, objective, description, min_events, sli } = raw;
    let min_events = min_events.unwrap_or(default_min_events);
    if min_events == 0 {
        return Err(SpecError::MinEvents(name));
    }
    if !is_kebab(&name) {
        return Err(SpecError::Name(name));
    }
    if !is_kebab(&service) {
        return Err(SpecError::Service { slo: name, service });
    }
    let Some(objective_units) = objective_units(objective) else {
        return Err(SpecError::Objective { slo: name, objective });
    };
    if description.trim().is_empty() || description.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(SpecError::Description(name));
    }
    let events = match (sli.errors.is_empty(), sli.good.is_empty()) {
        (false, true) => Events::Errors(sli.errors),
        (true, false) => Events::Good(sli.good),
        _ => return Err(SpecError::Events(name)),
    };
    if sli.total.is_empty() {
        return Err(SpecError::Events(name));
    }
    let counted = match &events {
        Events::Errors(selectors) | Events::Good(selectors) => selectors,
    };
    for selector in counted.iter().chain(&sli.total) {
        check_selector(selector, &service).map_err(|problem| SpecError::Selector {
            slo: name.clone(),
            selector: selector.clone(),
            problem,
        })?;
    }
    let budget_units = RATIO_ONE - objective_units;
    Ok(Slo {
        objective: decimal(objective_units, RATIO_SCALE),
        error_budget: decimal(budget_units, RATIO_SCALE),
        objective_percent: decimal(objective_units, RATIO_SCALE - 2),
        error_budget_percent: decimal(budget_units, RATIO_SCALE - 2),
        name,
        service,
        description: description.trim().to_owned(),
        events,
        total: sli.total,
        min_events,
    })
}

/// The objective in millionths, when it is a percentage in (0, 100) with at most [`OBJECTIVE_DECIMALS`] decimals.
fn objective_units(percent: f64) -> Option<u64> {
    if !percent.is_finite() || percent <= 0.0 || percent >= 100.0 {
        return None;
    }
    let scaled = percent * 10f64.powi(OBJECTIVE_DECIMALS);
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return None;
    }
    // In (0, 10^6) after the range check above, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let units = rounded as u64;
    (units > 0 && units < RATIO_ONE).then_some(units)
}

/// `units` × 10^-`scale` as the shortest exact decimal: (999000, 6) → `0.999`, (99900, 3) → `99.9`.
fn decimal(units: u64, scale: u32) -> String {
    let divisor = 10u64.pow(scale);
    let whole = units / divisor;
    let fraction = units % divisor;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = scale as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn is_kebab(text: &str) -> bool {
    !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .split('-')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// A selector the renderer can wrap in `sum(rate(…[window]))`: one counter (a `_total`, or a histogram's
/// `_count`/`_bucket`) with matchers that include the SLO's own `job`.
fn check_selector(selector: &str, service: &str) -> Result<(), &'static str> {
    let name_end = selector.find('{').ok_or("needs label matchers: `metric{job=\"…\", …}`")?;
    let name = &selector[..name_end];
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !name_ok {
        return Err("does not start with a metric name");
    }
    if !(name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_bucket")) {
        return Err("must select a counter (`_total`, or a histogram's `_count`/`_bucket`)");
    }
    if !selector.ends_with('}') || selector.contains(['[', '\n', '\r']) {
        return Err("must be a plain instant-vector selector on one line (the generator adds the range)");
    }
    if name.ends_with("_bucket") && !selector.contains("le=") {
        return Err("selects a histogram bucket without an `le` matcher");
    }
    if !selector.contains(&format!("job=\"{service}\"")) {
        return Err("must match the SLO's service by `job=\"<service>\"`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
period: 30d
min_events: 20
slos:
  - name: api-availability
    service: api
    objective: 99.95
    description: Requests without a 5xx.
    sli:
      errors: ['http_requests_total{job="api", code=~"5.."}']
      total: ['http_requests_total{job="api"}']
"#;

    fn with(from: &str, to: &str) -> String {
        assert!(VALID.contains(from), "{from}");
        VALID.replace(from, to)
    }

    #[test]
    fn a_valid_spec_yields_exact_decimals_and_names() {
        let slos = parse(VALID).unwrap();
        let slo = &slos[0];
        assert_eq!(slo.objective, "0.9995");
        assert_eq!(slo.error_budget, "0.0005");
        assert_eq!(slo.objective_percent, "99.95");
        assert_eq!(slo.error_budget_percent, "0.05");
        assert_eq!(slo.alert_name(), "ApiAvailabilityErrorBudgetBurn");
        assert!(matches!(&slo.events, Events::Errors(selectors) if selectors.len() == 1));
        assert_eq!(slo.min_events, 20);
        let overridden = parse(&with("    sli:", "    min_events: 5\n    sli:")).unwrap();
        assert_eq!(overridden[0].min_events, 5);
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(999_000, 6), "0.999");
        assert_eq!(decimal(1_000, 6), "0.001");
        assert_eq!(decimal(990_000, 4), "99");
        assert_eq!(decimal(10, 6), "0.00001");
        assert_eq!(objective_units(99.9), Some(999_000));
        assert_eq!(objective_units(99.999), Some(999_990));
        assert_eq!(objective_units(99.12345), None);
        assert_eq!(objective_units(100.0), None);
        assert_eq!(objective_units(0.0), None);
    }

    #[test]
    fn invalid_specs_are_refused_with_the_reason() {
        let cases = [
            (with("period: 30d", "period: 28d"), "period"),
            (with("name: api-availability", "name: Api_Availability"), "kebab-case"),
            (with("objective: 99.95", "objective: 100"), "objective"),
            (with("objective: 99.95", "objective: 99.99999"), "objective"),
            (with("Requests without a 5xx.", "\"\""), "description"),
            (with("total: ['http_requests_total{job=\"api\"}']", "total: []"), "exactly one"),
            (with("errors:", "good: ['http_requests_total{job=\"api\"}']\n      errors:"), "exactly one"),
            (with("{job=\"api\", code", "{job=\"web\", code"), "job="),
            (with("{job=\"api\"}']", "{job=\"api\"}[5m]']"), "instant-vector"),
            (with("http_requests_total{job=\"api\"}'", "http_in_flight{job=\"api\"}'"), "counter"),
            (with("total: [", "bucket: [\n      total: ["), "unknown field"),
            (with("    sli:", "    min_events: 0\n    sli:"), "min_events"),
            (with("min_events: 20\n", ""), "min_events"),
        ];
        for (text, expected) in cases {
            // With its source chain, as `cargo xtask slo` reports it.
            let error = format!("{:#}", anyhow::Error::new(parse(&text).expect_err(&text)));
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        let slos = VALID.split_once("slos:\n").unwrap().1;
        let text = format!("{VALID}{slos}");
        assert!(matches!(parse(&text), Err(SpecError::Duplicate(name)) if name == "api-availability"));
    }
}
