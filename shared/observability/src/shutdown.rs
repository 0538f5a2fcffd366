//! One shutdown signal shared by the server, workers and background tasks.

use tokio_util::sync::CancellationToken;

use crate::health::Health;

/// A cloneable "please stop" flag; every clone sees the same trigger.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers on SIGTERM or SIGINT, after turning readiness off so load balancers stop routing here
    /// before the listener closes. Until then it also keeps `health`'s check gauges sampled
    /// ([`Health::sample_until`]). Must be called inside a Tokio runtime.
    pub fn on_signals(health: Health) -> Self {
        let shutdown = Self::new();
        tokio::spawn(health.clone().sample_until(crate::health::SAMPLE_INTERVAL, shutdown.token()));
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                signal = termination_signal() => {
                    tracing::info!(signal, "shutdown requested by signal");
                    health.set_shutting_down();
                    trigger.trigger();
                }
                () = trigger.requested() => health.set_shutting_down(),
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

    #[tokio::test]
    async fn manual_trigger_of_a_signal_shutdown_marks_not_ready() {
        let health = Health::new();
        let shutdown = Shutdown::on_signals(health.clone());
        shutdown.trigger();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !health.is_shutting_down() {
            assert!(tokio::time::Instant::now() < deadline, "readiness never turned off");
            tokio::task::yield_now().await;
        }
    }
}
