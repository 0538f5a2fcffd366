//! One way to print an error with its causes, for log fields, dead-letter reasons and problem details, and one way
//! to put it on a span as an OpenTelemetry exception event.

use std::error::Error;
use std::fmt;

use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Displays `error` followed by each of its sources, `": "`-joined: transport errors keep the useful part
/// (refused, DNS, TLS) in the chain. A cause whose text the line already holds is skipped, so an error that
/// prints its source itself (`"store failed: timeout"` over `timeout`) does not say it twice.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

/// `error` and its sources as one line; see [`ErrorChain`].
pub fn error_chain(error: &(dyn Error + '_)) -> String {
    ErrorChain(error).to_string()
}

/// Records `error` on `span` as an OpenTelemetry exception event (semantic conventions: `exception.type` the error's
/// Rust type, `exception.message` its text, `exception.stacktrace` its cause chain, one `caused by:` line per
/// source, Rust errors having no stack trace of their own) and marks the span failed, so Tempo shows the error
/// where it happened, and reports it when error reporting is on ([`crate::error_reporting`]). For an error that ends
/// a request with a 5xx or makes a service give up on an event.
pub fn record_exception<E: Error + ?Sized>(span: &tracing::Span, error: &E) {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(format!("caused by: {cause}"));
        source = cause.source();
    }
    let message = error.to_string();
    crate::error_reporting::report(std::any::type_name::<E>(), &message, &causes, span);
    let mut attributes = vec![
        KeyValue::new("exception.type", std::any::type_name::<E>()),
        KeyValue::new("exception.message", message.clone()),
    ];
    if !causes.is_empty() {
        attributes.push(KeyValue::new("exception.stacktrace", causes.join("\n")));
    }
    span.add_event("exception", attributes);
    span.set_status(opentelemetry::trace::Status::error(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connect failed")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("store failed: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn joins_every_cause() {
        let error = Outer(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
        assert_eq!(error_chain(&error), "connect failed: connection refused");
    }

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        let error = Repeats(std::io::Error::other("timeout"));
        assert_eq!(error_chain(&error), "store failed: timeout");
    }
}
