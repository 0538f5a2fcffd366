//! The processes of the local stack and how each is configured: the one place that knows which environment
//! variable of which service points at what. A new service joins by getting a [`Service`] entry and its
//! environment here.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::supervisor::ProcessSpec;

/// The services, their names and README ports: the one list the end-to-end tests use too.
pub use testkit::services::Service;

/// Where the backend listens unless `--port` says otherwise.
pub const DEFAULT_BACKEND_PORT: u16 = Service::Backend.default_port();

/// Where `service` listens when the backend is on `backend_port`: `--port` moves every README port by the same
/// offset.
pub fn address(service: Service, backend_port: u16) -> SocketAddr {
    let offset = service.default_port() - Service::Backend.default_port();
    SocketAddr::from((Ipv4Addr::LOCALHOST, backend_port.saturating_add(offset)))
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
        address(service, self.backend_port)
    }

    /// The service processes in start order.
    pub fn processes(&self) -> Vec<ProcessSpec> {
        self.binaries
            .iter()
            .map(|(service, binary)| ProcessSpec {
                name: service.name(),
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

#[cfg(test)]
mod tests {
    use e2e::config_table::ConfigTable;

    use super::*;

    /// `cargo xtask up` configures the services by hand; like compose and the chart, it may only set what each
    /// service documents, and must set what the service requires.
    #[test]
    fn every_variable_the_native_stack_sets_is_in_the_services_readme_table() {
        let settings = StackSettings {
            binaries: Vec::new(),
            backend_port: DEFAULT_BACKEND_PORT,
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            kafka_brokers: "127.0.0.1:9092".into(),
            smtp_address: SocketAddr::from((Ipv4Addr::LOCALHOST, 2525)),
            jwt_secret: "a".repeat(32),
            internal_service_token: "b".repeat(32),
            webhook_signing_secret: "c".repeat(32),
        };
        let root = crate::cargo::workspace_root();
        let mut problems = Vec::new();
        for service in Service::ALL {
            let name = service.name();
            let table = ConfigTable::for_service(root, name).unwrap_or_else(|error| panic!("{error}"));
            let env = settings.env(service);
            for (variable, _) in env.iter().filter(|(variable, _)| !table.documents(variable)) {
                problems.push(format!("{name}: {variable} is not in services/{name}/README.md's table"));
            }
            for required in table.required().filter(|required| !env.iter().any(|(variable, _)| variable == required)) {
                problems.push(format!("{name}: required {required} is not set"));
            }
        }
        assert!(problems.is_empty(), "the native stack's environment vs the README tables:\n{}", problems.join("\n"));
    }
}
