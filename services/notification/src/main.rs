//! The `notification` binary: the runtime's one process life (`runtime` crate docs) around
//! [`notification::app::build`].

use std::process::ExitCode;

use notification::SERVICE;
use notification::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    runtime::main(SERVICE, |env| Config::from_env(env, SERVICE), notification::app::build).await
}
