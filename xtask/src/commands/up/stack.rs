//! The processes of the local stack and how each is configured: the one place that knows which environment
//! variable of which service points at what. A new service joins by getting a [`Service`] entry and its
//! environment here.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::supervisor::ProcessSpec;

/// A service of the stack: its cargo package (= binary name) and its documented default port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Backend,
    Reminder,
    RecurringTask,
    Notification,
}

impl Service {
    /// Where the backend listens unless `--port` says otherwise; the others follow it.
    pub const DEFAULT_BACKEND_PORT: u16 = 8080;

    /// In start order: the backend first (it owns the API the others call), the consumers after it.
    pub const ALL: [Service; 4] = [Service::Backend, Service::Reminder, Service::RecurringTask, Service::Notification];

    pub const fn package(self) -> &'static str {
        match self {
            Service::Backend => "backend",
            Service::Reminder => "reminder",
            Service::RecurringTask => "recurring-task",
            Service::Notification => "notification",
        }
    }

    /// The ports in each service's README; `--port` moves them all by the same offset.
    const fn default_port(self) -> u16 {
        match self {
            Service::Backend => 8080,
            Service::Reminder => 8081,
            Service::RecurringTask => 8082,
            Service::Notification => 8083,
        }
    }

    pub fn address(self, backend_port: u16) -> SocketAddr {
        let offset = self.default_port() - Service::Backend.default_port();
        SocketAddr::from((Ipv4Addr::LOCALHOST, backend_port.saturating_add(offset)))
    }
}

/// What the processes of the stack are configured from.
#[derive(Debug)]
pub struct StackSettings {
    pub binaries: Vec<(Service, PathBuf)>,
    pub backend_port: u16,
    pub database_url: String,
    pub kafka_brokers: String,
    pub smtp_address: SocketAddr,
    pub jwt_secret: String,
    pub internal_service_token: String,
    pub webhook_signing_secret: String,
}

impl StackSettings {
    pub fn binary(&self, service: Service) -> Option<&PathBuf> {
        self.binaries.iter().find(|(candidate, _)| *candidate == service).map(|(_, path)| path)
    }

    pub fn address(&self, service: Service) -> SocketAddr {
        service.address(self.backend_port)
    }

    /// The service processes in start order.
    pub fn processes(&self) -> Vec<ProcessSpec> {
        self.binaries
            .iter()
            .map(|(service, binary)| ProcessSpec {
                name: service.package(),
                program: binary.clone(),
                args: Vec::new(),
                env: self.env(*service),
                ready_at: self.address(*service),
            })
            .collect()
    }

    /// The environment of `service`: its listen address plus what it connects to. Development-only switches
    /// (webhooks to 127.0.0.1, plain SMTP) are on here and nowhere else.
    pub fn env(&self, service: Service) -> Vec<(String, String)> {
        let address = self.address(service);
        let backend_url = format!("http://{}", self.address(Service::Backend));
        let mut env = vec![("BIND_ADDR", address.ip().to_string()), ("PORT", address.port().to_string())];
        let database = ("DATABASE_URL", self.database_url.clone());
        let kafka = ("KAFKA_BROKERS", self.kafka_brokers.clone());
        let token = ("INTERNAL_SERVICE_TOKEN", self.internal_service_token.clone());
        match service {
            Service::Backend => env.extend([
                database,
                kafka,
                token,
                ("AUTH_JWT_SECRET", self.jwt_secret.clone()),
                ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
            ]),
            Service::Reminder => env.extend([database, kafka]),
            Service::RecurringTask => env.extend([kafka, token, ("BACKEND_URL", backend_url)]),
            Service::Notification => env.extend([
                database,
                kafka,
                token,
                ("BACKEND_URL", backend_url),
                ("SMTP_HOST", self.smtp_address.ip().to_string()),
                ("SMTP_PORT", self.smtp_address.port().to_string()),
                ("SMTP_TLS", "none".to_owned()),
                ("SMTP_FROM", "Taskwatch <reminders@taskwatch.localhost>".to_owned()),
                ("WEBHOOK_SIGNING_SECRET", self.webhook_signing_secret.clone()),
                ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
            ]),
        }
        env.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
    }
}
