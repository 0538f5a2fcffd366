//! A service's Postgres schema name, checked once so it can be spliced into SQL text safely.

use std::fmt;

/// Postgres truncates identifiers beyond this many bytes (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The name of a schema a service owns, e.g. `reminder`.
///
/// Only lower-case ASCII letters, digits and `_`, starting with a letter or `_`, at most 63 bytes: such a name
/// means the same quoted or unquoted, so code may build SQL with it (`format!("{schema}.outbox")`) without any
/// escaping. Names are `&'static str`, never user input; declare them in a `const` so a bad one fails the build:
///
/// ```
/// use database::Schema;
/// const SCHEMA: Schema = Schema::new("reminder");
/// assert_eq!(SCHEMA.name(), "reminder");
/// assert_eq!(SCHEMA.qualify("outbox"), "reminder.outbox");
/// assert!(Schema::try_new("Robert'); DROP TABLE students;--").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schema(&'static str);

/// A schema name that is not a plain lower-case identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid schema name (lower-case ASCII letters, digits and `_`, not starting with a digit, 1–63 bytes)"
)]
pub struct InvalidSchema(pub &'static str);

impl Schema {
    /// The schema `name`; panics on an invalid name, which in a `const` is a compile error.
    pub const fn new(name: &'static str) -> Self {
        assert!(is_plain_identifier(name), "invalid schema name: lower-case ASCII letters, digits and `_` only");
        Self(name)
    }

    /// The schema `name`, or why it is not one.
    pub const fn try_new(name: &'static str) -> Result<Self, InvalidSchema> {
        if is_plain_identifier(name) { Ok(Self(name)) } else { Err(InvalidSchema(name)) }
    }

    /// The bare schema name, e.g. `reminder`; already checked, so it can go into SQL text unquoted.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// `schema.object`, for SQL text.
    pub fn qualify(self, object: &str) -> String {
        format!("{}.{object}", self.0)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const fn is_plain_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_IDENTIFIER_BYTES || bytes[0].is_ascii_digit() {
        return false;
    }
    // `const fn` cannot use iterators.
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_') {
            return false;
        }
        index += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lower_case_identifiers_are_schemas() {
        for name in ["backend", "reminder", "notification", "_private", "s3_v2"] {
            assert_eq!(Schema::try_new(name).map(Schema::name), Ok(name));
        }
    }

    #[test]
    fn anything_that_would_need_quoting_is_refused() {
        let too_long: &'static str = "a".repeat(64).leak();
        for name in ["", "Backend", "9lives", "with space", "dash-ed", "semi;colon", "quo\"te", "ümlaut", too_long] {
            assert_eq!(Schema::try_new(name), Err(InvalidSchema(name)), "{name:?}");
        }
    }
}
