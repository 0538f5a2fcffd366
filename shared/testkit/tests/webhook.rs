//! The webhook receiver over real HTTP: requests are recorded with headers and body, and answered with the
//! status the test chose.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use testkit::webhook::WebhookReceiver;

#[tokio::test]
async fn records_requests_and_answers_the_chosen_status() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let client = reqwest::Client::new();
    let first = client
        .post(receiver.url())
        .header("Webhook-Id", "event-1")
        .header("Content-Type", "application/json")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);

    receiver.respond_with(503);
    let second = client.post(receiver.url()).body("x").send().await.unwrap();
    assert_eq!(second.status(), 503);

    let call = receiver.wait_for(|call| call.header("webhook-id") == Some("event-1"), Duration::from_secs(10)).await;
    let call = call.expect("the first call was recorded");
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/hook");
    assert_eq!(call.json().unwrap()["hello"], "world");
    assert_eq!(call.answered, 200);
    let answers: Vec<u16> = receiver.requests().iter().map(|call| call.answered).collect();
    assert_eq!(answers, [200, 503]);
}
