//! Token-bucket rate limiting (GCRA via `governor`): per client address before authentication, per user after.

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use observability::Problem;

use crate::config::RateQuota;

/// A keyed limiter; each key gets its own bucket.
#[derive(Debug)]
pub struct Limiter<K: Hash + Eq + Clone> {
    buckets: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter refilling each key's bucket by `quota.per_second` tokens a second, holding at most `quota.burst`.
    pub fn new(quota: RateQuota) -> Self {
        let quota = Quota::per_second(quota.per_second).allow_burst(quota.burst);
        Self { buckets: DefaultKeyedRateLimiter::keyed(quota), clock: DefaultClock::default() }
    }

    /// `Err(wait)` when `key` is over its quota.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.buckets.check_key(key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops buckets that are full again, so memory tracks active clients rather than every client ever seen.
    pub fn forget_idle(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }
}

/// 429 with `Retry-After` in whole seconds, rounded up so a client that waits exactly that long gets through.
pub fn too_many_requests(wait: Duration) -> Problem {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Problem::too_many_requests(seconds.max(1))
}

/// Middleware: limits by the peer address (as `observability::serve` records it).
pub async fn limit_per_client(State(limiter): State<Arc<Limiter<IpAddr>>>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(address)| address.ip());
    match limiter.check(&client) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn burst_then_refuse_with_a_wait() {
        let one = NonZeroU32::MIN;
        let limiter = Limiter::new(RateQuota { per_second: one, burst: NonZeroU32::new(2).expect("non-zero") });
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        let wait = limiter.check(&"a").expect_err("over quota");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another key has its own bucket.
        assert!(limiter.check(&"b").is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        let problem = too_many_requests(Duration::from_millis(1200));
        assert_eq!(problem.body()["status"], 429);
        assert!(problem.detail().is_some_and(|d| d.contains("2 s")));
    }
}
