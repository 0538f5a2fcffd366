//! Size and rate limits: 413 and 429 problems, with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Instant;

use backend::config::RateQuota;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::harness::{TestApp, expect_problem};

fn quota(per_second: u32, burst: u32) -> RateQuota {
    RateQuota {
        per_second: NonZeroU32::new(per_second).expect("non-zero"),
        burst: NonZeroU32::new(burst).expect("non-zero"),
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::start_with(|config| config.base.http.body_limit_bytes = 8 * 1024).await;
    let big = json!({ "title": "t", "description": "d".repeat(16 * 1024) });
    let response = app.as_user("alice", Method::POST, "/v1/tasks").json(&big).send().await.expect("request");
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Just under the limit is fine (and then only validation applies).
    let fits = json!({ "title": "t", "description": "d".repeat(4 * 1024) });
    let response = app.as_user("alice", Method::POST, "/v1/tasks").json(&fits).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn each_user_has_their_own_rate_limit() {
    let app = TestApp::start_with(|config| {
        config.rate_limit.enabled = true;
        config.rate_limit.per_user = quota(1, 3);
        config.rate_limit.per_client = quota(1000, 1000);
    })
    .await;
    let started = Instant::now();
    for _ in 0..3 {
        let response = app.as_user("alice", Method::GET, "/v1/tasks").send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "within the burst");
    }
    // The bucket refills one token per second, so a slow machine may see a refill before the limit bites.
    let limited = first_limited(&app, Some("alice"), started).await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after), "retry after {retry_after}");
    expect_problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // Bob is unaffected by Alice's burst.
    let bob = app.as_user("bob", Method::GET, "/v1/tasks").send().await.expect("request");
    assert_eq!(bob.status(), StatusCode::OK);
}

#[tokio::test]
async fn clients_are_limited_before_authentication() {
    let app = TestApp::start_with(|config| {
        config.rate_limit.enabled = true;
        config.rate_limit.per_user = quota(1000, 1000);
        config.rate_limit.per_client = quota(1, 5);
    })
    .await;
    let started = Instant::now();
    for _ in 0..5 {
        // No token at all: the address limit still applies, so bad tokens cannot be sprayed for free.
        let response = app.request(Method::GET, "/v1/tasks").send().await.expect("request");
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    let limited = first_limited(&app, None, started).await;
    assert!(limited.headers().contains_key("retry-after"));
    expect_problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // Probes and metrics are never rate limited.
    let ready = app.request(Method::GET, "/health/live").send().await.expect("live");
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Sends requests until one is limited. At 1 token/s, no more than one extra request per elapsed second (plus
/// one) may get through after the burst; more means the limiter is not limiting.
async fn first_limited(app: &TestApp, user: Option<&str>, started: Instant) -> Response {
    for extra in 0..20u64 {
        let request = match user {
            Some(user) => app.as_user(user, Method::GET, "/v1/tasks"),
            None => app.request(Method::GET, "/v1/tasks"),
        };
        let response = request.send().await.expect("request");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return response;
        }
        assert!(extra <= started.elapsed().as_secs() + 1, "{extra} requests passed beyond the burst");
    }
    panic!("never rate limited");
}
