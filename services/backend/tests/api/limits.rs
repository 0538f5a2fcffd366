//! Size and rate limits: 413 and 429 problems, with `Retry-After`.

use std::num::NonZeroU32;

use backend::config::RateQuota;
use reqwest::{Method, StatusCode};
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
    let app = TestApp::start_with(|config| config.http.body_limit_bytes = 8 * 1024).await;
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
    for _ in 0..3 {
        let response = app.as_user("alice", Method::GET, "/v1/tasks").send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = app.as_user("alice", Method::GET, "/v1/tasks").send().await.expect("request");
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
    let mut statuses = Vec::new();
    for _ in 0..6 {
        // No token at all: the address limit still applies, so bad tokens cannot be sprayed for free.
        let response = app.request(Method::GET, "/v1/tasks").send().await.expect("request");
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        }
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    // Probes and metrics are never rate limited.
    let ready = app.request(Method::GET, "/health/live").send().await.expect("live");
    assert_eq!(ready.status(), StatusCode::OK);
}
