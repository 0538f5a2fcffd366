//! How each service binary is started for a test: the environment its README documents, pointed at the
//! test's own dependencies on 127.0.0.1.

use std::process::Command;

use crate::{HarnessError, binary};

/// A JWT secret long enough for HS256 (≥ 32 bytes); tests mint tokens with it through the binary itself.
pub const JWT_SECRET: &str = "e2e-secret-that-is-at-least-32-bytes-long";

/// A service credential for `/internal/v1` (≥ 32 bytes), shared by the backend and the services calling it.
pub const INTERNAL_SERVICE_TOKEN: &str = "e2e-internal-service-token-at-least-32-bytes";

/// The key notification signs webhooks with; tests verify signatures with it.
pub const WEBHOOK_SIGNING_SECRET: &str = "e2e-webhook-signing-secret-at-least-32-bytes";

/// `name`'s binary with nothing of the test's environment but `PATH`, listening on 127.0.0.1:`port`.
pub(crate) fn service_command(name: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = Command::new(binary(name)?);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info");
    Ok(command)
}

/// The backend's environment for a test: its database, a loopback port, and no rate limiting.
pub fn backend_command(database_url: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = service_command("backend", port)?;
    command.env("DATABASE_URL", database_url).env("AUTH_JWT_SECRET", JWT_SECRET).env("RATE_LIMIT_ENABLED", "false");
    Ok(command)
}

/// [`backend_command`] with its outbox relay publishing to the Kafka broker at `kafka_brokers` and the
/// internal API open to [`INTERNAL_SERVICE_TOKEN`].
pub fn backend_with_kafka_command(database_url: &str, port: u16, kafka_brokers: &str) -> Result<Command, HarnessError> {
    let mut command = backend_command(database_url, port)?;
    command.env("KAFKA_BROKERS", kafka_brokers).env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN);
    Ok(command)
}

/// The recurring-task service's environment for a test: its broker, the backend it calls, a loopback probe
/// port. Kafka settings the test needs to control (group id, commit interval) are left to the caller.
pub fn recurring_task_command(kafka_brokers: &str, backend_url: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = service_command("recurring-task", port)?;
    command
        .env("KAFKA_BROKERS", kafka_brokers)
        .env("BACKEND_URL", backend_url)
        .env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN);
    Ok(command)
}

/// The reminder service's environment for a test: its database and broker.
pub(crate) fn reminder_command(database_url: &str, kafka_brokers: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = service_command("reminder", port)?;
    command.env("DATABASE_URL", database_url).env("KAFKA_BROKERS", kafka_brokers);
    Ok(command)
}

/// A service generated from the template (`cargo xtask new-service`): its database and broker, nothing else.
pub(crate) fn template_service_command(
    name: &str,
    database_url: &str,
    kafka_brokers: &str,
    port: u16,
) -> Result<Command, HarnessError> {
    let mut command = service_command(name, port)?;
    command.env("DATABASE_URL", database_url).env("KAFKA_BROKERS", kafka_brokers);
    Ok(command)
}

/// Where notification delivers: the test's SMTP sink (plain SMTP) and any webhook on 127.0.0.1.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryTargets {
    pub smtp_host: String,
    pub smtp_port: u16,
}

/// The notification service's environment for a test: database, broker, the backend it asks for settings,
/// the SMTP sink, the webhook signing key, and webhooks to loopback allowed.
pub(crate) fn notification_command(
    database_url: &str,
    kafka_brokers: &str,
    backend_url: &str,
    targets: &DeliveryTargets,
    port: u16,
) -> Result<Command, HarnessError> {
    let mut command = service_command("notification", port)?;
    command
        .env("DATABASE_URL", database_url)
        .env("KAFKA_BROKERS", kafka_brokers)
        .env("BACKEND_URL", backend_url)
        .env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN)
        .env("SMTP_HOST", &targets.smtp_host)
        .env("SMTP_PORT", targets.smtp_port.to_string())
        .env("SMTP_TLS", "none")
        .env("SMTP_FROM", "Taskwatch <reminders@taskwatch.test>")
        .env("WEBHOOK_SIGNING_SECRET", WEBHOOK_SIGNING_SECRET)
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true");
    Ok(command)
}
