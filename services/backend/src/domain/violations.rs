//! Validation outcomes that name every invalid field at once, so a client fixes its request in one round trip.

use std::fmt;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the field, e.g. `title` or `reminders[2].minutes`.
    pub field: String,
    /// What is wrong, in words a client developer can act on.
    pub message: String,
}

/// Every violation found in one input; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// Exactly one violation, for a check that stops at its first problem.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![Violation { field: field.into(), message: message.into() }])
    }

    /// Every violation, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// The violations by value, to become a response's `errors`.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    /// Whether some violation concerns `field` (exactly); handy in tests.
    pub fn mentions(&self, field: &str) -> bool {
        self.0.iter().any(|violation| violation.field == field)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| format!("{}: {}", v.field, v.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Violations {}

/// Collects violations while each field is checked, then yields either every one of them or the valid value.
#[derive(Debug, Default)]
pub struct Collector(Vec<Violation>);

impl Collector {
    /// A collector with nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation { field: field.into(), message: message.into() });
    }

    /// Keeps the value of a successful check, records the violations of a failed one.
    pub fn take<T>(&mut self, result: Result<T, Violations>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violations) => {
                self.0.extend(violations.0);
                None
            }
        }
    }

    /// Like [`Collector::take`] but prefixes every field path, for checks of nested values.
    pub fn take_nested<T>(&mut self, prefix: &str, result: Result<T, Violations>) -> Option<T> {
        let prefixed = result.map_err(|violations| {
            Violations(
                violations
                    .0
                    .into_iter()
                    .map(|v| Violation { field: format!("{prefix}{}", v.field), message: v.message })
                    .collect(),
            )
        });
        self.take(prefixed)
    }

    /// `Ok(build())` when nothing was recorded; `build` runs only then, so it may rely on every `take` having
    /// returned `Some`.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Violations> {
        if !self.0.is_empty() {
            return Err(Violations(self.0));
        }
        // `build` returns `None` only if a check forgot to record its violation: report that as a bug.
        build().ok_or_else(|| Violations::single("", "internal validation error"))
    }
}
