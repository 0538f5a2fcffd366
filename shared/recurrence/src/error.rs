//! Why a rule is not acceptable.

use std::fmt;

/// Every problem found in one rule, in words a client developer can act on; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    problems: Vec<String>,
}

impl RuleError {
    pub(crate) fn single(problem: impl Into<String>) -> Self {
        Self { problems: vec![problem.into()] }
    }

    /// `None` when nothing was found, so callers can collect first and decide once.
    pub(crate) fn from_problems(problems: Vec<String>) -> Option<Self> {
        (!problems.is_empty()).then_some(Self { problems })
    }

    /// Each problem on its own, e.g. to report them as separate validation errors.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for RuleError {}
