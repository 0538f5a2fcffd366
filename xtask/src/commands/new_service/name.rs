//! A new service's name, validated once: everything derived from it (crate, binary, schema, metric prefix,
//! compose and chart keys) is then valid by construction.

use std::fmt;

/// Rust's strict and reserved keywords (2024 edition) and the names a crate may not take: a crate named after
/// one of them could not be imported as `use NAME::…`.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "test",
];

/// Names already taken by the workspace's shared crates, the test crate and tooling: a service must not shadow them.
const TAKEN: &[&str] = &[
    "observability",
    "events",
    "messaging",
    "testkit",
    "recurrence",
    "database",
    "outbox",
    "e2e",
    "tests",
    "xtask",
    "shared",
    "services",
];

/// Longest name accepted: it becomes a Kubernetes resource name (`<release>-taskwatch-<name>`, ≤ 63) and a
/// Postgres schema (≤ 63), with room for the release prefix.
const MAX_LEN: usize = 30;

/// A lowercase kebab-case service name such as `audit-log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("the name is empty")]
    Empty,
    #[error("`{0}` is longer than {MAX_LEN} characters")]
    TooLong(String),
    #[error("`{0}` is not lowercase kebab-case (a-z, 0-9 and single `-` between words, starting with a letter)")]
    NotKebabCase(String),
    #[error("`{0}` is a Rust keyword or a reserved crate name")]
    Reserved(String),
    #[error("`{0}` is already a crate of this workspace")]
    Taken(String),
}

impl ServiceName {
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if name.is_empty() {
            return Err(InvalidName::Empty);
        }
        if name.len() > MAX_LEN {
            return Err(InvalidName::TooLong(name.to_owned()));
        }
        let kebab = name.split('-').all(|word| {
            !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        }) && name.as_bytes()[0].is_ascii_lowercase();
        if !kebab {
            return Err(InvalidName::NotKebabCase(name.to_owned()));
        }
        if RESERVED.contains(&name) || RESERVED.contains(&name.replace('-', "_").as_str()) {
            return Err(InvalidName::Reserved(name.to_owned()));
        }
        if TAKEN.contains(&name) {
            return Err(InvalidName::Taken(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The kebab-case name: package, binary, directory, compose service, chart key, Kafka group.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The snake_case name: the Rust crate identifier, the Postgres schema, the metric prefix.
    pub fn snake(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_names_are_accepted_and_snake_cased() {
        for (name, snake) in [("audit", "audit"), ("audit-log", "audit_log"), ("a2-b3", "a2_b3")] {
            let parsed = ServiceName::parse(name).unwrap();
            assert_eq!(parsed.as_str(), name);
            assert_eq!(parsed.snake(), snake);
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        for name in ["Audit", "audit_log", "-audit", "audit-", "audit--log", "2fa", "audit log", "audit.log", "é"] {
            assert_eq!(ServiceName::parse(name), Err(InvalidName::NotKebabCase(name.to_owned())), "{name}");
        }
        assert_eq!(ServiceName::parse(""), Err(InvalidName::Empty));
        assert!(matches!(ServiceName::parse(&"a".repeat(MAX_LEN + 1)), Err(InvalidName::TooLong(_))));
    }

    #[test]
    fn keywords_and_workspace_crates_are_refused() {
        for name in ["fn", "type", "self", "async", "gen", "std", "proc-macro"] {
            assert!(matches!(ServiceName::parse(name), Err(InvalidName::Reserved(_))), "{name}");
        }
        for name in ["events", "xtask", "testkit"] {
            assert!(matches!(ServiceName::parse(name), Err(InvalidName::Taken(_))), "{name}");
        }
    }
}
