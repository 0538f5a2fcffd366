//! Typed configuration from environment variables (12-factor).
//!
//! [`Env`] reads variables, converts them with [`FromStr`] and *records* every missing or invalid one
//! instead of stopping at the first, so an operator fixes a deployment in one round trip. The
//! recommended entry point is [`Env::load`]: its closure reads every variable first and combines them
//! with `?` at the end, so a half-built config can never escape.
//!
//! ```
//! use std::time::Duration;
//! use observability::config::{ConfigError, DurationValue, Env, Secret};
//!
//! #[derive(Debug)]
//! struct Config {
//!     database_url: Secret,
//!     port: u16,
//!     request_timeout: Duration,
//! }
//!
//! impl Config {
//!     fn from_env(env: Env) -> Result<Self, ConfigError> {
//!         env.load(|env| {
//!             // Read everything first: each call records its own problem ...
//!             let database_url = env.required::<Secret>("DATABASE_URL");
//!             let port = env.with_default("PORT", 8080u16);
//!             let request_timeout = env.with_default("REQUEST_TIMEOUT", DurationValue::from_secs(10));
//!             // ... then assemble; `?` only short-circuits once every variable has been looked at.
//!             Some(Config { database_url: database_url?, port, request_timeout: request_timeout.get() })
//!         })
//!     }
//! }
//!
//! let env = Env::from_pairs([("PORT".to_owned(), "eighty".to_owned())]);
//! let error = Config::from_env(env).unwrap_err();
//! let report = error.to_string();
//! assert!(report.contains("DATABASE_URL"));
//! assert!(report.contains("PORT"));
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Display};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::redact::{is_sensitive_name, scrub};

/// A source of environment variables that collects every problem it meets.
#[derive(Debug)]
pub struct Env {
    vars: HashMap<String, String>,
    /// Variables whose value is not valid Unicode: reported when read, never silently "unset".
    not_unicode: HashSet<String>,
    problems: Vec<ConfigProblem>,
}

impl Env {
    /// The variables of this process. Values that are not valid Unicode are reported when read.
    pub fn from_process() -> Self {
        let mut vars = HashMap::new();
        let mut not_unicode = HashSet::new();
        for (name, value) in std::env::vars_os() {
            // A variable whose *name* is not Unicode cannot be one we look up.
            let Ok(name) = name.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    vars.insert(name, value);
                }
                Err(_) => {
                    not_unicode.insert(name);
                }
            }
        }
        Self { vars, not_unicode, problems: Vec::new() }
    }

    /// A fixed set of variables, for tests and for layering defaults.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { vars: pairs.into_iter().collect(), not_unicode: HashSet::new(), problems: Vec::new() }
    }

    /// The raw value of a variable; an empty value counts as unset (a common deployment mistake).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|value| !value.trim().is_empty())
    }

    /// A variable that must be present and valid. Records a problem and returns `None` otherwise.
    pub fn required<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        if self.raw(name).is_none() && !self.not_unicode.contains(name) {
            self.problems.push(ConfigProblem::Missing { name: name.to_owned() });
            return None;
        }
        self.optional(name)
    }

    /// A variable that may be unset (`None`); a present but invalid value is recorded as a problem.
    pub fn optional<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        if self.not_unicode.contains(name) {
            let reason = "value is not valid UTF-8".to_owned();
            self.problems.push(ConfigProblem::Invalid { name: name.to_owned(), value: None, reason });
            return None;
        }
        let raw = self.raw(name)?.trim().to_owned();
        match raw.parse::<T>() {
            Ok(value) => Some(value),
            Err(error) => {
                self.problems.push(ConfigProblem::invalid(name, &raw, error.to_string()));
                None
            }
        }
    }

    /// A variable with a default for when it is unset; an invalid value is recorded (and the default
    /// returned so reading can go on — [`Env::finish`] still fails).
    pub fn with_default<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        self.optional(name).unwrap_or(default)
    }

    /// Records a problem found by a cross-variable check (e.g. "max must exceed min").
    pub fn invalid(&mut self, name: &str, reason: impl Into<String>) {
        self.problems.push(ConfigProblem::Invalid { name: name.to_owned(), value: None, reason: reason.into() });
    }

    /// Whether any problem was recorded so far.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// `Ok` when every variable read so far was fine, otherwise an error naming each bad one.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }

    /// Reads a whole config in one closure and returns it only when every variable was valid.
    ///
    /// The closure reads all its variables, then assembles the value with `?` on the `Option`s; the
    /// config escapes only if no problem was recorded, so a partially valid config is unrepresentable
    /// to the caller.
    pub fn load<T>(mut self, build: impl FnOnce(&mut Env) -> Option<T>) -> Result<T, ConfigError> {
        let built = build(&mut self);
        match (built, self.problems.is_empty()) {
            (Some(config), true) => Ok(config),
            (None, true) => Err(ConfigError {
                // A closure that bails without a recorded problem is a programming error; say so.
                problems: vec![ConfigProblem::Invalid {
                    name: "(config)".to_owned(),
                    value: None,
                    reason: "configuration could not be assembled, but no variable was reported".to_owned(),
                }],
            }),
            (_, false) => Err(ConfigError { problems: self.problems }),
        }
    }
}

/// One bad or missing variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// A required variable is unset, empty or only whitespace.
    Missing {
        /// The variable's name, e.g. `DATABASE_URL`.
        name: String,
    },
    /// `value` is `None` for variables whose name looks secret, so a report never prints a credential.
    Invalid {
        /// The variable's name; `(config)` when a [`Env::load`] closure gave up without recording a problem.
        name: String,
        /// The trimmed value with embedded credentials scrubbed; also `None` for a value that is not UTF-8 and for
        /// problems recorded with [`Env::invalid`].
        value: Option<String>,
        /// Why the value was refused: the parser's message or the cross-variable check's explanation.
        reason: String,
    },
}

impl ConfigProblem {
    fn invalid(name: &str, raw: &str, reason: impl Into<String>) -> Self {
        // Secret-looking names never echo their value; others are scrubbed (a DSN's password, say).
        let value = (!is_sensitive_name(name)).then(|| scrub(raw).into_owned());
        Self::Invalid { name: name.to_owned(), value, reason: reason.into() }
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Missing { name } | Self::Invalid { name, .. } => name,
        }
    }
}

impl Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name } => write!(f, "{name}: required but not set"),
            Self::Invalid { name, value: Some(value), reason } => {
                write!(f, "{name}: invalid value {value:?}: {reason}")
            }
            Self::Invalid { name, value: None, reason } => write!(f, "{name}: invalid value: {reason}"),
        }
    }
}

/// Every configuration problem found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Every problem found, in the order recorded; [`Env`] never returns an empty list.
    pub problems: Vec<ConfigProblem>,
}

impl std::error::Error for ConfigError {}

impl Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// A credential: held in a `secrecy::SecretString` (zeroed when dropped) and never shown by `Debug` or `Display`,
/// so never in a log line. A newtype because [`Env`] parses variables through `FromStr`, which `SecretString` lacks.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself; call this only where the value is handed to the thing that needs it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

impl Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`, `7d`, also combined (`1h 30m`); `0s` allowed. Parsed
/// by `humantime`; a bare number is refused, since seconds and milliseconds would both be guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationValue(Duration);

impl DurationValue {
    /// Wraps `duration`, e.g. as a default for [`Env::with_default`]; `Display` drops anything below 1 ms.
    pub const fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// `millis` milliseconds, usable in a `const`.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// `secs` seconds, usable in a `const`.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The plain `Duration`, for storing in a config struct.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<DurationValue> for Duration {
    fn from(value: DurationValue) -> Self {
        value.0
    }
}

impl Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) { write!(f, "{}s", millis / 1000) } else { write!(f, "{millis}ms") }
    }
}

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// Empty, a bare number without unit (`5`), a sign or other stray character (`-1s`), or no number (`soon`).
    #[error("expected a whole number followed by a unit (ms, s, m, h, d), e.g. `500ms` or `5s`")]
    Malformed,
    /// A number followed by a unit `humantime` does not know, e.g. `2 parsecs`; holds that unit.
    #[error("unknown unit `{0}`; use ms, s, m, h or d")]
    UnknownUnit(String),
    /// The number or the total does not fit in a `Duration`.
    #[error("duration is too large")]
    Overflow,
}

impl FromStr for DurationValue {
    type Err = DurationParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        use humantime::DurationError;
        humantime::parse_duration(text.trim()).map(Self).map_err(|error| match error {
            // A bare number (`5`) has no unit: ambiguous, so refused rather than guessed.
            DurationError::UnknownUnit { unit, .. } if unit.is_empty() => DurationParseError::Malformed,
            DurationError::UnknownUnit { unit, .. } => DurationParseError::UnknownUnit(unit),
            DurationError::NumberOverflow => DurationParseError::Overflow,
            DurationError::Empty | DurationError::NumberExpected(_) | DurationError::InvalidCharacter(_) => {
                DurationParseError::Malformed
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn every_bad_or_missing_variable_is_named_once() {
        let mut env = env(&[("PORT", "http"), ("TIMEOUT", "5 parsecs"), ("WORKERS", "4"), ("EMPTY", "  ")]);
        let port: Option<u16> = env.required("PORT");
        let url: Option<String> = env.required("DATABASE_URL");
        let timeout: Option<DurationValue> = env.optional("TIMEOUT");
        let workers: u32 = env.with_default("WORKERS", 1);
        let empty: Option<String> = env.required("EMPTY");
        assert_eq!((port, url, timeout, workers, empty), (None, None, None, 4, None));

        let error = env.finish().unwrap_err();
        let names: Vec<&str> = error.problems.iter().map(ConfigProblem::name).collect();
        assert_eq!(names, ["PORT", "DATABASE_URL", "TIMEOUT", "EMPTY"]);
        let report = error.to_string();
        assert_eq!(report.lines().count(), 5, "{report}");
        assert!(report.contains("PORT: invalid value \"http\""), "{report}");
        assert!(report.contains("DATABASE_URL: required but not set"), "{report}");
        assert!(report.contains("TIMEOUT: invalid value \"5 parsecs\""), "{report}");
    }

    #[test]
    fn valid_environment_finishes_cleanly() {
        let mut env = env(&[("PORT", "8080")]);
        assert_eq!(env.required::<u16>("PORT"), Some(8080));
        assert_eq!(env.optional::<u16>("UNSET"), None);
        assert_eq!(env.with_default("ALSO_UNSET", 7u8), 7);
        assert!(env.finish().is_ok());
    }

    #[test]
    fn load_returns_config_only_when_all_variables_are_valid() {
        let build = |env: &mut Env| {
            let a = env.required::<u16>("A");
            let b = env.required::<u16>("B");
            Some((a?, b?))
        };
        assert_eq!(env(&[("A", "1"), ("B", "2")]).load(build), Ok((1, 2)));
        let error = env(&[("A", "x")]).load(build).unwrap_err();
        assert_eq!(error.problems.len(), 2);
    }

    #[test]
    fn load_reports_a_closure_that_bails_silently() {
        let error = env(&[]).load(|_| None::<()>).unwrap_err();
        assert_eq!(error.problems.len(), 1);
    }

    #[test]
    fn invalid_secret_values_are_not_echoed() {
        let mut env = env(&[("API_TOKEN", "hunter2")]);
        let _: Option<u32> = env.required("API_TOKEN");
        let report = env.finish().unwrap_err().to_string();
        assert!(report.contains("API_TOKEN"));
        assert!(!report.contains("hunter2"), "{report}");
    }

    #[test]
    fn invalid_values_are_scrubbed_before_echoing() {
        struct NeverValid;
        impl FromStr for NeverValid {
            type Err = &'static str;
            fn from_str(_: &str) -> Result<Self, Self::Err> {
                Err("unsupported scheme")
            }
        }
        let mut env = env(&[("DATABASE_URL", "mysql://app:hunter2@db/tasks")]);
        let _: Option<NeverValid> = env.required("DATABASE_URL");
        let report = env.finish().unwrap_err().to_string();
        assert!(report.contains("DATABASE_URL: invalid value \"mysql://app:[redacted]@db/tasks\""), "{report}");
        assert!(!report.contains("hunter2"), "{report}");
    }

    #[test]
    fn secret_never_prints_its_value() {
        let secret: Secret = "s3cr3t".parse().unwrap();
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "s3cr3t");
    }

    #[test]
    fn durations_need_a_unit() {
        let parse = |text: &str| text.parse::<DurationValue>().map(DurationValue::get);
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("5"), Err(DurationParseError::Malformed));
        assert_eq!(parse("ms"), Err(DurationParseError::Malformed));
        assert_eq!(parse("-5s"), Err(DurationParseError::Malformed));
        assert_eq!(parse("5parsecs"), Err(DurationParseError::UnknownUnit("parsecs".into())));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("99999999999999999999s"), Err(DurationParseError::Overflow));
        assert_eq!(DurationValue::from_millis(1500).to_string(), "1500ms");
        assert_eq!(DurationValue::from_secs(3).to_string(), "3s");
    }
}
