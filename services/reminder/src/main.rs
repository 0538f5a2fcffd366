//! The `reminder` binary: the runtime's one process life (`runtime` crate docs) around [`reminder::app::build`].

use std::process::ExitCode;

use reminder::SERVICE;
use reminder::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    runtime::main(SERVICE, |env| Config::from_env(env, SERVICE), reminder::app::build).await
}
