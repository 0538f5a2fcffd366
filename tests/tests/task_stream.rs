//! The live task stream (`GET /v1/tasks/stream`) on the real system: two backend replicas fed by the real broker,
//! recurring-task making next occurrences, clients parsing with an independent SSE parser.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::sse::{StreamedEvent, TaskStreamClient};
use e2e::{Api, DEADLINE, PIPELINE_DEADLINE, Service, Stack, TraceParent, metric_samples, mint_token};
use serde_json::{Value, json};

/// The changes the scenario makes, in order, as the stream names them.
const SCENARIO: [&str; 8] =
    ["created", "updated", "completed", "reopened", "deleted", "created", "completed", "created"];

async fn two_backends(extra: &[(&str, &str)]) -> Stack {
    let mut builder =
        Stack::builder().services(&[Service::Backend, Service::RecurringTask]).replicas(Service::Backend, 2);
    for (key, value) in extra {
        builder = builder.env(Service::Backend, key, value);
    }
    builder.start().await.expect("stack starts")
}

fn replica(stack: &Stack, index: usize) -> String {
    stack.replica_url(Service::Backend, index).expect("replica")
}

/// Every change kind, on replica `base_url`: a one-off task created, updated, completed, reopened and deleted;
/// a daily task created and completed, whose next occurrence recurring-task creates. Returns the ids of the tasks
/// each change is about, in order.
async fn make_every_kind_of_change(api: &Api) -> Vec<String> {
    let one_off = api
        .create_task(&json!({ "title": "Stream: one-off", "due_at": "2030-01-15T09:00:00Z", "time_zone": "UTC" }))
        .await
        .expect("created");
    let id = one_off["id"].as_str().expect("id").to_owned();
    api.update(&id, 1, &json!({ "title": "Stream: one-off, renamed" })).await.expect("updated");
    api.complete(&id).await.expect("completed");
    api.reopen(&id).await.expect("reopened");
    api.delete(&id).await.expect("deleted");
    let daily = api
        .create_task(&json!({
            "title": "Stream: daily",
            "due_at": "2030-02-01T07:00:00Z",
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("created");
    let daily_id = daily["id"].as_str().expect("id").to_owned();
    api.complete(&daily_id).await.expect("completed");
    let series = daily["series_id"].as_str().expect("series");
    let next = api.wait_for_open_in_series(series, PIPELINE_DEADLINE).await.expect("a next occurrence");
    let next_id = next[0]["id"].as_str().expect("id").to_owned();
    vec![id.clone(), id.clone(), id.clone(), id.clone(), id, daily_id.clone(), daily_id, next_id]
}

fn ids(events: &[StreamedEvent]) -> Vec<String> {
    events.iter().map(|event| event.id.clone()).collect()
}

/// What the OpenAPI document promises of the stream: its 200 media type, the message's required members and
/// the change kinds.
struct StreamContract {
    media_type: String,
    required: BTreeSet<String>,
    properties: BTreeSet<String>,
    kinds: BTreeSet<String>,
}

async fn stream_contract(base_url: &str) -> StreamContract {
    let document: Value =
        reqwest::get(format!("{base_url}/openapi.json")).await.expect("document").json().await.expect("JSON");
    let ok = &document["paths"]["/v1/tasks/stream"]["get"]["responses"]["200"]["content"];
    let media_type = ok.as_object().and_then(|content| content.keys().next().cloned()).unwrap_or_default();
    let schemas = &document["components"]["schemas"];
    let names = |value: &Value| -> BTreeSet<String> {
        value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    let message = &schemas["TaskChangeMessage"];
    StreamContract {
        media_type,
        required: names(&message["required"]),
        properties: message["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default(),
        kinds: names(&schemas["TaskChangeKind"]["enum"]),
    }
}

#[tokio::test]
async fn every_replica_streams_each_change_of_its_users_only_and_resumes_anywhere_without_gap_or_repeat() {
    let stack = two_backends(&[]).await;
    let (first, second) = (replica(&stack, 0), replica(&stack, 1));
    let alice = Api::for_user(&first, "stream-alice").expect("client");
    let bob = Api::for_user(&second, "stream-bob").expect("client");
    let on_first = TaskStreamClient::open(&first, alice.token(), None).await.expect("alice's stream on replica 1");
    let on_second = TaskStreamClient::open(&second, alice.token(), None).await.expect("alice's stream on replica 2");
    let bobs = TaskStreamClient::open(&second, bob.token(), None).await.expect("bob's stream on replica 2");

    let task_ids = make_every_kind_of_change(&alice).await;

    let seen_first = on_first.wait_for_count(SCENARIO.len(), PIPELINE_DEADLINE).await;
    let seen_second = on_second.wait_for_count(SCENARIO.len(), PIPELINE_DEADLINE).await;
    let kinds: Vec<&str> = seen_first.iter().map(StreamedEvent::change).collect();
    assert_eq!(kinds, SCENARIO, "replica 1 streamed {seen_first:#?}");
    let about: Vec<&str> = seen_first.iter().map(StreamedEvent::task_id).collect();
    assert_eq!(about, task_ids, "the changes are about other tasks than those changed");
    assert_eq!(ids(&seen_second), ids(&seen_first), "the replicas streamed different changes or orders");
    assert_eq!(seen_first[0].retry, Some(Duration::from_secs(3)), "the first event sets the reconnection delay");
    let distinct: BTreeSet<&String> = seen_first.iter().map(|event| &event.id).collect();
    assert_eq!(distinct.len(), SCENARIO.len(), "an event id repeats");

    // The wire format is what the OpenAPI document says, and each task is what the API itself returns.
    let contract = stream_contract(&first).await;
    assert_eq!(contract.media_type, "text/event-stream");
    assert!(on_first.content_type.starts_with("text/event-stream"), "{}", on_first.content_type);
    for event in &seen_first {
        let members: BTreeSet<String> = event.data.as_object().expect("JSON object").keys().cloned().collect();
        assert!(contract.required.is_subset(&members), "{event:?} lacks a required member of {:?}", contract.required);
        assert!(members.is_subset(&contract.properties), "{event:?} has members the document does not list");
        assert!(contract.kinds.contains(event.change()), "{event:?}: change not in {:?}", contract.kinds);
        assert_eq!(event.data["id"], event.id.as_str(), "the data's id is not the SSE id");
    }
    let next = seen_first.last().expect("the next occurrence");
    assert_eq!(next.data["task"], alice.task(next.task_id()).await.expect("readable"), "the streamed task differs");

    // Never another user's change: bob's first event is his own task.
    let bobs_task = bob
        .create_task(&json!({ "title": "Stream: bob's", "due_at": "2030-03-01T10:00:00Z", "time_zone": "UTC" }))
        .await
        .expect("created");
    let bob_seen = bobs.wait_for_count(1, PIPELINE_DEADLINE).await;
    assert_eq!(bob_seen.first().map(StreamedEvent::task_id), bobs_task["id"].as_str(), "bob saw {bob_seen:#?}");
    assert!(on_second.events().len() == SCENARIO.len(), "alice's stream got bob's change");

    // Resuming, on the other replica and on the same one, at different points: exactly the later changes.
    let all = ids(&seen_first);
    for (after, base_url) in [(2, &second), (5, &first), (0, &first), (SCENARIO.len() - 1, &second)] {
        let resumed = TaskStreamClient::open(base_url, alice.token(), Some(&all[after])).await.expect("resumes");
        let expected = &all[after + 1..];
        let got = resumed.wait_for_count(expected.len(), DEADLINE).await;
        assert_eq!(ids(&got), expected, "resuming after event {after} on {base_url}");
    }
    // Another user's event id resumes nothing: it is as unknown as one never sent.
    let bobs_id = &bob_seen[0].id;
    let refused = TaskStreamClient::open(&first, alice.token(), Some(bobs_id)).await.expect_err("not alice's event");
    assert_eq!(refused.status, 410);
}

#[tokio::test]
async fn a_stream_resumes_changes_made_while_it_was_away_and_refuses_what_it_cannot_resume() {
    // The feed samples its lag as often as it can: sampling must never hold up reading. (It once did: each sample
    // waited behind the tail's long-polling fetch, and the resume below ran out of its wait about one run in four.)
    let stack = two_backends(&[("KAFKA_LAG_INTERVAL", "10ms")]).await;
    let (first, second) = (replica(&stack, 0), replica(&stack, 1));
    let alice = Api::for_user(&first, "stream-away").expect("client");
    let create = |title: &str| json!({ "title": title, "due_at": "2030-01-15T09:00:00Z", "time_zone": "UTC" });

    let stream = TaskStreamClient::open(&first, alice.token(), None).await.expect("opens");
    alice.create_task(&create("Stream: before")).await.expect("created");
    let before = stream.wait_for_count(1, PIPELINE_DEADLINE).await;
    let last_seen = before[0].id.clone();
    drop(stream);
    // Made while no stream is open; the resume goes to the other replica.
    let mut made = Vec::new();
    for title in ["Stream: away 1", "Stream: away 2", "Stream: away 3"] {
        made.push(alice.create_task(&create(title)).await.expect("created")["id"].as_str().expect("id").to_owned());
    }
    let resumed = TaskStreamClient::open(&second, alice.token(), Some(&last_seen)).await.expect("resumes");
    // One more, live, after the resume opened.
    made.push(
        alice.create_task(&create("Stream: after")).await.expect("created")["id"].as_str().expect("id").to_owned(),
    );
    let got = resumed.wait_for_count(made.len(), PIPELINE_DEADLINE).await;
    let about: Vec<&str> = got.iter().map(StreamedEvent::task_id).collect();
    assert_eq!(about, made, "the resumed stream has a gap, a repeat or a change out of order");

    // An id from a year ago: 410 with a problem telling what to do.
    let year_ago = uuid_v7_at(chrono::Utc::now() - chrono::Duration::days(365));
    let gone = TaskStreamClient::open(&first, alice.token(), Some(&year_ago)).await.expect_err("too old");
    assert_eq!((gone.status, gone.content_type.as_str()), (410, "application/problem+json"), "{:?}", gone.body);
    assert!(gone.body["detail"].as_str().is_some_and(|detail| detail.contains("without Last-Event-ID")));
    // Not an event id at all: 400.
    let malformed = TaskStreamClient::open(&first, alice.token(), Some("yesterday")).await.expect_err("malformed");
    assert_eq!((malformed.status, malformed.content_type.as_str()), (400, "application/problem+json"));
    // No token: 401, as every /v1 call.
    let anonymous = TaskStreamClient::open(&first, "", None).await.expect_err("no token");
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn limits_heartbeats_telemetry_and_shutdown_behave_as_documented() {
    let mut stack = two_backends(&[
        ("TASK_STREAM_MAX_PER_USER", "2"),
        ("TASK_STREAM_MAX_CONNECTIONS", "3"),
        ("TASK_STREAM_HEARTBEAT", "1s"),
    ])
    .await;
    let second = replica(&stack, 1);
    let alice = Api::for_user(&second, "stream-limits").expect("client");
    let token = alice.token().to_owned();

    let kept = TaskStreamClient::open(&second, &token, None).await.expect("first stream");
    let closed_early = TaskStreamClient::open(&second, &token, None).await.expect("second stream");
    let refused = TaskStreamClient::open(&second, &token, None).await.expect_err("a third is over the limit");
    assert_eq!(
        (refused.status, refused.content_type.as_str()),
        (429, "application/problem+json"),
        "{:?}",
        refused.body
    );
    assert!(refused.retry_after.is_some(), "429 without Retry-After");
    drop(closed_early);
    let reopened =
        testkit::wait::until_some(DEADLINE, || async { TaskStreamClient::open(&second, &token, None).await.ok() })
            .await
            .expect("a closed stream frees its place");

    // Heartbeats: an idle stream's raw bytes carry the comment, so proxies keep the connection.
    let mut raw = reqwest::Client::new()
        .get(format!("{second}/v1/tasks/stream"))
        .bearer_auth(mint_token("stream-heartbeat").expect("token"))
        .send()
        .await
        .expect("opens");
    let heartbeat = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while let Ok(Some(chunk)) = raw.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.lines().any(|line| line.starts_with(':') && line.contains("heartbeat")) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heartbeat, Ok(true), "no heartbeat comment on an idle stream");
    // Three streams are open on this replica (two of alice's, the heartbeat one): a fourth, anyone's, is 503.
    let full = TaskStreamClient::open(&second, &mint_token("stream-fourth").expect("token"), None)
        .await
        .expect_err("the replica serves as many streams as it may");
    assert_eq!((full.status, full.content_type.as_str()), (503, "application/problem+json"), "{:?}", full.body);
    assert!(full.retry_after.is_some(), "503 without Retry-After");
    drop(raw);

    // Telemetry: the stream span links to the trace that made the change; the metrics count what happened.
    let trace =
        TraceParent { trace_id: "57a3e4d5c6b7a8f9e0d1c2b3a4f5e6d7".into(), parent_span_id: "57a3e4d5c6b7a8f9".into() };
    alice
        .create_task_traced(
            &json!({ "title": "Stream: traced", "due_at": "2030-01-15T09:00:00Z", "time_zone": "UTC" }),
            &trace,
        )
        .await
        .expect("created");
    assert_eq!(kept.wait_for_count(1, PIPELINE_DEADLINE).await.len(), 1, "the change was not streamed");
    let send = stack
        .otlp
        .wait_for_span(
            |span| span.name == "task_stream.send" && span.links.iter().any(|link| link.trace_id_hex == trace.trace_id),
            PIPELINE_DEADLINE,
        )
        .await;
    assert!(send.is_some(), "no task_stream.send span linked to the creating trace {}", trace.trace_id);
    let metrics = stack.metrics_of_replicas(Service::Backend).await.remove(1);
    let sample = |name: &str, labels: &[(&str, &str)]| metric_samples(&metrics, name, labels).first().copied();
    assert_eq!(sample("taskwatch_task_streams_open", &[]), Some(2.0), "{metrics}");
    assert!(sample("taskwatch_task_stream_events_sent_total", &[]) >= Some(2.0));
    assert!(sample("taskwatch_task_stream_lag_seconds_count", &[]) >= Some(2.0));
    // At least the third stream; the reopening above may have been refused too until the server saw the close.
    assert!(sample("taskwatch_task_streams_refused_total", &[("reason", "user_limit")]) >= Some(1.0));
    assert_eq!(sample("taskwatch_task_streams_refused_total", &[("reason", "total_limit")]), Some(1.0));
    assert!(sample("taskwatch_task_stream_disconnects_total", &[("reason", "client_closed")]) >= Some(1.0));
    assert_eq!(sample("taskwatch_task_stream_feed_up", &[]), Some(1.0));

    // Shutdown ends every stream (not cut off by the drain timeout) and the replica exits cleanly.
    let status = stack.stop_replica(Service::Backend, 1).await.expect("stops");
    assert!(status.success(), "the replica did not exit cleanly: {status}");
    assert!(kept.wait_until_ended(DEADLINE).await, "the stream was not ended by the shutdown");
    assert!(reopened.wait_until_ended(DEADLINE).await, "the stream was not ended by the shutdown");
}

/// A UUIDv7 whose time is `at`: the id of a change made then.
fn uuid_v7_at(at: chrono::DateTime<chrono::Utc>) -> String {
    let millis = u64::try_from(at.timestamp_millis()).expect("after 1970");
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// `taskwatch_task_stream_feed_up` of the backend equals `up` (1 or 0).
fn feed_up_is(up: f64) -> impl Fn(&str) -> bool {
    move |exposition| metric_samples(exposition, "taskwatch_task_stream_feed_up", &[]) == [up]
}

#[tokio::test]
async fn a_broker_outage_and_a_restart_inside_it_delay_the_stream_but_lose_nothing_and_show_on_the_feed_gauge() {
    let mut stack = Stack::builder()
        .services(&[Service::Backend])
        // The feed's lag sample is what notices an unreachable broker: bound it well inside the test's deadline.
        .env(Service::Backend, "KAFKA_REQUEST_TIMEOUT", "2s")
        .start()
        .await
        .expect("stack starts");
    let url = stack.url(Service::Backend);
    let alice = Api::for_user(&url, "stream-outage").expect("client");
    let create = |title: &str| json!({ "title": title, "due_at": "2030-01-15T09:00:00Z", "time_zone": "UTC" });

    let stream = TaskStreamClient::open(&url, alice.token(), None).await.expect("opens");
    alice.create_task(&create("Stream: before the outage")).await.expect("created");
    let last_seen = stream.wait_for_count(1, PIPELINE_DEADLINE).await.first().expect("streamed").id.clone();

    stack.broker.stop();
    let down = stack.wait_for_metrics(Service::Backend, PIPELINE_DEADLINE, feed_up_is(0.0)).await;
    assert!(down.is_some(), "the feed gauge did not show the outage:\n{}", stack.output(Service::Backend));
    // Accepted while the broker is down: the changes wait in the outbox.
    let mut during = Vec::new();
    for title in ["Stream: during the outage 1", "Stream: during the outage 2"] {
        during.push(alice.create_task(&create(title)).await.expect("created")["id"].as_str().expect("id").to_owned());
    }
    // A restart inside the outage: open streams end with the old process; the new one cannot start its feed.
    stack.stop_service(Service::Backend).await.expect("stops");
    assert!(stream.wait_until_ended(DEADLINE).await, "the stream outlived its server");
    stack.start_service(Service::Backend).await.expect("restarts");
    let early = TaskStreamClient::open(&url, alice.token(), Some(&last_seen)).await.expect_err("cannot resume yet");
    assert_eq!(early.status, 503, "{:?}", early.body);
    assert!(early.retry_after.is_some(), "503 without Retry-After");
    let live = TaskStreamClient::open(&url, alice.token(), None).await.expect("a live stream opens in the outage");
    assert!(stack.metrics(Service::Backend).await.is_some_and(|metrics| feed_up_is(0.0)(&metrics)));

    stack.broker.start_again().await.expect("broker restarts");
    // As a client would after Retry-After: resume until the replica can.
    let resumed = testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        TaskStreamClient::open(&url, alice.token(), Some(&last_seen)).await.ok()
    })
    .await
    .expect("the resume succeeds once the feed reads again");
    let got = resumed.wait_for_count(during.len(), PIPELINE_DEADLINE).await;
    let about: Vec<&str> = got.iter().map(StreamedEvent::task_id).collect();
    assert_eq!(about, during, "the changes made in the outage were lost, repeated or reordered");
    for id in &during {
        let reached = testkit::wait::until(PIPELINE_DEADLINE, || async {
            live.events().iter().any(|event| event.task_id() == id)
        })
        .await
        .is_ok();
        assert!(reached, "the live stream never got {id}");
    }
    let up = stack.wait_for_metrics(Service::Backend, DEADLINE, feed_up_is(1.0)).await;
    assert!(up.is_some(), "the feed gauge did not recover");
}

#[tokio::test]
async fn a_client_whose_replica_is_killed_mid_burst_resumes_on_the_other_without_gap_or_repeat() {
    let mut stack = two_backends(&[]).await;
    let (first, second) = (replica(&stack, 0), replica(&stack, 1));
    // Changes go through the replica that survives; the stream is on the one that is killed.
    let alice = Api::for_user(&second, "stream-killed").expect("client");
    let stream = TaskStreamClient::open(&first, alice.token(), None).await.expect("opens");
    let create = |n: usize| {
        let alice = alice.clone();
        async move {
            let body = json!({ "title": format!("Stream: burst {n}"), "due_at": "2030-01-15T09:00:00Z" });
            alice.create_task(&body).await.expect("created")["id"].as_str().expect("id").to_owned()
        }
    };
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(create(n).await);
    }
    assert_eq!(stream.wait_for_count(3, PIPELINE_DEADLINE).await.len(), 3, "the first changes were not streamed");
    // The kill lands while the fourth change is on its way (outbox, broker, feed): streamed or not, the resume
    // below must account for it exactly once. The rest are made after the kill.
    made.push(create(3).await);
    stack.kill_replica(Service::Backend, 0).expect("killed");
    for n in 4..8 {
        made.push(create(n).await);
    }
    assert!(stream.wait_until_ended(DEADLINE).await, "the stream outlived its killed server");
    let seen: Vec<StreamedEvent> = stream.events();
    let seen_tasks: Vec<&str> = seen.iter().map(StreamedEvent::task_id).collect();
    assert_eq!(seen_tasks, made[..seen.len()], "the stream before the kill has a gap or a repeat");

    let last = seen.last().expect("some").id.clone();
    let resumed = TaskStreamClient::open(&second, alice.token(), Some(&last)).await.expect("resumes");
    let rest = &made[seen.len()..];
    let got = resumed.wait_for_count(rest.len(), PIPELINE_DEADLINE).await;
    let got_tasks: Vec<&str> = got.iter().map(StreamedEvent::task_id).collect();
    assert_eq!(got_tasks, rest, "resuming on the surviving replica lost, repeated or reordered a change");
}
