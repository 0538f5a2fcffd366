//! E-mail over SMTP (lettre): what a reminder mail says, and one send attempt.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use events::reminder::ReminderDue;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use observability::error_chain;

use super::{Channel, FailureKind, SendFailure};
use crate::breaker::Destination;
use crate::config::{SmtpConfig, SmtpTls};

/// Subject and plain-text body of a reminder mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `Reminder: <title>`, with the title's line breaks and other control characters turned into spaces.
    pub subject: String,
    /// CRLF-separated lines: the title, the due time (or the reminder time when the task has none), the task id.
    pub body: String,
}

/// Renders `reminder` for its owner: the title, and the due time on the wall clock of the task's zone.
pub fn render(reminder: &ReminderDue) -> Rendered {
    let title = single_line(&reminder.title);
    let zone = reminder.time_zone.parse::<Tz>().ok();
    let mut body = format!("Reminder: {title}\r\n\r\n");
    match reminder.due_at {
        Some(due_at) => body.push_str(&format!("Due: {}\r\n", local_time(due_at, zone, &reminder.time_zone))),
        None => {
            body.push_str(&format!("Reminder time: {}\r\n", local_time(reminder.remind_at, zone, &reminder.time_zone)))
        }
    }
    body.push_str(&format!("Task: {}\r\n\r\n-- \r\nTaskwatch\r\n", reminder.task_id));
    Rendered { subject: format!("Reminder: {title}"), body }
}

/// e.g. `Monday, 6 January 2031, 09:00 CET (Europe/Berlin)`; UTC when the zone is unknown to this build.
fn local_time(at: DateTime<Utc>, zone: Option<Tz>, zone_name: &str) -> String {
    const FORMAT: &str = "%A, %-d %B %Y, %H:%M %Z";
    match zone {
        Some(zone) => format!("{} ({zone_name})", at.with_timezone(&zone).format(FORMAT)),
        None => at.format(FORMAT).to_string(),
    }
}

/// Titles may contain line breaks; a subject must not (lettre would encode them, mail readers would not show them).
fn single_line(text: &str) -> String {
    text.split(char::is_control).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The dependency name of the SMTP server in the fault switch (`"outages": ["smtp"]`).
pub const FAULT_NAME: &str = "smtp";

/// Sends reminder mail through one SMTP server.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    destination: Destination,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender").field("server", &self.destination.key).finish_non_exhaustive()
    }
}

/// The SMTP settings cannot be turned into a transport (e.g. TLS parameters for an unusable host name).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up SMTP to {server}: {message}")]
pub struct EmailSetupError {
    /// The configured `host:port`.
    pub server: String,
    /// lettre's error chain.
    pub message: String,
}

impl EmailSender {
    /// Builds the transport for the configured server and registers the `smtp` fault switch; connects lazily,
    /// so an unreachable server surfaces only on the first send.
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailSetupError> {
        let server = format!("{}:{}", config.host, config.port);
        let setup_error = |error: lettre::transport::smtp::Error| EmailSetupError {
            server: server.clone(),
            message: error_chain(&error),
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(TlsParameters::new(config.host.clone()).map_err(setup_error)?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(config.host.clone()).map_err(setup_error)?),
        };
        // `builder_dangerous` only means "TLS is configured by hand": `tls` above is never opportunistic.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some(credentials) = &config.credentials {
            builder = builder
                .credentials(Credentials::new(credentials.username.clone(), credentials.password.expose().to_owned()));
        }
        observability::faults::register_dependency(FAULT_NAME);
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
            destination: Destination { channel: Channel::Email, key: server },
            timeout: config.timeout,
        })
    }

    /// The SMTP server, for its circuit breaker.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// One attempt to hand `reminder` to the SMTP server for `recipient`.
    pub async fn send(&self, recipient: &str, reminder: &ReminderDue) -> Result<(), SendFailure> {
        if observability::faults::is_down(FAULT_NAME) {
            // Demo fault: the SMTP server "refuses" connections — a transient failure, retried as usual.
            return Err(SendFailure::new(FailureKind::Unavailable, "SMTP: connection refused (injected fault)"));
        }
        let to: Mailbox = recipient
            .parse()
            .map_err(|_| SendFailure::new(FailureKind::Permanent, "the stored e-mail address is not valid"))?;
        let rendered = render(reminder);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(rendered.body)
            .map_err(|error| SendFailure::new(FailureKind::Permanent, format!("cannot build the message: {error}")))?;
        // lettre's timeout bounds each network step; this bounds the whole attempt, so the claim lease holds.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_elapsed) => Err(SendFailure::new(
                FailureKind::Unavailable,
                format!("SMTP server did not accept the message within {:?}", self.timeout),
            )),
        }
    }
}

fn classify(error: &lettre::transport::smtp::Error) -> SendFailure {
    let message = format!("SMTP: {}", error_chain(error));
    // A 5xx reply rejects this message for good (unknown mailbox, policy); everything else — 4xx replies,
    // refused connections, timeouts, TLS trouble — may pass once the server recovers.
    let kind = if error.is_permanent() { FailureKind::Permanent } else { FailureKind::Unavailable };
    SendFailure::new(kind, message)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn reminder(title: &str, due_at: Option<&str>, zone: &str) -> ReminderDue {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let task_id = Uuid::now_v7();
        ReminderDue {
            job_id: Uuid::now_v7(),
            task_id,
            series_id: task_id,
            owner_id: "alice".into(),
            title: title.into(),
            due_at: due_at.map(at),
            time_zone: zone.into(),
            remind_at: at("2031-01-06T07:59:00Z"),
            fired_at: at("2031-01-06T07:59:01Z"),
        }
    }

    #[test]
    fn names_the_title_and_the_due_time_in_the_tasks_zone() {
        let rendered = render(&reminder("Water the plants", Some("2031-01-06T08:00:00Z"), "Europe/Berlin"));
        assert_eq!(rendered.subject, "Reminder: Water the plants");
        assert!(rendered.body.contains("Due: Monday, 6 January 2031, 09:00 CET (Europe/Berlin)"), "{}", rendered.body);
        let summer = render(&reminder("x", Some("2031-07-07T07:00:00Z"), "Europe/Berlin"));
        assert!(summer.body.contains("09:00 CEST"), "{}", summer.body);
    }

    #[test]
    fn without_a_due_time_names_the_reminder_time_and_unknown_zones_fall_back_to_utc() {
        let rendered = render(&reminder("Call\r\nBob", None, "Mars/Olympus_Mons"));
        assert_eq!(rendered.subject, "Reminder: Call Bob");
        assert!(rendered.body.contains("Reminder time: Monday, 6 January 2031, 07:59 UTC"), "{}", rendered.body);
    }
}
