//! The SMTP sink against a hand-driven SMTP client over real TCP: the dialogue, dot-unstuffing, RSET, the
//! `.eml` files, and stop/restart on the same port.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use testkit::smtp::SmtpSink;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// A minimal SMTP client that checks each reply code.
struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(sink: &SmtpSink) -> std::io::Result<Self> {
        let (reader, writer) = TcpStream::connect(sink.address()).await?.into_split();
        let mut client = Self { reader: BufReader::new(reader), writer };
        client.expect("220").await;
        Ok(client)
    }

    /// Reads one (possibly multi-line) reply and asserts its code.
    async fn expect(&mut self, code: &str) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).await.unwrap() > 0, "connection closed");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
        reply
    }

    async fn send(&mut self, line: &str, code: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        self.expect(code).await
    }
}

#[tokio::test]
async fn receives_a_message_with_its_envelope_and_unstuffed_body() {
    let maildir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_with_maildir(maildir.path()).await.unwrap();
    let mut client = Client::connect(&sink).await.unwrap();
    let greeting = client.send("EHLO test.example", "250").await;
    assert!(greeting.contains("8BITMIME"), "{greeting}");
    client.send("MAIL FROM:<discarded@example.com>", "250").await;
    client.send("RSET", "250").await;
    client.send("NOOP", "250").await;
    client.send("RCPT TO:<nobody@example.com>", "503").await;
    client.send("MAIL FROM:<taskwatch@example.com>", "250").await;
    client.send("RCPT TO:<alice@example.com>", "250").await;
    client.send("RCPT TO:<bob@example.com>", "250").await;
    client.send("DATA", "354").await;
    client
        .send(
            "Subject: Reminder:\r\n Water the plants\r\nFrom: taskwatch@example.com\r\n\r\n..leading dot\r\nline\r\n.",
            "250",
        )
        .await;
    client.send("QUIT", "221").await;

    let mail = sink.wait_for(|_| true, WAIT).await.expect("a message");
    assert_eq!(mail.sender, "taskwatch@example.com");
    assert_eq!(mail.recipients, ["alice@example.com", "bob@example.com"]);
    assert_eq!(mail.subject.as_deref(), Some("Reminder: Water the plants"));
    assert_eq!(mail.header("from").as_deref(), Some("taskwatch@example.com"));
    assert_eq!(mail.body(), ".leading dot\r\nline\r\n");
    assert_eq!(sink.messages().len(), 1);
    let written = std::fs::read_to_string(maildir.path().join("000001.eml")).unwrap();
    assert_eq!(written, mail.data);
}

#[tokio::test]
async fn stop_refuses_and_drops_sessions_and_restart_listens_on_the_same_port() {
    let sink = SmtpSink::start().await.unwrap();
    let port = sink.port();
    let mut open = Client::connect(&sink).await.unwrap();
    open.send("HELO test.example", "250").await;

    sink.stop().await;
    assert!(!sink.is_running());
    assert!(TcpStream::connect(sink.address()).await.is_err(), "still accepting after stop");
    // The open session was dropped with the server: the next command sees the connection end.
    let _ = open.writer.write_all(b"NOOP\r\n").await;
    let mut line = String::new();
    let read = tokio::time::timeout(WAIT, open.reader.read_line(&mut line)).await.expect("no hang");
    assert!(matches!(read, Ok(0) | Err(_)), "session survived stop: {line:?}");

    sink.restart().await.unwrap();
    assert_eq!(sink.port(), port);
    let mut client = Client::connect(&sink).await.unwrap();
    client.send("HELO test.example", "250").await;
    client.send("QUIT", "221").await;
}
