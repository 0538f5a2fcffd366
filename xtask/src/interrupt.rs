//! Ctrl-C and SIGTERM, turned into a value commands can await.
//!
//! Children run in their own process groups (see `children`), so a terminal's Ctrl-C reaches only
//! xtask; the command then stops its children in order and cleans up what it started.

use anyhow::Context as _;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The first stop request of the run, shared by every clone.
#[derive(Debug, Clone)]
pub struct Interrupt {
    received: watch::Receiver<Option<Signal>>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM; from now on they no longer kill the process.
    pub fn install() -> anyhow::Result<Self> {
        let mut interrupts = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminations = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let (sender, received) = watch::channel(None);
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = interrupts.recv() => Signal::SIGINT,
                    _ = terminations.recv() => Signal::SIGTERM,
                };
                let first = sender.send_replace(Some(signal)).is_none();
                if first {
                    eprintln!("\nxtask: {signal} received, stopping everything it started…");
                } else {
                    eprintln!("xtask: still stopping (each process gets a bounded grace period)…");
                }
            }
        });
        Ok(Self { received })
    }

    /// The signal, if one has arrived.
    pub fn received(&self) -> Option<Signal> {
        *self.received.borrow()
    }

    /// Resolves once a stop has been requested (at once if it already was).
    pub async fn requested(&mut self) -> Signal {
        match self.received.wait_for(Option::is_some).await {
            Ok(signal) => (*signal).unwrap_or(Signal::SIGINT),
            // The listener task never ends while the runtime runs; if it did, nobody can ask to stop.
            Err(_) => std::future::pending().await,
        }
    }
}
