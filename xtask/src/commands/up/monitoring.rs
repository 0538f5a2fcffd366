//! Prometheus and Alertmanager beside the local stack, evaluating the repo's own rules: the demo's faults
//! (`monitoring/DEMO.md`) make real alerts fire at <http://127.0.0.1:9090/alerts> and reach Alertmanager at
//! <http://127.0.0.1:9093>. Both run from Debian's packages with the files in `monitoring/`: Prometheus on the
//! shipped `prometheus.yml` (service addresses rewritten when `--port` moved the services), Alertmanager on the
//! compose demo's `demo.yml` (the shipped routes, grouping and inhibitions, every receiver mailing) with its mail
//! server pointed at this stack's SMTP sink, so a demo's alerts arrive as files in the mail directory instead of
//! failing calls to the shipped config's placeholder receivers.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::stack::{self, Service, StackSettings};
use crate::supervisor::ProcessSpec;

pub const PROMETHEUS_ADDRESS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);
pub const ALERTMANAGER_ADDRESS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9093);

/// The two processes, with fresh data directories under `state_dir`.
pub fn processes(settings: &StackSettings, repo: &Path, state_dir: &Path) -> anyhow::Result<Vec<ProcessSpec>> {
    let prometheus_config = prometheus_config(settings, repo, state_dir)?;
    let alertmanager_config = alertmanager_config(settings, repo, state_dir)?;
    let data = |name: &str| -> anyhow::Result<PathBuf> {
        let dir = state_dir.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    };
    Ok(vec![
        ProcessSpec {
            name: "alertmanager",
            program: PathBuf::from("prometheus-alertmanager"),
            args: vec![
                format!("--config.file={}", alertmanager_config.display()),
                format!("--web.listen-address={ALERTMANAGER_ADDRESS}"),
                format!("--storage.path={}", data("alertmanager")?.display()),
                // A single local instance: no gossip port to collide with anything.
                "--cluster.listen-address=".to_owned(),
            ],
            env: Vec::new(),
            ready_at: ALERTMANAGER_ADDRESS,
        },
        ProcessSpec {
            name: "prometheus",
            program: PathBuf::from("prometheus"),
            args: vec![
                format!("--config.file={}", prometheus_config.display()),
                format!("--web.listen-address={PROMETHEUS_ADDRESS}"),
                format!("--storage.tsdb.path={}", data("prometheus")?.display()),
                "--web.enable-lifecycle".to_owned(),
            ],
            env: Vec::new(),
            ready_at: PROMETHEUS_ADDRESS,
        },
    ])
}

/// `monitoring/prometheus/prometheus.yml` as committed (its targets are this stack's default ports), with the
/// rule files made absolute and each service's target moved to where it listens now.
fn prometheus_config(settings: &StackSettings, repo: &Path, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let source = repo.join("monitoring/prometheus/prometheus.yml");
    let mut config = std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    let rules = repo.join("monitoring/prometheus/rules/*.yml");
    config = replace_once(&source, &config, "- rules/*.yml", &format!("- {}", rules.display()))?;
    for &service in Service::ALL {
        let default = stack::address(service, stack::DEFAULT_BACKEND_PORT);
        let actual = settings.address(service);
        config = replace_once(&source, &config, &format!("\"{default}\""), &format!("\"{actual}\""))?;
    }
    write_config(state_dir, "prometheus.yml", &config)
}

/// `monitoring/alertmanager/demo.yml` with its mail server moved from compose's Mailpit to this stack's SMTP sink
/// and its templates found from wherever the copy is written.
fn alertmanager_config(settings: &StackSettings, repo: &Path, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let source = repo.join("monitoring/alertmanager/demo.yml");
    let mut config = std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    let smarthost = format!("smtp_smarthost: {}", settings.smtp_address);
    config = replace_once(&source, &config, "smtp_smarthost: mailpit:1025", &smarthost)?;
    let templates = repo.join("monitoring/alertmanager/templates/*.tmpl");
    config = replace_once(&source, &config, "- templates/*.tmpl", &format!("- {}", templates.display()))?;
    write_config(state_dir, "alertmanager.yml", &config)
}

/// Writes `config` as `name` under `state_dir`.
fn write_config(state_dir: &Path, name: &str, config: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let written = state_dir.join(name);
    std::fs::write(&written, config).with_context(|| format!("writing {}", written.display()))?;
    Ok(written)
}

/// Replaces the one occurrence of `from` in `text` (read from `source`); anything else means the committed file
/// changed shape.
fn replace_once(source: &Path, text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    match text.matches(from).count() {
        1 => Ok(text.replacen(from, to, 1)),
        count => anyhow::bail!("expected `{from}` once in {}, found it {count} times", source.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack whose backend listens on `backend_port` and whose SMTP sink on `smtp_port`.
    fn settings(backend_port: u16, smtp_port: u16) -> StackSettings {
        StackSettings {
            binaries: Vec::new(),
            backend_port,
            database_url: String::new(),
            kafka_brokers: String::new(),
            smtp_address: SocketAddr::from((Ipv4Addr::LOCALHOST, smtp_port)),
            jwt_secret: String::new(),
            internal_service_token: String::new(),
            webhook_signing_secret: String::new(),
        }
    }

    #[test]
    fn the_committed_config_is_rewritten_for_moved_ports() {
        let settings = settings(9000, 2525);
        let state = tempfile::tempdir().expect("temporary directory");
        let written = prometheus_config(&settings, crate::cargo::workspace_root(), state.path()).expect("rewritten");
        let config = std::fs::read_to_string(written).expect("readable");
        for port in 9000..=9003 {
            assert!(config.contains(&format!("\"127.0.0.1:{port}\"")), "{port} missing:\n{config}");
        }
        assert!(!config.contains("\"127.0.0.1:8080\""), "{config}");
        assert!(config.contains("/monitoring/prometheus/rules/*.yml"), "{config}");
    }

    #[test]
    fn alertmanager_runs_the_demo_routing_mailing_the_stacks_smtp_sink() {
        let settings = settings(8080, 2526);
        let state = tempfile::tempdir().expect("temporary directory");
        let written = alertmanager_config(&settings, crate::cargo::workspace_root(), state.path()).expect("rewritten");
        let config = std::fs::read_to_string(written).expect("readable");
        assert!(config.contains("smtp_smarthost: 127.0.0.1:2526"), "{config}");
        assert!(!config.contains("mailpit"), "{config}");
        assert!(!config.contains("deadmans-switch.invalid"), "the demo routing has no placeholder receivers");
        let templates = crate::cargo::workspace_root().join("monitoring/alertmanager/templates/*.tmpl");
        assert!(config.contains(&format!("- {}", templates.display())), "{config}");
    }
}
