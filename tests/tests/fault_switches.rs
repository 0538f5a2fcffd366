//! The demo fault switches (issue 4 §7), each through the real services: `PUT /admin/faults` on a running
//! process, the effect seen the way an operator (or an alert) would see it, and `DELETE` healing it without a
//! restart. Plus the refusal to start with fault injection in production.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{
    ApiError, DEADLINE, INTERNAL_SERVICE_TOKEN, PIPELINE_DEADLINE, Service, Stack, binary, metric_samples, metric_sum,
};
use serde_json::{Value, json};
use testkit::process::ChildGuard;

/// sysexits EX_CONFIG.
const EXIT_CONFIG: i32 = 78;

/// `/admin/faults` of one service, authenticated with the token the harness gives the services (reminder
/// has none, so its switch is open).
struct Switch {
    client: reqwest::Client,
    url: String,
    token: Option<&'static str>,
}

impl Switch {
    fn of(stack: &Stack, service: Service) -> Self {
        let token = (service != Service::Reminder).then_some(INTERNAL_SERVICE_TOKEN);
        Self { client: reqwest::Client::new(), url: format!("{}/admin/faults", stack.url(service)), token }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let request = match self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("the fault switch answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, plan: Value) -> (u16, Value) {
        self.send(self.client.put(&self.url).json(&plan)).await
    }

    /// `PUT`, expecting the plan to be accepted.
    async fn set(&self, plan: Value) {
        let (status, body) = self.put(plan).await;
        assert_eq!(status, 200, "plan refused: {body}");
    }

    async fn clear(&self) {
        let (status, body) = self.send(self.client.delete(&self.url)).await;
        assert_eq!(status, 200, "clear refused: {body}");
        assert_eq!(body["active"], json!({}), "{body}");
    }
}

async fn status_of(url: String) -> u16 {
    reqwest::get(url).await.expect("request").status().as_u16()
}

fn gauge(metrics: &str, fault: &str) -> Option<f64> {
    metric_sum(metrics, "taskwatch_fault_active", &[("fault", fault)])
}

#[tokio::test]
async fn api_errors_and_latency_are_switched_on_and_off_while_probes_stay_healthy() {
    let stack = Stack::builder()
        .services(&[Service::Backend])
        .env(Service::Backend, "FAULT_INJECTION_ENABLED", "true")
        .start()
        .await
        .expect("stack starts");
    let backend = stack.url(Service::Backend);
    let alice = stack.api("alice").expect("alice's client");
    let switch = Switch::of(&stack, Service::Backend);

    // Protected by the service's internal token; malformed and unknown faults are refused, naming the field.
    let anonymous = reqwest::Client::new().put(format!("{backend}/admin/faults")).json(&json!({})).send().await;
    assert_eq!(anonymous.expect("request").status(), 401);
    let (status, body) = switch.put(json!({"http": {"error_ratio": 1.5}, "outages": ["database"]})).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["http.error_ratio", "outages[0]"], "{body}");
    let metrics = stack.metrics(Service::Backend).await.expect("metrics");
    assert_eq!(gauge(&metrics, "http_errors"), Some(0.0), "the gauge exists while no fault is on");

    switch.set(json!({"http": {"error_ratio": 1.0}})).await;
    for _ in 0..5 {
        match alice.tasks_with_status("open").await {
            Err(ApiError::Status { status: 503, body, .. }) => assert!(body.contains("http_errors"), "{body}"),
            other => panic!("expected an injected 503, got {other:?}"),
        }
    }
    for probe in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(status_of(format!("{backend}{probe}")).await, 200, "{probe} must never get a fault");
    }
    let metrics = stack.metrics(Service::Backend).await.expect("metrics");
    assert_eq!(gauge(&metrics, "http_errors"), Some(1.0));
    let failed = metric_sum(
        &metrics,
        "http_server_request_duration_seconds_count",
        &[("http_route", "/v1/tasks"), ("http_response_status_code", "503")],
    );
    assert!(failed >= Some(5.0), "the RED metrics do not show the injected 503s: {failed:?}");

    // Latency only: requests succeed, each at least the fixed part later.
    switch.set(json!({"http": {"latency": "400ms", "jitter": "100ms"}})).await;
    let started = Instant::now();
    alice.tasks_with_status("open").await.expect("a slow request still succeeds");
    assert!(started.elapsed() >= Duration::from_millis(400), "no latency was added: {:?}", started.elapsed());
    let metrics = stack.metrics(Service::Backend).await.expect("metrics");
    assert_eq!((gauge(&metrics, "http_latency"), gauge(&metrics, "http_errors")), (Some(1.0), Some(0.0)));

    switch.clear().await;
    alice.tasks_with_status("open").await.expect("healed without a restart");
    let metrics = stack.metrics(Service::Backend).await.expect("metrics");
    assert_eq!(gauge(&metrics, "http_latency"), Some(0.0));
}

#[tokio::test]
async fn a_scheduled_error_phase_ends_by_itself() {
    let stack = Stack::builder()
        .services(&[Service::Backend])
        .env(Service::Backend, "FAULT_INJECTION_ENABLED", "true")
        .start()
        .await
        .expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    let switch = Switch::of(&stack, Service::Backend);

    switch.set(json!({"schedule": {"steps": [{"for": "3s", "faults": {"http": {"error_ratio": 1.0}}}]}})).await;
    let failed = alice.tasks_with_status("open").await;
    assert!(matches!(failed, Err(ApiError::Status { status: 503, .. })), "{failed:?}");
    // Without `repeat`, no fault is left once the last step ran out.
    let deadline = Instant::now() + DEADLINE;
    while alice.tasks_with_status("open").await.is_err() {
        assert!(Instant::now() < deadline, "the scheduled fault never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_injected_backend_outage_opens_the_callers_breaker_and_heals() {
    let stack = Stack::builder()
        .services(&[Service::Backend, Service::RecurringTask])
        .env(Service::RecurringTask, "FAULT_INJECTION_ENABLED", "true")
        .start()
        .await
        .expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    let switch = Switch::of(&stack, Service::RecurringTask);

    switch.set(json!({"outages": ["backend"]})).await;
    let task = alice
        .create_task(&json!({
            "title": "Injected outage",
            "due_at": "2030-06-03T07:00:00Z",
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    let task_id = task["id"].as_str().expect("id");
    let series_id = task["series_id"].as_str().expect("series id");
    alice.complete(task_id).await.expect("task completed");

    // The backend itself is fine; only recurring-task's calls to it fail, and its breaker opens.
    let open = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_samples(metrics, "taskwatch_circuit_breaker_state", &[("downstream", "backend")]).contains(&2.0)
                && gauge(metrics, "outage_backend") == Some(1.0)
        })
        .await;
    assert!(open.is_some(), "the breaker never opened:\n{}", stack.output(Service::RecurringTask));
    assert_eq!(stack.readiness(Service::Backend).await, Some(200));
    assert!(alice.open_tasks_in_series(series_id).await.expect("list").is_empty());

    switch.clear().await;
    let next = alice.wait_for_open_in_series(series_id, PIPELINE_DEADLINE).await;
    let next =
        next.unwrap_or_else(|| panic!("no occurrence after the outage:\n{}", stack.output(Service::RecurringTask)));
    assert_eq!(next[0]["due_at"], "2030-06-04T07:00:00Z");
    let closed = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_samples(metrics, "taskwatch_circuit_breaker_state", &[("downstream", "backend")]).contains(&0.0)
        })
        .await;
    assert!(closed.is_some(), "the breaker did not close after the outage was switched off");
}

#[tokio::test]
async fn a_stuck_consumer_falls_behind_and_a_slow_one_takes_its_time() {
    let stack = Stack::builder()
        .services(&[Service::Backend, Service::RecurringTask])
        .env(Service::RecurringTask, "FAULT_INJECTION_ENABLED", "true")
        .start()
        .await
        .expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    let switch = Switch::of(&stack, Service::RecurringTask);
    let consumed =
        |metrics: &str| metric_sum(metrics, "taskwatch_messages_consumed_total", &[("topic", "task-events")]);
    let create = |title: String| {
        let alice = &alice;
        async move {
            alice
                .create_task(&json!({"title": title, "due_at": "2030-06-03T07:00:00Z", "time_zone": "UTC"}))
                .await
                .expect("task created")
        }
    };

    // One event consumed, so the group has its partitions; the others have never been read from. Their lag must
    // count too (from the committed offset or the partition's start), or a consumer stuck early would look idle.
    create("Before the fault".to_owned()).await;
    let settled = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            consumed(metrics) >= Some(1.0) && e2e::settle::caught_up(metrics, "task-events")
        })
        .await;
    let before = consumed(&settled.expect("the first event is consumed")).unwrap_or_default();

    switch.set(json!({"consumer": {"stuck": true}})).await;
    for n in 0..6 {
        create(format!("While stuck #{n}")).await;
    }
    // At most the one message the consumer was already waiting for slips through; the rest pile up.
    let behind = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_consumer_lag", &[("topic", "task-events")]) >= Some(5.0)
        })
        .await;
    let behind = behind.unwrap_or_else(|| panic!("lag did not grow:\n{}", stack.output(Service::RecurringTask)));
    assert!(consumed(&behind).unwrap_or_default() <= before + 1.0, "a stuck consumer kept consuming");
    assert_eq!(gauge(&behind, "consumer_stuck"), Some(1.0));

    switch.clear().await;
    let caught_up = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| {
            e2e::settle::caught_up(metrics, "task-events") && consumed(metrics) >= Some(before + 6.0)
        })
        .await;
    let caught_up = caught_up.expect("the consumer catches up once released");

    // Slow: each message waits for the configured delay inside its processing time.
    let duration_sum = |metrics: &str| {
        metric_sum(metrics, "taskwatch_message_processing_duration_seconds_sum", &[("topic", "task-events")])
    };
    let (count, sum) = (consumed(&caught_up).unwrap_or_default(), duration_sum(&caught_up).unwrap_or_default());
    switch.set(json!({"consumer": {"delay": "1500ms"}})).await;
    create("While slow".to_owned()).await;
    let slow = stack
        .wait_for_metrics(Service::RecurringTask, PIPELINE_DEADLINE, |metrics| consumed(metrics) >= Some(count + 1.0))
        .await
        .expect("the slow consumer still consumes");
    let spent = duration_sum(&slow).unwrap_or_default() - sum;
    assert!(spent >= 1.5, "the message was not delayed: {spent}s of processing");
}

#[tokio::test]
async fn an_smtp_outage_makes_deliveries_retry_and_mail_flows_again_when_cleared() {
    let stack = Stack::builder()
        .env(Service::Notification, "FAULT_INJECTION_ENABLED", "true")
        .env(Service::Notification, "NOTIFY_MAX_ATTEMPTS", "3")
        .start()
        .await
        .expect("stack starts");
    let alice = stack.api("alice").expect("alice's client");
    alice.save_notification_settings(Some("alice@example.com"), None).await.expect("settings saved");
    let switch = Switch::of(&stack, Service::Notification);
    let reminding = |title: &str| json!({"title": title, "reminders": [{"kind": "at", "at": e2e::time::rfc3339(e2e::time::seconds_from_now(1))}]});

    switch.set(json!({"outages": ["smtp"]})).await;
    alice.create_task(&reminding("During the SMTP fault")).await.expect("task created");
    // The real SMTP sink is up, yet every attempt fails as transient, is retried, and finally dead-lettered.
    let dead = stack
        .wait_for_metrics(Service::Notification, PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_notification_dead_letters_total", &[("channel", "email")]) == Some(1.0)
        })
        .await
        .unwrap_or_else(|| panic!("the delivery was not given up:\n{}", stack.output(Service::Notification)));
    let attempts = metric_sum(&dead, "taskwatch_notification_attempts_total", &[("channel", "email")]);
    assert!(attempts >= Some(3.0), "expected retries before giving up, saw {attempts:?}");
    assert_eq!(gauge(&dead, "outage_smtp"), Some(1.0));
    assert!(stack.mails_mentioning("During the SMTP fault").is_empty(), "a mail got through the outage");

    switch.clear().await;
    alice.create_task(&reminding("After the SMTP fault")).await.expect("task created");
    let mail = stack
        .wait_for_mail(
            |mail| mail.subject.as_deref().is_some_and(|s| s.contains("After the SMTP fault")),
            PIPELINE_DEADLINE,
        )
        .await;
    assert!(mail.is_some(), "no mail after the fault was cleared:\n{}", stack.output(Service::Notification));
}

#[tokio::test]
async fn every_service_refuses_to_start_with_fault_injection_in_production() {
    for &service in Service::ALL {
        let mut command = Command::new(binary(service.name()).expect("service binary"));
        command
            .env_clear()
            .env("FAULT_INJECTION_ENABLED", "true")
            .env("DEPLOYMENT_ENVIRONMENT", "production")
            .env("PORT", "0");
        let mut process = ChildGuard::spawn(service.name(), command).expect("spawn");
        let status = process.wait_for_exit(DEADLINE).await.expect("wait").expect("exits on bad config");
        assert_eq!(status.code(), Some(EXIT_CONFIG), "{}", service.name());
        let stderr = process.stderr_lines().join("\n");
        assert!(
            stderr.contains("FAULT_INJECTION_ENABLED") && stderr.contains("production"),
            "{} does not name the refused switch:\n{stderr}",
            service.name()
        );
    }
}
