//! `cargo xtask up`: the stack running locally, for trying the API by hand.
//!
//! Builds the services, starts a throwaway Postgres, starts each process of the stack in order and
//! waits until it accepts connections, prints where everything is with a freshly minted dev token,
//! then streams the logs until Ctrl-C, when it stops everything it started (services first).
//! New processes join the stack in [`stack`].

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::{Context as _, bail};
use testkit::postgres::PostgresServer;
use tokio::process::Command;

use crate::interrupt::Interrupt;
use crate::supervisor::{ProcessSpec, Stopped, Supervisor};
use crate::{cargo, provision};

/// Bytes of randomness in a generated `AUTH_JWT_SECRET` (the backend requires at least 32).
const SECRET_BYTES: usize = 32;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port of the backend API on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// User id (`sub`) of the printed development token.
    #[arg(long, default_value = "alice")]
    user: String,
}

/// What the processes of the stack are configured from.
#[derive(Debug)]
struct StackSettings {
    backend_binary: PathBuf,
    backend_address: SocketAddr,
    database_url: String,
    jwt_secret: String,
}

pub async fn run(args: Args, mut interrupt: Interrupt) -> anyhow::Result<ExitCode> {
    provision::ensure(provision::FOR_UP).await?;
    // Built (once) before anything starts; the broker itself is started with the services' processes.
    provision::ensure_tansu(&mut interrupt).await?;
    eprintln!("xtask: building the backend…");
    let backend_binary = cargo::build_binary("backend", "backend", &mut interrupt).await?;
    let postgres = PostgresServer::start().await.context("starting the throwaway Postgres")?;
    let settings = StackSettings {
        backend_binary,
        backend_address: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        database_url: postgres.url().to_owned(),
        jwt_secret: jwt_secret()?,
    };
    let token = mint_token(&settings, &args.user).await?;

    let mut supervisor = Supervisor::new();
    let outcome = run_stack(&settings, &mut supervisor, &mut interrupt, &token, &args.user).await;
    supervisor.stop_all().await;
    drop(postgres);
    eprintln!("xtask: Postgres stopped");
    outcome
}

/// The processes of the local stack, in start order.
fn stack(settings: &StackSettings) -> Vec<ProcessSpec> {
    vec![ProcessSpec {
        name: "backend",
        program: settings.backend_binary.clone(),
        args: vec!["serve".to_owned()],
        env: backend_env(settings),
        ready_at: settings.backend_address,
    }]
}

fn backend_env(settings: &StackSettings) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", settings.database_url.clone()),
        ("AUTH_JWT_SECRET", settings.jwt_secret.clone()),
        ("BIND_ADDR", settings.backend_address.ip().to_string()),
        ("PORT", settings.backend_address.port().to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

async fn run_stack(
    settings: &StackSettings,
    supervisor: &mut Supervisor,
    interrupt: &mut Interrupt,
    token: &str,
    user: &str,
) -> anyhow::Result<ExitCode> {
    for process in stack(settings) {
        eprintln!("xtask: starting {}…", process.name);
        supervisor.start(process, interrupt).await?;
    }
    print_banner(settings, token, user);
    Ok(match supervisor.watch(interrupt).await {
        Stopped::Interrupted => ExitCode::SUCCESS,
        Stopped::Exited { name, status } => {
            eprintln!("xtask: {name} exited unexpectedly ({status}); stopping the rest");
            ExitCode::FAILURE
        }
    })
}

fn print_banner(settings: &StackSettings, token: &str, user: &str) {
    let api = format!("http://{}", settings.backend_address);
    println!(
        "\n\
         Taskwatch is running (Ctrl-C stops everything):\n\
         \n  API       {api}/v1/tasks\
         \n  Docs      {api}/docs\
         \n  OpenAPI   {api}/openapi.json\
         \n  Metrics   {api}/metrics\
         \n  Health    {api}/health/ready\
         \n  Postgres  {database}\
         \n\
         \n  Dev token for user `{user}` (valid 24h):\
         \n  export TOKEN={token}\
         \n  curl -H \"Authorization: Bearer $TOKEN\" {api}/v1/tasks\n",
        database = settings.database_url,
    );
}

/// Mints a development token with the backend's own `token` command and the stack's secret.
async fn mint_token(settings: &StackSettings, user: &str) -> anyhow::Result<String> {
    let output = Command::new(&settings.backend_binary)
        .args(["token", "--sub", user])
        .envs(backend_env(settings))
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `backend token`")?;
    if !output.status.success() {
        bail!(
            "`backend token --sub {user}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let token = String::from_utf8(output.stdout).context("the token is not UTF-8")?;
    Ok(token.trim().to_owned())
}

/// `AUTH_JWT_SECRET` from the environment if set (tokens then survive restarts), else a fresh random one.
fn jwt_secret() -> anyhow::Result<String> {
    if let Ok(secret) = std::env::var("AUTH_JWT_SECRET")
        && !secret.is_empty()
    {
        return Ok(secret);
    }
    let mut bytes = [0u8; SECRET_BYTES];
    let random = Path::new("/dev/urandom");
    std::fs::File::open(random)
        .and_then(|mut source| source.read_exact(&mut bytes))
        .with_context(|| format!("reading {}", random.display()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
