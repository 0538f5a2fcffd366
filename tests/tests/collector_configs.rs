//! The OpenTelemetry Collector, Tempo and Loki configurations (`monitoring/otel-collector/`, `monitoring/tempo/`,
//! `monitoring/loki/`), checked offline: none of those binaries runs here, so what can be proven without them is.
//!
//! - every file parses as YAML and has the sections its program requires;
//! - the collector's pipelines reference only defined components, every defined component is used, and every
//!   pipeline starts with `memory_limiter` and ends with `batch`;
//! - addresses agree across files: the collector exports to the ports and paths Tempo and Loki listen on, Tempo
//!   remote-writes to the port Prometheus serves, Grafana's datasources query the ports Tempo and Loki serve,
//!   retention matches between traces and logs;
//! - the services' real output is what the collector is configured to read: a backend binary exports its spans
//!   over OTLP/HTTP (the protocol and path of the collector's `otlp` receiver) to an in-test receiver, with
//!   `service.name`, and its JSON log lines carry every field the `filelog` operators parse, in the formats they
//!   expect, with the same trace id as the spans.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::monitoring::{monitoring_dir, prometheus_config_path, read_yaml};
use e2e::{Api, DEADLINE, TraceParent, backend_command, free_port, wait_until_ok};
use reqwest::Url;
use serde_json::json;
use serde_norway::Value;
use testkit::otlp::{OtlpReceiver, TRACES_PATH};
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;

/// The collector's component kinds that pipelines reference, in `service.pipelines.<signal>`.
const PIPELINE_KINDS: [&str; 3] = ["receivers", "processors", "exporters"];
/// The levels the services' JSON log layer writes (`tracing`'s level names, lowercased).
const SERVICE_LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
/// Go's `time.RFC3339Nano`: accepts the services' RFC 3339 UTC timestamps with any fraction.
const GO_RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

fn collector_path() -> PathBuf {
    monitoring_dir().join("otel-collector/config.yaml")
}

fn tempo_path() -> PathBuf {
    monitoring_dir().join("tempo/tempo.yaml")
}

fn loki_path() -> PathBuf {
    monitoring_dir().join("loki/loki.yaml")
}

fn load(path: &Path) -> Value {
    read_yaml(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The value at `path` (keys separated by `.`; a key may itself contain `/`), or a panic naming the file's
/// missing key.
fn at<'a>(value: &'a Value, file: &str, path: &str) -> &'a Value {
    path.split('.').try_fold(value, |node, key| node.get(key)).unwrap_or_else(|| panic!("{file}: no `{path}`"))
}

fn text<'a>(value: &'a Value, file: &str, path: &str) -> &'a str {
    at(value, file, path).as_str().unwrap_or_else(|| panic!("{file}: `{path}` is not a string"))
}

fn number(value: &Value, file: &str, path: &str) -> u64 {
    at(value, file, path).as_u64().unwrap_or_else(|| panic!("{file}: `{path}` is not a number"))
}

fn names(value: &Value, file: &str, path: &str) -> Vec<String> {
    at(value, file, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("{file}: `{path}` is not a list"))
        .iter()
        .map(|item| item.as_str().unwrap_or_else(|| panic!("{file}: `{path}` has a non-string entry")).to_owned())
        .collect()
}

fn keys(value: &Value, file: &str, path: &str) -> BTreeSet<String> {
    at(value, file, path)
        .as_mapping()
        .unwrap_or_else(|| panic!("{file}: `{path}` is not a mapping"))
        .keys()
        .map(|key| key.as_str().unwrap_or_else(|| panic!("{file}: `{path}` has a non-string key")).to_owned())
        .collect()
}

/// The port of `host:port` or `[v6]:port`.
fn port_of(endpoint: &str) -> u16 {
    let (_, port) = endpoint.rsplit_once(':').unwrap_or_else(|| panic!("`{endpoint}` has no port"));
    port.parse().unwrap_or_else(|_| panic!("`{endpoint}` has no numeric port"))
}

/// A component's type: `otlp/tempo` is an `otlp` exporter named `tempo`.
fn component_type(id: &str) -> &str {
    id.split_once('/').map_or(id, |(kind, _)| kind)
}

/// Each pipeline of the collector: its id and its receivers, processors and exporters.
fn pipelines(collector: &Value) -> Vec<(String, Value)> {
    let file = "otel-collector/config.yaml";
    let pipelines = at(collector, file, "service.pipelines").as_mapping().expect("service.pipelines is a mapping");
    assert!(!pipelines.is_empty(), "{file}: no pipelines");
    pipelines.iter().map(|(id, pipeline)| (id.as_str().expect("pipeline id").to_owned(), pipeline.clone())).collect()
}

/// Loki's durations here are whole hours (`336h`).
fn hours(duration: &str) -> u64 {
    duration.strip_suffix('h').and_then(|hours| hours.parse().ok()).unwrap_or_else(|| {
        panic!("`{duration}` is not a whole number of hours; compare retention by hand or extend this test")
    })
}

#[test]
fn every_config_parses_and_has_the_sections_its_program_requires() {
    let required: [(PathBuf, &[&str]); 3] = [
        (collector_path(), &["extensions", "receivers", "processors", "exporters", "service"]),
        (tempo_path(), &["server", "distributor", "ingester", "compactor", "storage"]),
        (loki_path(), &["server", "common", "schema_config", "limits_config", "compactor"]),
    ];
    for (path, sections) in required {
        let config = load(&path);
        for section in sections {
            assert!(config.get(section).is_some(), "{}: no top-level `{section}`", path.display());
        }
    }
}

#[test]
fn pipelines_use_only_defined_components_and_every_defined_component_is_used() {
    let collector = load(&collector_path());
    let file = "otel-collector/config.yaml";
    for kind in PIPELINE_KINDS {
        let defined = keys(&collector, file, kind);
        let mut used = BTreeSet::new();
        for (id, pipeline) in pipelines(&collector) {
            let listed = names(&pipeline, file, kind);
            assert!(!listed.is_empty() || kind == "processors", "{file}: pipeline {id} has no {kind}");
            for component in listed {
                assert!(defined.contains(&component), "{file}: pipeline {id} uses {kind} `{component}`, not defined");
                used.insert(component);
            }
        }
        let unused: Vec<_> = defined.difference(&used).collect();
        assert!(unused.is_empty(), "{file}: {kind} defined but in no pipeline: {unused:?}");
    }

    let defined = keys(&collector, file, "extensions");
    let enabled: BTreeSet<String> = names(&collector, file, "service.extensions").into_iter().collect();
    assert_eq!(defined, enabled, "{file}: `extensions` and `service.extensions` must name the same extensions");
    assert!(enabled.contains("health_check"), "{file}: no health_check extension for the orchestrator's probes");

    // A pipeline id is `<signal>` or `<signal>/<name>`; metrics are scraped by Prometheus, not collected here.
    for (id, _) in pipelines(&collector) {
        let signal = component_type(&id);
        assert!(["traces", "logs"].contains(&signal), "{file}: unexpected pipeline `{id}` (traces and logs only)");
    }
}

#[test]
fn every_pipeline_starts_with_the_memory_limiter_and_ends_with_batching() {
    let collector = load(&collector_path());
    let file = "otel-collector/config.yaml";
    for (id, pipeline) in pipelines(&collector) {
        let processors = names(&pipeline, file, "processors");
        let types: Vec<&str> = processors.iter().map(|processor| component_type(processor)).collect();
        assert_eq!(types.first(), Some(&"memory_limiter"), "{file}: pipeline {id} must start with memory_limiter");
        assert_eq!(types.last(), Some(&"batch"), "{file}: pipeline {id} must end with batch");
        assert_eq!(types.iter().filter(|kind| **kind == "memory_limiter").count(), 1, "pipeline {id}");
        assert_eq!(types.iter().filter(|kind| **kind == "batch").count(), 1, "pipeline {id}");
    }
}

/// The services speak only OTLP/HTTP protobuf (`shared/observability/src/otel.rs`), appending `/v1/traces` to
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector must take exactly that on 4318, on every interface.
#[test]
fn the_collector_receives_otlp_http_where_the_services_send_it() {
    let collector = load(&collector_path());
    let file = "otel-collector/config.yaml";
    let http = at(&collector, file, "receivers.otlp.protocols.http");
    let endpoint = text(http, file, "endpoint");
    assert_eq!(endpoint, "0.0.0.0:4318", "{file}: the OTLP/HTTP receiver must listen on every interface, port 4318");
    let traces_path = http.get("traces_url_path").and_then(Value::as_str).unwrap_or(TRACES_PATH);
    assert_eq!(traces_path, TRACES_PATH, "{file}: the services post traces to {TRACES_PATH}");
    let grpc = text(&collector, file, "receivers.otlp.protocols.grpc.endpoint");
    assert_eq!(grpc, "0.0.0.0:4317", "{file}: OTLP/gRPC on the standard port for other SDKs");
    let traces = pipelines(&collector).into_iter().find(|(id, _)| id == "traces").expect("a traces pipeline").1;
    assert!(names(&traces, file, "receivers").contains(&"otlp".to_owned()), "{file}: traces must come in via otlp");
}

#[test]
fn the_collector_exports_to_the_ports_tempo_and_loki_listen_on() {
    let collector = load(&collector_path());
    let tempo = load(&tempo_path());
    let loki = load(&loki_path());
    let (cfile, tfile, lfile) = ("otel-collector/config.yaml", "tempo/tempo.yaml", "loki/loki.yaml");

    // Traces: the `otlp` exporter speaks gRPC, so it must target Tempo's OTLP gRPC receiver.
    let exporters = keys(&collector, cfile, "exporters");
    let tempo_exporter = exporters.iter().find(|id| id.ends_with("/tempo")).expect("an exporter named …/tempo");
    assert_eq!(component_type(tempo_exporter), "otlp", "{cfile}: {tempo_exporter} should be the OTLP gRPC exporter");
    let target = text(&collector, cfile, &format!("exporters.{tempo_exporter}.endpoint"));
    let (host, _) = target.rsplit_once(':').expect("host:port");
    assert_eq!(host, "tempo", "{cfile}: {tempo_exporter} targets the `tempo` service");
    let tempo_grpc = text(&tempo, tfile, "distributor.receivers.otlp.protocols.grpc.endpoint");
    assert_eq!(port_of(target), port_of(tempo_grpc), "{cfile} {tempo_exporter} → {tfile} OTLP gRPC receiver");
    assert!(tempo_grpc.starts_with("0.0.0.0:"), "{tfile}: since Tempo 2.7 an unset host is localhost only");

    // Logs: `otlphttp` to Loki's native OTLP endpoint (`/otlp`, the exporter appends `/v1/logs`) on its HTTP port.
    let loki_exporter = exporters.iter().find(|id| id.ends_with("/loki")).expect("an exporter named …/loki");
    assert_eq!(component_type(loki_exporter), "otlphttp", "{cfile}: {loki_exporter} should be OTLP/HTTP");
    let url = Url::parse(text(&collector, cfile, &format!("exporters.{loki_exporter}.endpoint"))).expect("a URL");
    assert_eq!(url.host_str(), Some("loki"), "{cfile}: {loki_exporter} targets the `loki` service");
    assert_eq!(url.path().trim_end_matches('/'), "/otlp", "{cfile}: Loki's native OTLP endpoint is /otlp");
    let loki_port = number(&loki, lfile, "server.http_listen_port");
    assert_eq!(url.port().map(u64::from), Some(loki_port), "{cfile} {loki_exporter} → {lfile} http_listen_port");

    // OTLP ingestion needs structured metadata, which needs the TSDB index with schema v13 (Loki 3.x).
    assert_eq!(at(&loki, lfile, "limits_config.allow_structured_metadata").as_bool(), Some(true), "{lfile}");
    let schemas = at(&loki, lfile, "schema_config.configs").as_sequence().expect("schema_config.configs list");
    let current = schemas.last().expect("at least one schema period");
    assert_eq!(text(current, lfile, "schema"), "v13", "{lfile}: the current schema period");
    assert_eq!(text(current, lfile, "store"), "tsdb", "{lfile}: the current schema period");
    assert_eq!(at(&loki, lfile, "compactor.retention_enabled").as_bool(), Some(true), "{lfile}: retention applied");

    // A trace's log lines are kept exactly as long as the trace.
    let log_retention = hours(text(&loki, lfile, "limits_config.retention_period"));
    let trace_retention = hours(text(&tempo, tfile, "compactor.compaction.block_retention"));
    assert_eq!(log_retention, trace_retention, "{lfile} retention_period vs {tfile} block_retention");
}

/// Tempo's service-graph series go to the port Prometheus serves on (its own scrape job's target).
#[test]
fn tempo_remote_writes_to_the_port_prometheus_serves() {
    let tempo = load(&tempo_path());
    let tfile = "tempo/tempo.yaml";
    let prometheus = load(&prometheus_config_path());
    let jobs = prometheus.get("scrape_configs").and_then(Value::as_sequence).expect("scrape_configs");
    let job = jobs
        .iter()
        .find(|job| job.get("job_name").and_then(Value::as_str) == Some("prometheus"))
        .expect("prometheus.yml scrapes Prometheus itself");
    let target = job["static_configs"][0]["targets"][0].as_str().expect("the prometheus job's target");

    let writes = at(&tempo, tfile, "metrics_generator.storage.remote_write").as_sequence().expect("remote_write");
    assert!(!writes.is_empty(), "{tfile}: metrics_generator has no remote_write");
    for write in writes {
        let url = Url::parse(text(write, tfile, "url")).expect("a remote-write URL");
        assert_eq!(url.port(), Some(port_of(target)), "{tfile}: remote_write → Prometheus ({target})");
        assert_eq!(url.path(), "/api/v1/write", "{tfile}: Prometheus' remote-write receiver path");
    }
    let processors = names(&tempo, tfile, "overrides.defaults.metrics_generator.processors");
    assert!(processors.contains(&"service-graphs".to_owned()), "{tfile}: the service map needs service-graphs");
}

/// The filelog operators of the collector, by id.
fn filelog_operator<'a>(collector: &'a Value, id: &str) -> &'a Value {
    let file = "otel-collector/config.yaml";
    at(collector, file, "receivers.filelog.operators")
        .as_sequence()
        .expect("filelog operators")
        .iter()
        .find(|operator| operator.get("id").and_then(Value::as_str) == Some(id))
        .unwrap_or_else(|| panic!("{file}: no filelog operator `{id}`"))
}

/// The JSON field of the log line named by a `parse_from` / `from` path such as `attributes.line.trace_id`, where
/// `parsed_to` (`attributes.line`) is where the json_parser put the parsed line.
fn line_field<'a>(path: &'a str, parsed_to: &str) -> &'a str {
    path.strip_prefix(parsed_to)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or_else(|| panic!("`{path}` is not a field of the parsed line (`{parsed_to}`)"))
}

/// The real backend, exporting to an OTLP/HTTP receiver on the path the collector's receiver serves: its spans
/// arrive with `service.name`, and its stdout lines carry, in the expected formats, every field the collector's
/// filelog operators read — with the trace id of the spans, so a log line links to its trace.
#[tokio::test]
async fn the_backend_s_spans_and_log_lines_are_what_the_collector_is_configured_to_take() {
    let collector = load(&collector_path());
    let receiver = OtlpReceiver::start().await.expect("start the OTLP/HTTP receiver");
    let database = TestDatabase::new().await.expect("test database");
    let port = free_port().expect("free port");
    let mut command = backend_command(database.url(), port).expect("backend command");
    // Spans leave the batch processor within 200 ms rather than 5 s.
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()).env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let backend = ChildGuard::spawn("backend", command).expect("spawn backend");
    let base_url = format!("http://127.0.0.1:{port}");
    wait_until_ok(&backend, &base_url, "/health/ready").await.expect("backend ready");

    let trace =
        TraceParent { trace_id: "5c0d1ec7a11b0b5e7e1e3e7e7c011ec7".into(), parent_span_id: "0ddba11c0ffee000".into() };
    let api = Api::for_user(&base_url, "collector-check").expect("api client");
    api.create_task_traced(
        &json!({ "title": "Check the collector", "due_at": "2030-01-15T09:00:00Z", "time_zone": "Europe/Berlin" }),
        &trace,
    )
    .await
    .expect("create a task");

    // Traces: OTLP/HTTP protobuf at /v1/traces, with the resource's service.name and the caller's trace id.
    let span = receiver
        .wait_for_span(|span| span.trace_id_hex == trace.trace_id, DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no span of the traced request arrived; received: {:?}", receiver.spans()));
    assert_eq!(span.service_name.as_deref(), Some("backend"), "spans must carry service.name: {span:?}");
    assert_eq!(span.parent_span_id_hex.as_deref(), Some(trace.parent_span_id.as_str()), "{span:?}");

    // Logs: a line of the same trace, written inside the request span.
    let in_trace = |line: &str| line.contains(&trace.trace_id);
    backend.wait_for_line(in_trace, DEADLINE).await.unwrap_or_else(|| {
        panic!("no log line carries trace {}:\n{}", trace.trace_id, backend.stdout_lines().join("\n"))
    });
    let lines: Vec<serde_json::Value> = backend
        .stdout_lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}")))
        .collect();

    // Every line is an object, which is the json_parser's condition (`body matches "^\s*\{"`).
    assert!(lines.iter().all(serde_json::Value::is_object));

    let parser = filelog_operator(&collector, "taskwatch_json");
    let file = "otel-collector/config.yaml";
    let parsed_to = text(parser, file, "parse_to");
    assert_eq!(text(parser, file, "parse_from"), "body", "the whole line is parsed");
    let timestamp_field = line_field(text(parser, file, "timestamp.parse_from"), parsed_to);
    assert_eq!(text(parser, file, "timestamp.layout_type"), "gotime");
    assert_eq!(text(parser, file, "timestamp.layout"), GO_RFC3339_NANO, "Go's RFC 3339 with any fraction");
    let level_field = line_field(text(parser, file, "severity.parse_from"), parsed_to);
    let mapped_levels: BTreeSet<String> = at(parser, file, "severity.mapping")
        .as_mapping()
        .expect("severity.mapping")
        .values()
        .map(|value| value.as_str().expect("a single level name per severity").to_owned())
        .collect();
    for level in SERVICE_LOG_LEVELS {
        assert!(mapped_levels.contains(level), "{file}: severity mapping lacks the services' level `{level}`");
    }
    let trace_parser = filelog_operator(&collector, "trace_context");
    let trace_id_field = line_field(text(trace_parser, file, "trace_id.parse_from"), parsed_to);
    let span_id_field = line_field(text(trace_parser, file, "span_id.parse_from"), parsed_to);
    let service_field = line_field(text(filelog_operator(&collector, "service_name"), file, "from"), parsed_to);
    assert_eq!(text(filelog_operator(&collector, "service_name"), file, "to"), r#"resource["service.name"]"#);
    // The scratch copy is removed again, so the parsed fields are not stored twice (body + structured metadata).
    let cleanup = filelog_operator(&collector, "drop_parsed_line");
    assert_eq!(text(cleanup, file, "field"), parsed_to, "{file}: the parsed copy of the line must be removed");

    for line in &lines {
        for field in [timestamp_field, level_field, service_field, "message"] {
            assert!(
                line.get(field).is_some_and(serde_json::Value::is_string),
                "log line lacks string `{field}`: {line}"
            );
        }
        let timestamp = line[timestamp_field].as_str().unwrap_or_default();
        let parsed = chrono::DateTime::parse_from_rfc3339(timestamp)
            .unwrap_or_else(|error| panic!("`{timestamp}` is not RFC 3339 ({error}): {line}"));
        assert_eq!(parsed.offset().local_minus_utc(), 0, "timestamps are UTC: {line}");
        let level = line[level_field].as_str().unwrap_or_default();
        assert!(mapped_levels.contains(level), "level `{level}` has no severity mapping: {line}");
        assert_eq!(line[service_field], "backend", "the service field names the service: {line}");
        // The trace parser's fields come as a pair of lowercase hex ids, or not at all.
        match (line.get(trace_id_field), line.get(span_id_field)) {
            (Some(trace_id), Some(span_id)) => {
                assert!(is_hex(trace_id, 32) && is_hex(span_id, 16), "malformed trace context: {line}");
            }
            (None, None) => {}
            _ => panic!("a log line has only one of {trace_id_field} / {span_id_field}: {line}"),
        }
    }
    let traced: Vec<_> = lines.iter().filter(|line| line[trace_id_field] == trace.trace_id.as_str()).collect();
    assert!(!traced.is_empty(), "no parsed log line carries trace {}", trace.trace_id);
    let span_ids: BTreeSet<String> = receiver.spans().into_iter().map(|span| span.span_id_hex).collect();
    for line in traced {
        let span_id = line[span_id_field].as_str().unwrap_or_default();
        // The exporter batches; a span still open or in flight is waited for, not assumed.
        let exported = receiver.wait_for_span(|span| span.span_id_hex == span_id, Duration::from_secs(30)).await;
        assert!(
            exported.is_some(),
            "log line's span {span_id} was never exported (have {span_ids:?}): {line}; a log → trace link would dangle"
        );
    }
}

fn is_hex(value: &serde_json::Value, digits: usize) -> bool {
    value.as_str().is_some_and(|text| {
        text.len() == digits && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

/// Grafana's provisioned Tempo and Loki datasources query the ports those servers listen on.
#[test]
fn grafana_queries_tempo_and_loki_on_the_ports_they_serve() {
    let path = monitoring_dir().join("grafana/provisioning/datasources/taskwatch.yaml");
    let datasources = load(&path);
    let tempo_port = number(&load(&tempo_path()), "tempo/tempo.yaml", "server.http_listen_port");
    let loki_port = number(&load(&loki_path()), "loki/loki.yaml", "server.http_listen_port");
    let list = datasources.get("datasources").and_then(Value::as_sequence).expect("a datasources list");
    for (kind, host, port) in [("tempo", "tempo", tempo_port), ("loki", "loki", loki_port)] {
        let datasource = list
            .iter()
            .find(|datasource| datasource.get("type").and_then(Value::as_str) == Some(kind))
            .unwrap_or_else(|| panic!("{}: no {kind} datasource", path.display()));
        let url = Url::parse(text(datasource, kind, "url")).expect("a datasource URL");
        assert_eq!(url.host_str(), Some(host), "{}: the {kind} datasource host", path.display());
        assert_eq!(url.port().map(u64::from), Some(port), "{}: the {kind} datasource port", path.display());
    }
}
