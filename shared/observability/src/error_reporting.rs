//! Optional Sentry-compatible error reporting, beside the exception events on spans: on when `SENTRY_DSN` is set,
//! off otherwise (then [`report`] costs one check). One report per error that ends a request with a 5xx or gives up
//! on an event ([`crate::record_exception`] is the one caller), grouped by the error's type, tagged with its trace
//! id, the service's release and its deployment environment. Every text in a report goes through the same scrubbing
//! as the log lines ([`crate::redact::scrub`]): no credential, password in a URL, JWT or e-mail address leaves the
//! process, and the client sends no default personal data (no server name, no user, no request).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sentry::protocol::{Event, Exception, Level, Values};

use crate::exemplars::RecordedTrace;
use crate::redact::scrub;

/// `SENTRY_DSN`: where reports go (`https://<public key>@<host>/<project id>`). Validated on start-up, and never
/// printed: `Debug` shows it redacted.
#[derive(Clone)]
pub struct SentryDsn(sentry::types::Dsn);

impl FromStr for SentryDsn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self).map_err(|error| format!("not a Sentry DSN ({error})"))
    }
}

impl fmt::Debug for SentryDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

impl PartialEq for SentryDsn {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

/// Who reports, as the reports say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `<service>@<version>`, Sentry's release.
    pub release: String,
    /// The deployment environment (`deployment.environment.name` of the resource), if known.
    pub environment: Option<String>,
}

/// Keeps the Sentry client; dropping it sends what is still queued (two seconds at most). Empty when off.
#[must_use = "dropping the guard stops error reporting"]
pub struct ErrorReportingGuard(Option<sentry::ClientInitGuard>);

impl fmt::Debug for ErrorReportingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "ErrorReportingGuard(on)" } else { "ErrorReportingGuard(off)" })
    }
}

/// Starts the client when `dsn` is set.
pub(crate) fn init(dsn: Option<&SentryDsn>, reporter: &Reporter) -> ErrorReportingGuard {
    let Some(SentryDsn(dsn)) = dsn else { return ErrorReportingGuard(None) };
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn.clone());
    options.release = Some(reporter.release.clone().into());
    options.environment = reporter.environment.clone().map(Into::into);
    options.send_default_pii = false;
    options.default_integrations = false;
    // Every event, whatever built it, has its texts scrubbed like log lines before it leaves.
    options.before_send = Some(Arc::new(|event| Some(scrubbed(event))));
    ErrorReportingGuard(Some(sentry::init(options)))
}

/// Reports one error: its Rust type (the grouping key), its message and its causes, with the trace of `span` (the
/// span it happened in). Off, it returns before reading the span.
pub(crate) fn report(error_type: &str, message: &str, causes: &[String], span: &tracing::Span) {
    if sentry::Hub::current().client().is_none() {
        return;
    }
    let trace_id = RecordedTrace::of_span(span).map(|trace| trace.trace_id().to_owned());
    sentry::capture_event(event(error_type, message, causes, trace_id));
}

/// The report of one error, as built; the client's `before_send` scrubs it (and any other event) on its way out.
fn event(error_type: &str, message: &str, causes: &[String], trace_id: Option<String>) -> Event<'static> {
    // Sentry lists the innermost exception last: the error, then each cause.
    let mut exceptions =
        vec![Exception { ty: error_type.to_owned(), value: Some(message.to_owned()), ..Default::default() }];
    exceptions.extend(causes.iter().map(|cause| Exception {
        ty: "caused by".to_owned(),
        value: Some(cause.clone()),
        ..Default::default()
    }));
    exceptions.reverse();
    let mut event = Event {
        level: Level::Error,
        message: Some(message.to_owned()),
        exception: Values::from(exceptions),
        // Grouped by error kind: every occurrence of one type is one issue, whatever its message.
        fingerprint: vec![error_type.to_owned().into()].into(),
        ..Default::default()
    };
    if let Some(trace_id) = trace_id {
        event.tags.insert("trace_id".to_owned(), trace_id);
    }
    event
}

/// `event` with every free text scrubbed as log lines are.
fn scrubbed(mut event: Event<'static>) -> Event<'static> {
    let clean = |text: &mut String| *text = scrub(text).into_owned();
    if let Some(message) = event.message.as_mut() {
        clean(message);
    }
    for exception in &mut event.exception.values {
        if let Some(value) = exception.value.as_mut() {
            clean(value);
        }
    }
    for value in event.tags.values_mut() {
        clean(value);
    }
    event.user = None;
    event.request = None;
    event.server_name = None;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_carries_type_causes_trace_and_grouping_and_nothing_the_logs_would_redact() {
        let secrets = [
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
            "postgres://taskwatch:hunter2@db:5432/taskwatch",
            "alice@example.com",
        ];
        let message = format!("store failed for alice@example.com via {}", secrets[1]);
        let causes = vec![format!("upstream said {}", secrets[0])];
        // What the client sends: the event as `before_send` lets it out.
        let trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
        let event = scrubbed(event("backend::store::StoreError", &message, &causes, trace_id));

        let text = serde_json::to_string(&event).expect("an event serialises");
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(event.fingerprint.as_ref(), ["backend::store::StoreError"]);
        assert_eq!(event.tags.get("trace_id").map(String::as_str), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let types: Vec<&str> = event.exception.values.iter().map(|e| e.ty.as_str()).collect();
        assert_eq!(types, ["caused by", "backend::store::StoreError"], "innermost first, as Sentry lists them");
    }

    #[test]
    fn the_dsn_is_validated_and_never_shown() {
        let dsn: SentryDsn = "https://public@sentry.example.com/42".parse().expect("a DSN");
        assert_eq!(format!("{dsn:?}"), crate::redact::REDACTED);
        assert!("not a dsn".parse::<SentryDsn>().is_err());
    }
}
