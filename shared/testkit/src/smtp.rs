//! An in-test SMTP server: point a service's `SMTP_HOST`/`SMTP_PORT` at it and assert on the mail it received.
//!
//! It speaks plain SMTP (RFC 5321) — `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` with dot-unstuffing, `RSET`,
//! `NOOP`, `QUIT` — without TLS or authentication, and accepts every message. [`SmtpSink::stop`] closes the
//! listener *and* every open session (a pooled client connection breaks like it would against a dead server);
//! [`SmtpSink::restart`] listens on the same port again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testkit::Error> {
//! use std::time::Duration;
//! let sink = testkit::smtp::SmtpSink::start().await?;
//! // spawn the service with SMTP_HOST=127.0.0.1 SMTP_PORT=sink.port(), make it send, then:
//! let mail = sink
//!     .wait_for(|mail| mail.subject.as_deref() == Some("Reminder: Water the plants"), Duration::from_secs(30))
//!     .await
//!     .expect("the reminder arrived");
//! assert_eq!(mail.recipients, ["alice@example.com"]);
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use crate::collected::Collected;

/// Upper bound on one command line and on one message, so a runaway client cannot exhaust memory.
const MAX_LINE_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
const HOSTNAME: &str = "testkit-smtp-sink";

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets; empty for a null sender.
    pub sender: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets, in order.
    pub recipients: Vec<String>,
    /// The message as transmitted after `DATA` (headers and body, CRLF line ends), dot-unstuffed and without
    /// the terminating `.` line.
    pub data: String,
    /// The `Subject` header, unfolded; RFC 2047 encoded words are left as they are.
    pub subject: Option<String>,
    /// When the sink accepted the message (the end of `DATA`, just before its `250`): where a delivery's latency
    /// ends.
    pub received_at: std::time::SystemTime,
}

impl ReceivedMail {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(&self.data, name)
    }

    /// The body: everything after the blank line that ends the headers.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body)
    }
}

/// A plain SMTP server on 127.0.0.1 keeping every message in memory (and optionally as `.eml` files).
///
/// It runs on the current Tokio runtime and stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    messages: Collected<ReceivedMail>,
    maildir: Option<PathBuf>,
    written: AtomicU64,
}

impl SmtpSink {
    /// Listens on 127.0.0.1 and a free port.
    pub async fn start() -> Result<Self, Error> {
        Self::start_on(0, None).await
    }

    /// Like [`start`](Self::start), and also writes each message to `dir` as `NNNNNN.eml` (created if missing),
    /// so a developer can open demo mail with any mail reader.
    pub async fn start_with_maildir(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::start_on(0, Some(dir.as_ref().to_path_buf())).await
    }

    /// Listens on 127.0.0.1:`port` (`0`: a free port), optionally writing `.eml` files into `maildir`.
    pub async fn start_on(port: u16, maildir: Option<PathBuf>) -> Result<Self, Error> {
        if let Some(dir) = &maildir {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(Error::io(format!("creating the mail directory {}", dir.display())))?;
        }
        let listener = bind(port).await?;
        let address = listener.local_addr().map_err(Error::io("reading the SMTP sink's address"))?;
        let shared = Arc::new(Shared { messages: Collected::new(), maildir, written: AtomicU64::new(0) });
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(Self { address, shared, server: Mutex::new(Some(server)) })
    }

    /// Where the sink listens: 127.0.0.1 and its port.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `127.0.0.1`, for `SMTP_HOST`.
    pub fn host(&self) -> String {
        self.address.ip().to_string()
    }

    /// For `SMTP_PORT`; stays the same across [`stop`](Self::stop) and [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages.snapshot()
    }

    /// Waits for the first message (already received or still to come) matching `predicate`; `None` when
    /// `timeout` passes first.
    pub async fn wait_for(&self, predicate: impl Fn(&ReceivedMail) -> bool, timeout: Duration) -> Option<ReceivedMail> {
        self.shared.messages.wait_for(predicate, timeout).await
    }

    /// Whether the server is accepting connections.
    pub fn is_running(&self) -> bool {
        self.lock_server().is_some()
    }

    /// Stops listening and drops every open session: clients now get "connection refused", and a pooled
    /// connection fails on its next command. Messages received so far are kept.
    pub async fn stop(&self) {
        let server = self.lock_server().take();
        if let Some(server) = server {
            server.abort();
            // Wait until the task (and with it the listener and every session) is gone, so the port is free.
            let _ = server.await;
        }
    }

    /// Listens on the same port again after [`stop`](Self::stop); a no-op while running.
    pub async fn restart(&self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        let listener = bind(self.address.port()).await?;
        let server = tokio::spawn(serve(listener, Arc::clone(&self.shared)));
        *self.lock_server() = Some(server);
        Ok(())
    }

    fn lock_server(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.lock_server().take() {
            server.abort();
        }
    }
}

/// Binds with `SO_REUSEADDR`, so a restart can take the port back while old sessions linger in TIME_WAIT.
async fn bind(port: u16) -> Result<TcpListener, Error> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let context = || format!("binding the SMTP sink to {address}");
    let socket = TcpSocket::new_v4().map_err(Error::io(context()))?;
    socket.set_reuseaddr(true).map_err(Error::io(context()))?;
    socket.bind(address).map_err(Error::io(context()))?;
    socket.listen(128).map_err(Error::io(context()))
}

/// Accepts sessions until aborted; aborting drops the `JoinSet`, which aborts every session with it.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session(stream, Arc::clone(&shared)));
                }
                Err(error) => eprintln!("testkit: the SMTP sink could not accept a connection: {error}"),
            },
            // Reap finished sessions so the set does not grow over a long test.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// The envelope of the transaction in progress.
#[derive(Debug, Default)]
struct Envelope {
    sender: Option<String>,
    recipients: Vec<String>,
}

/// A session ended early: the client went away or broke a limit; nothing to report to the test.
struct Closed;

async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let _ = converse(&mut reader, &mut writer, &shared).await;
}

async fn converse(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
) -> Result<(), Closed> {
    reply(writer, &format!("220 {HOSTNAME} ESMTP ready")).await?;
    let mut envelope = Envelope::default();
    loop {
        let line = read_line(reader).await?;
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                envelope = Envelope::default();
                reply(writer, &format!("250-{HOSTNAME} greets {argument}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE_BYTES}"))
                    .await?;
            }
            "HELO" => {
                envelope = Envelope::default();
                reply(writer, &format!("250 {HOSTNAME}")).await?;
            }
            "MAIL" => match path_argument(argument, "FROM:") {
                Some(sender) => {
                    envelope = Envelope { sender: Some(sender), recipients: Vec::new() };
                    reply(writer, "250 OK").await?;
                }
                None => reply(writer, "501 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => match (&envelope.sender, path_argument(argument, "TO:")) {
                (None, _) => reply(writer, "503 MAIL first").await?,
                (Some(_), Some(recipient)) if !recipient.is_empty() => {
                    envelope.recipients.push(recipient);
                    reply(writer, "250 OK").await?;
                }
                (Some(_), _) => reply(writer, "501 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" => {
                if envelope.recipients.is_empty() {
                    reply(writer, "503 RCPT first").await?;
                    continue;
                }
                reply(writer, "354 End data with <CR><LF>.<CR><LF>").await?;
                let data = read_data(reader).await?;
                let received_at = std::time::SystemTime::now();
                let envelope = std::mem::take(&mut envelope);
                let mail = ReceivedMail {
                    sender: envelope.sender.unwrap_or_default(),
                    recipients: envelope.recipients,
                    subject: header_value(&data, "Subject"),
                    data,
                    received_at,
                };
                shared.keep(mail).await;
                reply(writer, "250 OK: queued").await?;
            }
            "RSET" => {
                envelope = Envelope::default();
                reply(writer, "250 OK").await?;
            }
            "NOOP" => reply(writer, "250 OK").await?,
            "QUIT" => {
                reply(writer, "221 Bye").await?;
                return Ok(());
            }
            _ => reply(writer, "502 Command not implemented").await?,
        }
    }
}

impl Shared {
    async fn keep(&self, mail: ReceivedMail) {
        if let Some(dir) = &self.maildir {
            let number = self.written.fetch_add(1, Ordering::Relaxed) + 1;
            let path = dir.join(format!("{number:06}.eml"));
            if let Err(error) = tokio::fs::write(&path, mail.data.as_bytes()).await {
                eprintln!("testkit: the SMTP sink could not write {}: {error}", path.display());
            }
        }
        self.messages.push(mail);
    }
}

async fn reply(writer: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> Result<(), Closed> {
    writer.write_all(format!("{text}\r\n").as_bytes()).await.map_err(|_| Closed)?;
    writer.flush().await.map_err(|_| Closed)
}

/// One command line without its line end.
async fn read_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<String, Closed> {
    let mut line = Vec::new();
    let read = (&mut *reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line).await.map_err(|_| Closed)?;
    if read == 0 || !line.ends_with(b"\n") {
        return Err(Closed);
    }
    Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned())
}

/// The message after `DATA`, up to the lone `.` line, with leading dots unstuffed (RFC 5321 §4.5.2).
async fn read_data(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<String, Closed> {
    let mut data = String::new();
    loop {
        let line = read_line(reader).await?;
        if line == "." {
            return Ok(data);
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        if data.len() + line.len() > MAX_MESSAGE_BYTES {
            return Err(Closed);
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
}

/// `FROM:<a@b> SIZE=1` → `a@b` (the keyword is matched case-insensitively; parameters are ignored).
fn path_argument(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = argument[keyword.len()..].trim_start();
    let inner = path.strip_prefix('<')?.split_once('>')?.0;
    Some(inner.to_owned())
}

/// The first header called `name` in the header block of `data`, continuation lines unfolded.
fn header_value(data: &str, name: &str) -> Option<String> {
    let headers = data.split("\r\n\r\n").next().unwrap_or_default();
    let mut value: Option<String> = None;
    for line in headers.split("\r\n") {
        match &mut value {
            Some(value) if line.starts_with([' ', '\t']) => {
                value.push(' ');
                value.push_str(line.trim());
            }
            Some(_) => break,
            None => {
                if let Some((field, rest)) = line.split_once(':')
                    && field.trim().eq_ignore_ascii_case(name)
                {
                    value = Some(rest.trim().to_owned());
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envelope_paths_and_folded_headers() {
        assert_eq!(path_argument("FROM:<a@example.com> SIZE=10", "FROM:").as_deref(), Some("a@example.com"));
        assert_eq!(path_argument("to: <b@example.com>", "TO:").as_deref(), Some("b@example.com"));
        assert_eq!(path_argument("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_argument("FROM:a@example.com", "FROM:"), None);
        let data =
            "From: a@example.com\r\nSubject: Reminder:\r\n  Water the plants\r\nTo: b@example.com\r\n\r\nbody\r\n";
        assert_eq!(header_value(data, "subject").as_deref(), Some("Reminder: Water the plants"));
        assert_eq!(header_value(data, "To").as_deref(), Some("b@example.com"));
        assert_eq!(header_value(data, "Cc"), None);
    }
}
