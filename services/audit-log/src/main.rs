//! The `audit-log` binary: the runtime's one process life (`runtime` crate docs) around
//! [`audit_log::app::build`].

use std::process::ExitCode;

use audit_log::SERVICE;
use audit_log::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    runtime::main(SERVICE, |env| Config::from_env(env, SERVICE), audit_log::app::build).await
}
