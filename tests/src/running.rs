//! A single service binary for tests that need no whole [`Stack`](crate::Stack).

use testkit::process::ChildGuard;

use crate::commands::{backend_command, backend_with_kafka_command, recurring_task_command};
use crate::{HarnessError, free_port, mint_token, wait_until_ok};

/// A running backend binary, killed when dropped.
#[derive(Debug)]
pub struct RunningBackend {
    /// The process, to read its output, send it a signal or wait for its exit.
    pub process: ChildGuard,
    /// `http://127.0.0.1:PORT`, where its API, probes and `/metrics` are served.
    pub base_url: String,
}

impl RunningBackend {
    /// Starts the backend on a free port and waits until `/health/ready` answers 200.
    pub async fn start(database_url: &str) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let process = ChildGuard::spawn("backend", backend_command(database_url, port)?)?;
        let backend = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        backend.wait_until_ready().await?;
        Ok(backend)
    }

    /// Starts the backend with its outbox relay publishing to `kafka_brokers` (see
    /// [`backend_with_kafka_command`]) and waits until it is ready.
    pub async fn start_with_kafka(database_url: &str, kafka_brokers: &str) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let command = backend_with_kafka_command(database_url, port, kafka_brokers)?;
        let process = ChildGuard::spawn("backend", command)?;
        let backend = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        backend.wait_until_ready().await?;
        Ok(backend)
    }

    async fn wait_until_ready(&self) -> Result<(), HarnessError> {
        wait_until_ok(&self.process, &self.base_url, "/health/ready").await
    }

    /// A bearer token for `subject`, minted by the backend binary's own `token` command.
    pub fn token(&self, subject: &str) -> Result<String, HarnessError> {
        mint_token(subject)
    }
}

/// A running recurring-task binary, killed when dropped.
#[derive(Debug)]
pub struct RunningRecurringTask {
    /// The process, to read its output, send it a signal or wait for its exit.
    pub process: ChildGuard,
    /// Where its probes and `/metrics` are served.
    pub base_url: String,
}

impl RunningRecurringTask {
    /// Starts recurring-task (see [`recurring_task_command`]) with `extra_env` on top, and waits until
    /// `/health/startup` answers 200: its topics exist and it consumes.
    pub async fn start(
        kafka_brokers: &str,
        backend_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let mut command = recurring_task_command(kafka_brokers, backend_url, port)?;
        command.envs(extra_env.iter().copied());
        let process = ChildGuard::spawn("recurring-task", command)?;
        let service = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        wait_until_ok(&service.process, &service.base_url, "/health/startup").await?;
        Ok(service)
    }

    /// Its current `/metrics` exposition; `None` while it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        crate::stack::scrape(&self.base_url).await
    }
}
