//! The life of a service process, the same for every Taskwatch binary: read the configuration (a bad one exits
//! with [`EXIT_CONFIG`] and a message naming every offending variable), initialise telemetry, run the service,
//! log how it ended, flush telemetry, and turn the outcome into the exit code.
//!
//! `SERVICE healthcheck` is the container health check instead (Docker's `HEALTHCHECK`, compose's
//! `healthcheck:`): see [`healthcheck`]. It loads no configuration, so it works in an image without a shell.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use observability::config::{ConfigError, Env};
//! use observability::telemetry::TelemetrySettings;
//! use observability::{ServiceInfo, TelemetryGuard};
//!
//! const SERVICE: ServiceInfo = ServiceInfo { name: "example", version: "0.1.0" };
//!
//! struct Config { telemetry: TelemetrySettings }
//!
//! fn load(env: Env) -> Result<Config, ConfigError> {
//!     env.load(|env| Some(Config { telemetry: TelemetrySettings::from_env(env, SERVICE) }))
//! }
//!
//! async fn run(config: &Config, telemetry: &TelemetryGuard) -> Result<(), std::io::Error> {
//!     let _ = (config, telemetry); // serve until a signal, then drain
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     observability::process::main(SERVICE, load, |config| &config.telemetry, run).await
//! }
//! ```

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{ConfigError, Env};
use crate::error_chain::ErrorChain;
use crate::telemetry::TelemetrySettings;
use crate::{ServiceInfo, TelemetryGuard};

/// Exit code for configuration errors (sysexits `EX_CONFIG`): orchestrators can tell "fix the settings" apart
/// from a crash.
pub const EXIT_CONFIG: u8 = 78;

/// Runs a service process from configuration to flushed telemetry; see the [module docs](self).
///
/// `run`'s error is logged with its whole chain ([`ErrorChain`]) before telemetry is flushed, so it reaches the log
/// pipeline; the process then exits with failure.
pub async fn main<C, E>(
    service: ServiceInfo,
    load: impl FnOnce(Env) -> Result<C, ConfigError>,
    telemetry_settings: impl FnOnce(&C) -> &TelemetrySettings,
    run: impl AsyncFnOnce(&C, &TelemetryGuard) -> Result<(), E>,
) -> ExitCode
where
    E: std::error::Error,
{
    if std::env::args_os().nth(1).is_some_and(|argument| argument == HEALTHCHECK_COMMAND) {
        return healthcheck();
    }
    let config = match load(Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let telemetry = match crate::telemetry::init_stdout(telemetry_settings(&config)) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("cannot initialise telemetry: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let outcome = run(&config, &telemetry).await;
    match &outcome {
        Ok(()) => tracing::info!("{} stopped", service.name),
        Err(error) => tracing::error!(error = %ErrorChain(error), "{} stopped with an error", service.name),
    }
    telemetry.shutdown().await;
    if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The first argument that turns a service binary into its own health check.
pub const HEALTHCHECK_COMMAND: &str = "healthcheck";

/// The probe the health check asks: readiness, so that compose's `depends_on: condition: service_healthy`
/// starts a dependent only once this service can do its work (migrations applied, broker reached), not
/// merely once it answers HTTP. Kubernetes does not use this command; it probes the three paths itself.
pub const HEALTHCHECK_PATH: &str = "/health/ready";

/// Bound on connecting, writing and reading each; Docker's own `--timeout` is the outer limit.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The port a service listens on when `PORT` is unset is the service's own default, which this generic
/// check does not know; the images set `PORT` (Dockerfile `ENV PORT`), so its absence is an error.
const PORT_VARIABLE: &str = "PORT";

/// `GET http://127.0.0.1:$PORT/health/ready`: exit 0 on a 2xx answer, 1 otherwise with the reason on stderr.
///
/// A plain HTTP/1.0 exchange over std's TCP client: no async runtime, no TLS, no configuration beyond `PORT`,
/// so it runs in a distroless image and cannot fail because some unrelated variable is invalid.
pub fn healthcheck() -> ExitCode {
    match probe() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn probe() -> Result<(), String> {
    let port: u16 = match std::env::var(PORT_VARIABLE) {
        Ok(value) => value.trim().parse().map_err(|_| format!("{PORT_VARIABLE}={value} is not a port"))?,
        Err(_) => return Err(format!("{PORT_VARIABLE} is not set")),
    };
    if port == 0 {
        return Err(format!("{PORT_VARIABLE}=0 names no port to probe"));
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let status =
        http_status(address, HEALTHCHECK_PATH).map_err(|error| format!("GET {address}{HEALTHCHECK_PATH}: {error}"))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {address}{HEALTHCHECK_PATH} answered {status}"))
    }
}

/// The status code of `GET path` on `address`, read from the status line (`HTTP/1.x NNN reason`).
fn http_status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, HEALTHCHECK_TIMEOUT)?;
    stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    stream.set_write_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    // One write: `write!` would send the request in pieces.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    // The status line fits in the first bytes; the body is not needed.
    let mut head = [0_u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..])? {
            0 => break,
            count => read += count,
        }
        if head[..read].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .filter(|_| line.starts_with("HTTP/1."))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP answer: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let address = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            // The whole request first: closing with unread bytes would reset the connection under the client.
            let mut request = Vec::new();
            let mut chunk = [0_u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(count) => request.extend_from_slice(&chunk[..count]),
                }
            }
            let _ = stream.write_all(answer.as_bytes());
        });
        address
    }

    #[test]
    fn reads_the_status_code() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(http_status(ok, HEALTHCHECK_PATH).expect("answer"), 200);
        let unavailable = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n{}");
        assert_eq!(http_status(unavailable, HEALTHCHECK_PATH).expect("answer"), 503);
    }

    #[test]
    fn refuses_what_is_not_http() {
        let garbage = serve_once("SSH-2.0-OpenSSH\r\n");
        assert!(http_status(garbage, HEALTHCHECK_PATH).is_err());
    }
}
