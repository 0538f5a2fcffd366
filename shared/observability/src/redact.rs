//! Keeps secrets and personal data out of log lines.
//!
//! Two nets: a field whose *name* looks sensitive is replaced wholesale ([`is_sensitive_name`]), and
//! any free text is scrubbed of credential- and e-mail-shaped substrings ([`scrub`]) because values
//! leak through error messages and debug output that no field name warns about.

use std::borrow::Cow;

/// What a redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// Name fragments that mark a field as secret or personal. Matched case-insensitively as substrings,
/// so `x_api_key`, `db_password` and `user_email` are all caught; over-redaction is the safe mistake.
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "authorization",
    "token",
    "password",
    "passwd",
    "secret",
    "cookie",
    "api_key",
    "apikey",
    "api-key",
    "credential",
    "private_key",
    "email",
    "e_mail",
    "e-mail",
    "session",
    "signature",
];

/// Whether a field, header or variable with this name must never be logged verbatim.
pub fn is_sensitive_name(name: &str) -> bool {
    // Asked for every field of every log line: a name of usual length is lowercased on the stack, not the heap.
    let mut buffer = [0u8; 64];
    let longer_name;
    let name = match buffer.get_mut(..name.len()) {
        Some(lowered) => {
            lowered.copy_from_slice(name.as_bytes());
            lowered.make_ascii_lowercase();
            // ASCII lowercasing keeps valid UTF-8 valid.
            std::str::from_utf8(lowered).unwrap_or_default()
        }
        None => {
            longer_name = name.to_ascii_lowercase();
            longer_name.as_str()
        }
    };
    SENSITIVE_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// Replaces bearer/basic credentials, passwords in URLs (`postgres://user:[redacted]@host`),
/// JWT-shaped tokens and e-mail addresses inside `text`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    // Every pattern below needs one of these bytes (`@` of an address or a URL's credentials, the `b`/`B` of
    // bearer/basic, the `J` of a JWT's `eyJ`): one pass settles the common case, a line with nothing to hide.
    if !text.bytes().any(|byte| matches!(byte, b'@' | b'b' | b'B' | b'J')) {
        return Cow::Borrowed(text);
    }
    // Cheap pre-checks keep the common case (nothing to hide) allocation-free.
    let mut text = Cow::Borrowed(text);
    if text.contains("://") && text.contains('@') {
        text = Cow::Owned(redact_url_passwords(&text));
    }
    if contains_ignore_case(&text, "bearer") || contains_ignore_case(&text, "basic") {
        text = Cow::Owned(redact_auth_schemes(&text));
    }
    if text.contains("eyJ") {
        text = Cow::Owned(redact_jwts(&text));
    }
    if text.contains('@') {
        text = Cow::Owned(redact_emails(&text));
    }
    text
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Characters that can appear in a bearer token (RFC 6750 `b64token`) or basic credentials.
fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn is_base64url_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')
}

fn is_word_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// `Bearer abc.def` → `Bearer [redacted]` (same for `Basic`), whatever the case of the scheme.
fn redact_auth_schemes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut i = 0;
    while i < bytes.len() {
        let scheme_len = ["bearer", "basic"].iter().find_map(|scheme| {
            let end = i + scheme.len();
            let at_word_start = i == 0 || !is_word_char(bytes[i - 1]);
            (at_word_start && end < bytes.len() && bytes[i..end].eq_ignore_ascii_case(scheme.as_bytes()))
                .then_some(scheme.len())
        });
        let Some(scheme_len) = scheme_len else {
            i += 1;
            continue;
        };
        let mut token_start = i + scheme_len;
        while token_start < bytes.len() && (bytes[token_start] == b' ' || bytes[token_start] == b'\t') {
            token_start += 1;
        }
        let mut token_end = token_start;
        while token_end < bytes.len() && is_token_char(bytes[token_end]) {
            token_end += 1;
        }
        // Require whitespace after the scheme and a token of some substance, so prose such as
        // "basic usage" is left alone only when it cannot be a credential.
        if token_start > i + scheme_len && token_end - token_start >= 8 {
            out.push_str(&text[copied_up_to..token_start]);
            out.push_str(REDACTED);
            copied_up_to = token_end;
            i = token_end;
        } else {
            i += scheme_len;
        }
    }
    out.push_str(&text[copied_up_to..]);
    out
}

/// `scheme://user:secret@host` → `scheme://user:[redacted]@host`. The user name is kept: it helps
/// debugging and is not a credential on its own.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let authority_end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            out.push_str(&authority[..=colon]);
            out.push_str(REDACTED);
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// `eyJhbGciOi....eyJzdWIi....sig` (three base64url segments, header starting `{"`) → `[redacted]`.
fn redact_jwts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        let at_word_start = i == 0 || !is_base64url_char(bytes[i - 1]);
        if !(at_word_start && &bytes[i..i + 3] == b"eyJ") {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut segments = 1;
        while end < bytes.len() && (is_base64url_char(bytes[end]) || bytes[end] == b'.') {
            if bytes[end] == b'.' {
                segments += 1;
            }
            end += 1;
        }
        if segments >= 3 {
            out.push_str(&text[copied_up_to..i]);
            out.push_str(REDACTED);
            copied_up_to = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied_up_to..]);
    out
}

/// Non-ASCII bytes count as local-part characters (RFC 6531 allows UTF-8 there); scanning stops only
/// at an ASCII byte, so the cut always lands on a character boundary.
fn is_email_local_char(byte: u8) -> bool {
    !byte.is_ascii() || byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-')
}

/// `someone@example.com` → `[redacted]`. Needs a dotted domain, so `user@host` in a DSN without a
/// TLD is left alone (DSN passwords are caught by field-name redaction instead).
fn redact_emails(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for (at, _) in text.match_indices('@') {
        if at < copied_up_to {
            continue;
        }
        let mut start = at;
        while start > copied_up_to && is_email_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        // A sentence may end right after the address: "mail bob@example.com."
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let plausible_domain = domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty());
        if start < at && plausible_domain {
            out.push_str(&text[copied_up_to..start]);
            out.push_str(REDACTED);
            copied_up_to = end;
        }
    }
    out.push_str(&text[copied_up_to..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

    #[test]
    fn sensitive_names_are_recognised_in_any_case() {
        let long = format!("{}_Password", "a_very_long_field_name".repeat(4));
        for name in ["Authorization", "x_api_key", "DB_PASSWORD", "user_email", "Set-Cookie", "AUTH_JWT_SECRET", &long]
        {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in ["task_id", "status", "http.route", "duration_ms"] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn bearer_and_basic_credentials_are_scrubbed() {
        assert_eq!(scrub("Authorization: Bearer abcdefgh12345"), "Authorization: Bearer [redacted]");
        assert_eq!(scrub("header=bearer\tQWxhZGRpbjpvcGVu, next"), "header=bearer\t[redacted], next");
        assert_eq!(scrub("basic dXNlcjpwYXNzd29yZA=="), "basic [redacted]");
        assert_eq!(scrub("a basic idea"), "a basic idea");
    }

    #[test]
    fn jwt_shaped_strings_are_scrubbed_anywhere() {
        assert_eq!(scrub(&format!("token={JWT};")), "token=[redacted];");
        assert_eq!(scrub(&format!("Bearer {JWT}")), "Bearer [redacted]");
        assert_eq!(scrub("eyJ alone is fine"), "eyJ alone is fine");
    }

    #[test]
    fn passwords_in_urls_are_scrubbed() {
        assert_eq!(
            scrub("connect postgres://app:hunter2@db:5432/tasks failed; retry http://ok.example/x"),
            "connect postgres://app:[redacted]@db:5432/tasks failed; retry http://ok.example/x"
        );
        assert_eq!(scrub("amqp://user:p@ss:w0rd@mq/"), "amqp://user:[redacted]@mq/");
        assert_eq!(scrub("https://hooks.example.org/path?to=a@b"), "https://hooks.example.org/path?to=a@b");
    }

    #[test]
    fn email_addresses_are_scrubbed() {
        assert_eq!(
            scrub(r#"{"email":"alice.smith+tw@example.co.uk"} and bob@example.com."#),
            r#"{"email":"[redacted]"} and [redacted]."#
        );
        assert_eq!(scrub("postgres://app@localhost/db"), "postgres://app@localhost/db");
        assert_eq!(scrub("@handle and a@ and @b.c"), "@handle and a@ and @b.c");
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(scrub("GET /v1/tasks 200"), Cow::Borrowed(_)));
    }

    #[test]
    fn non_ascii_text_survives_scrubbing() {
        assert_eq!(scrub("grüße an zoë@example.com — danke"), "grüße an [redacted] — danke");
    }
}
