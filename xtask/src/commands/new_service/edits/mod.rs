//! The deployment entries a new service needs, each a text insertion into one file of the target tree that keeps
//! its comments and formatting, followed by a re-parse proving the new entry is where it belongs.

mod cargo_toml;
mod compose;
mod dockerfile;
mod helm;
mod prometheus;
mod registry;
mod scrape;
mod services_rules;
mod services_table;
mod text;

use super::name::ServiceName;

/// What the edits need to know about the new service and the tree.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: ServiceName,
    pub port: u16,
    /// The topic it consumes.
    pub topic: String,
    /// The services already in the tree (`services/*`), after whose entries the new one goes.
    pub existing: Vec<String>,
}

impl Spec {
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.{}.dlq", self.topic, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot find {0}; add the entry by hand (see docs/new-service.md)")]
    Anchor(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("after the edit, {0}")]
    Unverified(String),
    #[error("the edited file does not parse: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("the edited file does not parse: {0}")]
    Json(#[from] serde_json::Error),
}

/// One file edit: where, and the function that returns the edited text (unchanged when the file needs nothing).
#[derive(Debug, Clone, Copy)]
pub struct FileEdit {
    pub path: &'static str,
    pub apply: fn(&str, &Spec) -> Result<String, EditError>,
}

/// Every file a new service is entered in, in the order they are edited.
pub const FILE_EDITS: &[FileEdit] = &[
    FileEdit { path: "Cargo.toml", apply: cargo_toml::add_member },
    FileEdit { path: "docker-compose.yml", apply: compose::add_service },
    FileEdit { path: "monitoring/prometheus/prometheus.yml", apply: prometheus::add_scrape_job },
    FileEdit { path: "monitoring/prometheus/rules/services.yml", apply: services_rules::add_absent_rule },
    FileEdit { path: "helm/taskwatch/files/rules/services.yml", apply: services_rules::add_absent_rule },
    FileEdit { path: "monitoring/prometheus/tests/alerts_test.yml", apply: services_rules::add_target_to_absent_tests },
    FileEdit { path: "helm/taskwatch/values.yaml", apply: helm::add_values_entry },
    FileEdit { path: "helm/taskwatch/values.schema.json", apply: helm::allow_in_schema },
    FileEdit { path: "helm/taskwatch/templates/_helpers.tpl", apply: helm::wire_database_secret },
    FileEdit { path: "Dockerfile", apply: dockerfile::list_in_comment },
    FileEdit { path: "shared/testkit/src/services.rs", apply: services_table::add_row },
    FileEdit { path: "monitoring/telemetry/registry.yaml", apply: registry::add_template_metric },
];

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The repository's real file at `path`, read as a string.
    pub fn repo_file(path: &str) -> String {
        std::fs::read_to_string(crate::cargo::workspace_root().join(path)).unwrap()
    }

    pub fn spec() -> Spec {
        Spec {
            name: ServiceName::parse("event-archive").unwrap(),
            port: 8085,
            topic: "task-events".to_owned(),
            existing: ["backend", "reminder", "recurring-task", "notification"].map(str::to_owned).to_vec(),
        }
    }
}
