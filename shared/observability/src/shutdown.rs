//! One shutdown signal shared by the server, workers and background tasks.

use tokio_util::sync::CancellationToken;

/// A cloneable "please stop" flag; every clone sees the same trigger.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal nothing triggers yet but [`trigger`](Self::trigger).
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers on SIGTERM or SIGINT. Must be called inside a Tokio runtime. (Turning readiness off first is
    /// the runtime's job: it watches the same signal.)
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                signal = termination_signal() => {
                    tracing::info!(signal, "shutdown requested by signal");
                    trigger.trigger();
                }
                () = trigger.requested() => {}
            }
        });
        shutdown
    }

    /// Requests shutdown; idempotent.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Completes once shutdown has been requested (immediately if it already was).
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// Whether shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The underlying token, for APIs that take a `CancellationToken` directly.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// Waits for SIGTERM (what orchestrators send) or SIGINT (Ctrl-C) and names the one that came.
#[cfg(unix)]
async fn termination_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(error), _) | (_, Err(error)) => {
            // Without signal handlers the process would die abruptly on SIGTERM; fall back to Ctrl-C.
            tracing::error!(%error, "could not install signal handlers; only Ctrl-C will shut down gracefully");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn termination_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let shutdown = Shutdown::new();
        let waiter = shutdown.clone();
        assert!(!waiter.is_requested());
        let waiting = tokio::spawn(async move { waiter.requested().await });
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(shutdown.is_requested());
        // Already triggered: completes at once.
        tokio::time::timeout(Duration::from_secs(5), shutdown.requested()).await.unwrap();
    }
}
