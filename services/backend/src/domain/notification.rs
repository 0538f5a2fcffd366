//! A user's notification settings: where reminders are delivered.

use std::net::IpAddr;

use url::{Host, Url};

use super::violations::{Collector, Violations};

/// The longest e-mail address accepted, in bytes after trimming (the SMTP path limit).
pub const EMAIL_MAX_LEN: usize = 254;
/// The longest webhook URL accepted, in bytes as sent.
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

/// A syntactically plausible e-mail address (`local@domain.tld`); deliverability is the mail server's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Trims `raw` and checks its shape; a violation on `email` when it is too long or not `local@domain.tld`.
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let invalid = |why: &str| Violations::single("email", why.to_owned());
        let trimmed = raw.trim();
        if trimmed.len() > EMAIL_MAX_LEN {
            return Err(invalid("must be at most 254 characters"));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(invalid("must look like name@example.com"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid("must look like name@example.com"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The address, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which webhook destinations a user may save.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookPolicy {
    /// https only, and never `localhost` or a literal internal address: what production runs.
    #[default]
    PublicHttpsOnly,
    /// Also http and internal addresses (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`): a laptop or a test whose receiver
    /// listens on 127.0.0.1. The notification service has its own switch for its connect-time guard.
    AllowPrivate,
}

/// A webhook destination. Under [`WebhookPolicy::PublicHttpsOnly`], an https URL whose host is not a literal
/// private, loopback, link-local or unique-local address, nor `localhost`. Host names that *resolve* to such
/// addresses are the delivering service's check, at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Checks `raw` against `policy`; a URL with credentials is always refused. Violations name `webhook_url`.
    pub fn parse(raw: &str, policy: WebhookPolicy) -> Result<Self, Violations> {
        let invalid = |why: String| Violations::single("webhook_url", why);
        if raw.len() > WEBHOOK_URL_MAX_LEN {
            return Err(invalid(format!("must be at most {WEBHOOK_URL_MAX_LEN} characters")));
        }
        let url = Url::parse(raw.trim()).map_err(|error| invalid(format!("is not a valid URL: {error}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not contain credentials".to_owned()));
        }
        if policy == WebhookPolicy::AllowPrivate {
            return match (url.scheme(), url.host()) {
                ("https" | "http", Some(_)) => Ok(Self(url)),
                ("https" | "http", None) => Err(invalid("must have a host".to_owned())),
                _ => Err(invalid("must use http or https".to_owned())),
            };
        }
        if url.scheme() != "https" {
            return Err(invalid("must use https".to_owned()));
        }
        match url.host() {
            None => return Err(invalid("must have a host".to_owned())),
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                if domain == "localhost" || domain.ends_with(".localhost") {
                    return Err(invalid("must not point at localhost".to_owned()));
                }
            }
            Some(Host::Ipv4(ip)) => reject_internal(IpAddr::V4(ip)).map_err(invalid)?,
            Some(Host::Ipv6(ip)) => reject_internal(IpAddr::V6(ip)).map_err(invalid)?,
        }
        Ok(Self(url))
    }

    /// The URL as the `url` crate normalises it.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn reject_internal(ip: IpAddr) -> Result<(), String> {
    if !observability::address::is_public(ip) {
        Err(format!("must not target the internal address {ip}"))
    } else {
        Ok(())
    }
}

/// Unvalidated settings as a client sent them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationSettingsInput {
    /// The e-mail address as sent; `None` switches e-mail off.
    pub email: Option<String>,
    /// The webhook URL as sent; `None` switches webhooks off.
    pub webhook_url: Option<String>,
}

/// Where to deliver a user's reminders; both channels optional (none means "don't notify").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotificationSettings {
    /// Where reminder e-mails go; `None` sends none.
    pub email: Option<EmailAddress>,
    /// Where reminder webhooks are delivered; `None` delivers none.
    pub webhook_url: Option<WebhookUrl>,
}

impl NotificationSettings {
    /// Validates both channels, webhooks under `policy`, reporting the violations of both together.
    pub fn parse(input: &NotificationSettingsInput, policy: WebhookPolicy) -> Result<Self, Violations> {
        let mut collector = Collector::new();
        let email = match &input.email {
            Some(raw) => collector.take(EmailAddress::parse(raw).map(Some)),
            None => Some(None),
        };
        let webhook_url = match &input.webhook_url {
            Some(raw) => collector.take(WebhookUrl::parse(raw, policy).map(Some)),
            None => Some(None),
        };
        collector.finish(|| Some(Self { email: email?, webhook_url: webhook_url? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_syntax() {
        for ok in ["alice@example.com", "a.b+tag@mail.example.org", "x@y.io"] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "alice", "alice@", "@example.com", "alice@localhost", "a..b@example.com", "a b@example.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn development_policy_allows_local_http_but_still_checks_the_rest() {
        let local = WebhookPolicy::AllowPrivate;
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", local).is_ok());
        assert!(WebhookUrl::parse("https://localhost/hook", local).is_ok());
        for bad in ["ftp://example.com/", "not a url", "http://user:pass@127.0.0.1/", "file:///etc/passwd"] {
            assert!(WebhookUrl::parse(bad, local).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn webhook_must_be_public_https() {
        assert!(WebhookUrl::parse("https://hooks.example.com/taskwatch?x=1", WebhookPolicy::PublicHttpsOnly).is_ok());
        assert!(WebhookUrl::parse("https://93.184.216.34/hook", WebhookPolicy::PublicHttpsOnly).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://example.com/",
            "not a url",
            "https://localhost/hook",
            "https://api.localhost./hook",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://user:pass@example.com/",
        ] {
            assert!(WebhookUrl::parse(bad, WebhookPolicy::PublicHttpsOnly).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn settings_report_both_fields() {
        let input =
            NotificationSettingsInput { email: Some("nope".into()), webhook_url: Some("http://example.com".into()) };
        let violations = NotificationSettings::parse(&input, WebhookPolicy::PublicHttpsOnly).expect_err("invalid");
        assert!(violations.mentions("email") && violations.mentions("webhook_url"));
    }
}
