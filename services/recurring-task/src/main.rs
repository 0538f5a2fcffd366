//! The `recurring-task` binary: the runtime's one process life (`runtime` crate docs) around
//! [`recurring_task::app::build`].

use std::process::ExitCode;

use recurring_task::SERVICE;
use recurring_task::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    runtime::main(SERVICE, |env| Config::from_env(env, SERVICE), recurring_task::app::build).await
}
