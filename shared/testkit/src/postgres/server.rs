//! A throwaway Postgres server that a test (or `cargo xtask`) owns.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::binaries::Binaries;
use super::template;
use super::watchdog::Watchdog;
use crate::Error;
use crate::command::run_checked;

const DATA_DIR: &str = "data";
const LOG_FILE: &str = "server.log";
/// Our settings live in their own file, rewritten whenever the port changes, and included once from
/// `postgresql.conf`; restarts then need no command-line options.
const SETTINGS_FILE: &str = "testkit.conf";
/// Another process may grab the free port we picked before Postgres binds it; retry with a new one.
const PORT_ATTEMPTS: usize = 5;
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// Enough for every pool of a parallel test run against one shared server.
const MAX_CONNECTIONS: u32 = 300;

/// A throwaway Postgres server on 127.0.0.1 and a free port, in its own temp directory.
///
/// Durability is traded for speed (`fsync=off`); authentication is `trust` for user `postgres`.
/// Dropping the server stops it immediately and deletes its files; so does the end of the process,
/// however it ends, through a watchdog.
///
/// ```no_run
/// # async fn demo() -> Result<(), testkit::Error> {
/// let mut server = testkit::postgres::PostgresServer::start().await?;
/// let url = server.url().to_owned(); // postgres://postgres@127.0.0.1:PORT/postgres
/// server.stop().await?; // clients now fail to connect...
/// server.start_again().await?; // ...and reconnect: same port, same data
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresServer {
    binaries: Binaries,
    root: PathBuf,
    port: u16,
    url: String,
    running: bool,
    // Declared last so it fires after everything else is dropped; it owns the cleanup.
    _watchdog: Watchdog,
}

impl PostgresServer {
    /// Starts a new server from the cached template data directory (created on first use).
    pub async fn start() -> Result<Self, Error> {
        let binaries = Binaries::locate()?;
        let template = template::ensure(&binaries).await?;
        let root = tempfile::Builder::new()
            .prefix("testkit-pg-")
            .tempdir()
            .map_err(Error::io("creating a directory for a Postgres server"))?
            .keep();
        // From here on the watchdog owns the directory: any early return below cleans it up.
        let mut stop = binaries.command("pg_ctl");
        stop.arg("-D").arg(root.join(DATA_DIR)).args(["-m", "immediate", "-w", "-t", PG_CTL_TIMEOUT_SECS, "stop"]);
        let watchdog = Watchdog::arm(&stop, &root)?;

        binaries.hand_over(&root)?;
        let data = root.join(DATA_DIR);
        template::copy_tree(&template, &data).await?;
        append_line(&data.join("postgresql.conf"), &format!("include '{SETTINGS_FILE}'"))?;

        let mut server = Self { binaries, root, port: 0, url: String::new(), running: false, _watchdog: watchdog };
        server.start_on_a_free_port().await?;
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`, the maintenance database as superuser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP port on 127.0.0.1; it stays the same across [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file, useful when a test wants to show why something failed.
    pub fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    /// Whether the server is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server (fast shutdown: open connections are cut), keeping its data and port.
    /// Does nothing if it is already stopped.
    pub async fn stop(&mut self) -> Result<(), Error> {
        if !self.running {
            return Ok(());
        }
        run_checked(
            self.binaries
                .run("pg_ctl", ["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
                .arg(self.data_dir())
                .arg("stop"),
        )
        .await?;
        self.running = false;
        Ok(())
    }

    /// Starts a stopped server again on the same port with the same data, so clients holding the URL
    /// (a service's pool) reconnect. Does nothing if it is running.
    ///
    /// Fails if another process took the port meanwhile.
    pub async fn start_again(&mut self) -> Result<(), Error> {
        if self.running {
            return Ok(());
        }
        self.pg_ctl_start().await
    }

    async fn start_on_a_free_port(&mut self) -> Result<(), Error> {
        let mut attempt = 1;
        loop {
            self.port = free_port()?;
            self.url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
            self.write_settings()?;
            match self.pg_ctl_start().await {
                Err(Error::CommandFailed { output, .. })
                    if attempt < PORT_ATTEMPTS && output.contains("Address already in use") =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn pg_ctl_start(&mut self) -> Result<(), Error> {
        let log_path = self.log_path();
        let log_offset = std::fs::metadata(&log_path).map_or(0, |meta| meta.len());
        let started = run_checked(
            self.binaries
                .run("pg_ctl", ["-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log_path)
                .arg("start"),
        )
        .await;
        match started {
            Ok(_) => {
                self.running = true;
                Ok(())
            }
            // pg_ctl only says "see the log"; the reason (e.g. the port is taken) is in the log.
            Err(Error::CommandFailed { command, status, output }) => Err(Error::CommandFailed {
                command,
                status,
                output: format!("{output}\n--- {} ---\n{}", log_path.display(), read_from(&log_path, log_offset)),
            }),
            Err(other) => Err(other),
        }
    }

    fn write_settings(&self) -> Result<(), Error> {
        let settings = format!(
            "port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\n\
             max_connections = {MAX_CONNECTIONS}\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            port = self.port,
            socket_dir = self.root.display().to_string().replace('\'', "''"),
        );
        let path = self.data_dir().join(SETTINGS_FILE);
        std::fs::write(&path, settings).map_err(Error::io(format!("writing {}", path.display())))?;
        self.binaries.hand_over(&path)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join(DATA_DIR)
    }
}

/// A free port below the ephemeral range ([`crate::ports::free_port`]): the server is stopped and started again
/// on the same port, and an ephemeral one can meanwhile become the local end of any outgoing connection (seen:
/// "Address already in use" on the restart). It is released before Postgres binds it, hence the retry in
/// [`PostgresServer::start`].
fn free_port() -> Result<u16, Error> {
    crate::ports::free_port().map_err(Error::io("finding a free TCP port"))
}

fn append_line(path: &Path, line: &str) -> Result<(), Error> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| writeln!(file, "\n{line}"))
        .map_err(Error::io(format!("appending to {}", path.display())))
}

/// The log written since `offset`, for error messages; best effort.
fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_string(&mut text)
    });
    match read {
        Ok(_) => text.trim_end().to_owned(),
        Err(error) => format!("(could not read the log: {error})"),
    }
}
