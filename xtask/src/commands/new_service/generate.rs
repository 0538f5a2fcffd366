//! Generating a service into a tree: validate, plan every edit in memory, then write. Nothing is written unless
//! every edit succeeded and verified, and an existing service directory is never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::edits::{FILE_EDITS, Spec};
use super::name::ServiceName;
use super::ports::UsedPorts;
use super::template::{self, SERVICE_TEMPLATE};

/// What a generation wrote, relative to the tree's root.
#[derive(Debug)]
pub struct Generated {
    pub port: u16,
    pub created: Vec<PathBuf>,
    pub edited: Vec<&'static str>,
}

/// A Kafka topic name as Kafka accepts it: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic(topic: &str) -> anyhow::Result<()> {
    let valid = (1..=249).contains(&topic.len())
        && topic.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
        && topic != "."
        && topic != "..";
    if !valid {
        bail!("`{topic}` is not a valid Kafka topic name (1–249 of a-z, A-Z, 0-9, `.`, `_`, `-`)");
    }
    Ok(())
}

pub fn generate(root: &Path, name: ServiceName, port: Option<u16>, topic: &str) -> anyhow::Result<Generated> {
    validate_topic(topic)?;
    let service_dir = root.join("services").join(name.as_str());
    if service_dir.exists() {
        bail!("{} already exists; refusing to overwrite it", service_dir.display());
    }
    let read = |path: &str| std::fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"));
    let port = UsedPorts::read(&read("helm/taskwatch/values.yaml")?, &read("docker-compose.yml")?)?.choose(port)?;
    let spec = Spec { name: name.clone(), port, topic: topic.to_owned(), existing: existing_services(root)? };

    let mut edits = Vec::new();
    for edit in FILE_EDITS {
        let original = read(edit.path)?;
        let edited = (edit.apply)(&original, &spec).with_context(|| format!("editing {}", edit.path))?;
        if edited != original {
            edits.push((edit.path, edited));
        }
    }
    let values: BTreeMap<&str, String> = [
        ("name", name.to_string()),
        ("snake", name.snake()),
        ("schema", name.snake()),
        ("port", port.to_string()),
        ("topic", topic.to_owned()),
    ]
    .into_iter()
    .collect();
    let files = template::render_all(SERVICE_TEMPLATE, &values).context("rendering the service template")?;

    // `create_dir` (not `_all`) on the service directory: a directory that appeared meanwhile is not overwritten.
    std::fs::create_dir_all(root.join("services")).context("creating services/")?;
    std::fs::create_dir(&service_dir).with_context(|| format!("creating {}", service_dir.display()))?;
    let mut created = Vec::new();
    for (path, text) in files {
        let target = service_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
        created.push(Path::new("services").join(name.as_str()).join(path));
    }
    let mut edited = Vec::new();
    for (path, text) in edits {
        std::fs::write(root.join(path), text).with_context(|| format!("writing {path}"))?;
        edited.push(path);
    }
    Ok(Generated { port, created, edited })
}

/// The services in the tree: directories under `services/` with a `Cargo.toml`, sorted.
fn existing_services(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join("services");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// What to tell the user after a generation.
pub fn report(name: &ServiceName, topic: &str, generated: &Generated) -> String {
    let mut out = format!("Created services/{name} (port {}, consuming `{topic}`):\n", generated.port);
    for path in &generated.created {
        out.push_str(&format!("  + {}\n", path.display()));
    }
    out.push_str("Entered it in:\n");
    for path in &generated.edited {
        out.push_str(&format!("  ~ {path}\n"));
    }
    out.push_str(&format!(
        "Next steps (docs/new-service.md):
  1. cargo test -p {name}                      # the generated test: real Postgres + tansu
  2. replace the handler's effect (src/store.rs, src/handler.rs) and the migration with the real job
  3. register its metrics in monitoring/telemetry/registry.yaml; it is paged when down and listed on the
     dashboards already: add alerts and panels for what it does
  4. keep its README configuration table true: compose, the chart and CI check every variable against it
"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the files the generator reads and edits, from the real repository.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::cargo::workspace_root();
        for edit in FILE_EDITS {
            let target = dir.path().join(edit.path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(root.join(edit.path), target).unwrap();
        }
        for service in ["backend", "reminder", "recurring-task", "notification"] {
            std::fs::create_dir_all(dir.path().join("services").join(service)).unwrap();
            std::fs::write(dir.path().join("services").join(service).join("Cargo.toml"), "").unwrap();
        }
        dir
    }

    #[test]
    fn a_service_is_generated_once_and_never_overwritten() {
        let dir = tree();
        let name = ServiceName::parse("event-archive").unwrap();
        let generated = generate(dir.path(), name.clone(), None, "task-events").unwrap();
        assert!(generated.port > 8083);
        assert_eq!(generated.created.len(), SERVICE_TEMPLATE.len());
        let main = std::fs::read_to_string(dir.path().join("services/event-archive/src/main.rs")).unwrap();
        assert!(main.contains("event_archive::app::build"), "{main}");
        assert!(!main.contains("{{"));
        assert!(generated.edited.contains(&"docker-compose.yml"));
        let again = generate(dir.path(), name, None, "task-events").unwrap_err();
        assert!(again.to_string().contains("refusing to overwrite"), "{again:#}");
    }

    #[test]
    fn bad_topics_and_taken_ports_write_nothing() {
        let dir = tree();
        let name = ServiceName::parse("event-archive").unwrap();
        assert!(generate(dir.path(), name.clone(), None, "bad topic").is_err());
        assert!(generate(dir.path(), name, Some(8080), "task-events").is_err());
        assert!(!dir.path().join("services/event-archive").exists());
        let compose = std::fs::read_to_string(dir.path().join("docker-compose.yml")).unwrap();
        assert!(!compose.contains("event-archive"));
    }
}
