//! Waiting for a condition with a deadline, the alternative to sleeping in tests.
//!
//! ```
//! # async fn demo() -> Result<(), testkit::wait::TimedOut> {
//! use testkit::wait;
//! let ready = std::sync::atomic::AtomicBool::new(true);
//! wait::until(wait::DEFAULT_TIMEOUT, || async {
//!     ready.load(std::sync::atomic::Ordering::SeqCst)
//! })
//! .await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// A deadline generous enough for a loaded 2-core CI machine; a passing test never waits this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(10);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A condition did not hold before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("condition not met within {timeout:?}")]
pub struct TimedOut {
    /// How long we waited.
    pub timeout: Duration,
}

/// Re-evaluates `condition` until it returns `true`, backing off from 10 ms to 250 ms between tries.
///
/// A single evaluation that hangs past the deadline counts as a timeout too.
pub async fn until<F, Fut>(timeout: Duration, mut condition: F) -> Result<(), TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(timeout, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// Re-evaluates `probe` until it returns `Some`, and returns that value.
///
/// Useful when the thing you wait for is also the thing you want: a row, a response, a port.
pub async fn until_some<T, F, Fut>(timeout: Duration, mut probe: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(_elapsed) => return Err(TimedOut { timeout }),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut { timeout });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn until_returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let result = until(Duration::from_secs(10), || async { calls.fetch_add(1, Ordering::SeqCst) >= 3 }).await;
        assert_eq!(result, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn until_times_out_when_the_condition_never_holds() {
        let timeout = Duration::from_millis(100);
        let started = std::time::Instant::now();
        assert_eq!(until(timeout, || async { false }).await, Err(TimedOut { timeout }));
        assert!(started.elapsed() >= timeout);
    }

    #[tokio::test]
    async fn a_hanging_probe_cannot_outlast_the_deadline() {
        let timeout = Duration::from_millis(100);
        let result = until_some(timeout, std::future::pending::<Option<()>>).await;
        assert_eq!(result, Err(TimedOut { timeout }));
    }

    #[tokio::test]
    async fn until_some_hands_back_the_value() {
        let calls = AtomicU32::new(0);
        let value = until_some(Duration::from_secs(10), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            (n == 2).then_some(n * 10)
        })
        .await;
        assert_eq!(value, Ok(20));
    }
}
