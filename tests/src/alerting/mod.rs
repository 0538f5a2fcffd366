//! Alerting for tests: the repo's Alertmanager configuration made testable, a real Alertmanager on free
//! ports, and the command-line tools (`amtool`) that check it.
//!
//! - [`TestConfig`]: `monitoring/alertmanager/alertmanager.yml` with its receivers pointed at an in-test
//!   webhook receiver and its timings shortened. Routes, matchers, grouping and inhibitions are kept exactly
//!   as the repo writes them: those are what the tests prove.
//! - [`Alertmanager`]: `prometheus-alertmanager` as a foreground process on 127.0.0.1, killed when dropped,
//!   with the `/api/v2` calls a test needs ([`Alertmanager::post_alerts`], [`Alertmanager::alerts`]).
//! - [`Notification`]: one webhook notification as Alertmanager sent it to the receiver.
//! - [`rules`]: the alert rules the repo ships, as Alertmanager will see their labels.
//! - [`tools`]: find `amtool`, `promtool`, … on `PATH` or fail naming the package that installs them.

mod config;
mod error;
mod notification;
pub mod rules;
mod server;
pub mod tools;

use std::path::PathBuf;

pub use config::{TestConfig, Timings};
pub use error::AlertingError;
pub use notification::{Notification, NotifiedAlert};
pub use server::{Alert, AlertState, Alertmanager};

use crate::repo_root;

/// `monitoring/alertmanager/` in the repository: `alertmanager.yml` and `templates/`.
pub fn alertmanager_dir() -> PathBuf {
    repo_root().join("monitoring/alertmanager")
}

/// The shipped Alertmanager configuration.
pub fn alertmanager_config_path() -> PathBuf {
    alertmanager_dir().join("alertmanager.yml")
}

/// The Docker Compose demo's configuration: the same routes, receivers that mail the demo's Mailpit.
pub fn demo_config_path() -> PathBuf {
    alertmanager_dir().join("demo.yml")
}
