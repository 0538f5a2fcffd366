//! Every way to be unauthenticated is a 401 problem with a Bearer challenge.

use std::time::Duration;

use backend::config::AuthConfig;
use observability::config::Secret;
use reqwest::{Method, StatusCode};

use crate::harness::{JWT_SECRET, TestApp, expect_problem};

fn config(secret: &str, issuer: Option<&str>, audience: Option<&str>) -> AuthConfig {
    AuthConfig {
        jwt_secret: Secret::new(secret),
        issuer: issuer.map(str::to_owned),
        audience: audience.map(str::to_owned),
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = TestApp::start_with(|config| {
        config.auth.issuer = Some("taskwatch-dev".into());
        config.auth.audience = Some("taskwatch-api".into());
    })
    .await;
    let good = backend::auth::mint(&app.config.auth, "alice", Duration::from_secs(60)).expect("token");
    let ok = app.request(Method::GET, "/v1/tasks").bearer_auth(&good).send().await.expect("request");
    assert_eq!(ok.status(), StatusCode::OK);

    let expired = {
        // Minted with a negative lifetime is not possible through `mint`, so sign an expired token by hand.
        let claims =
            serde_json::json!({ "sub": "alice", "exp": 1_000, "iss": "taskwatch-dev", "aud": "taskwatch-api" });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .expect("token")
    };
    let wrong_key = backend::auth::mint(
        &config("another-secret-another-secret-0123", Some("taskwatch-dev"), Some("taskwatch-api")),
        "alice",
        Duration::from_secs(60),
    )
    .expect("token");
    let wrong_issuer =
        backend::auth::mint(&config(JWT_SECRET, Some("evil"), Some("taskwatch-api")), "alice", Duration::from_secs(60))
            .expect("token");
    let wrong_audience = backend::auth::mint(
        &config(JWT_SECRET, Some("taskwatch-dev"), Some("other")),
        "alice",
        Duration::from_secs(60),
    )
    .expect("token");
    let no_issuer =
        backend::auth::mint(&config(JWT_SECRET, None, None), "alice", Duration::from_secs(60)).expect("token");
    let unsigned = {
        use base64::Engine as _;
        let encode = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            encode(serde_json::json!({ "alg": "none", "typ": "JWT" })),
            encode(serde_json::json!({ "sub": "alice", "exp": 4_000_000_000u64 }))
        )
    };

    let authorization_values = [
        None,
        Some("Basic YWxpY2U6cGFzcw==".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {wrong_key}")),
        Some(format!("Bearer {wrong_issuer}")),
        Some(format!("Bearer {wrong_audience}")),
        Some(format!("Bearer {no_issuer}")),
        Some(format!("Bearer {unsigned}")),
    ];
    for value in authorization_values {
        let mut request = app.request(Method::GET, "/v1/tasks");
        if let Some(value) = &value {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.headers().get("www-authenticate").map(|v| v.to_str().ok()), Some(Some("Bearer")));
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
        let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
        assert!(!detail.contains("eyJ"), "the token is never echoed: {detail}");
    }
}

#[tokio::test]
async fn every_v1_route_requires_a_token() {
    let app = TestApp::start().await;
    // Every operation the OpenAPI document lists under /v1, so a route added later is covered without a list here.
    let document: serde_json::Value =
        app.request(Method::GET, "/openapi.json").send().await.expect("document").json().await.expect("JSON");
    let id = uuid::Uuid::now_v7().to_string();
    let mut checked = 0;
    for (template, operations) in document["paths"].as_object().expect("paths") {
        if !template.starts_with("/v1/") {
            continue;
        }
        let path = template.replace("{id}", &id);
        for method in operations.as_object().expect("operations").keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("an HTTP method");
            let response =
                app.request(method.clone(), &path).json(&serde_json::json!({})).send().await.expect("request");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {template} without a token");
            expect_problem(response, StatusCode::UNAUTHORIZED).await;
            checked += 1;
        }
    }
    // The nine public operations, at least: the document really was read.
    assert!(checked >= 9, "only {checked} /v1 operations in the document");
}
