//! A Prometheus scrape job, inserted into a `scrape_configs:` list after the last job of an existing service
//! (shared by `monitoring/prometheus/prometheus.yml` and the inline copy in `docker-compose.yml`).

use super::text::{Lines, indent};
use super::{EditError, Spec};

/// Inserts `- job_name: NAME` with `target` into the list under line `scrape_configs`, labelled like the
/// other services' targets: the rules aggregate by `namespace`, and `part_of` makes TaskwatchServiceDown and the
/// dashboards' service lists include the new service.
pub fn insert_job(lines: &mut Lines, scrape_configs: usize, spec: &Spec, target: &str) -> Result<(), EditError> {
    let end = lines.block_end(scrape_configs);
    let jobs: Vec<(usize, String)> = (scrape_configs + 1..end)
        .filter_map(|index| {
            let name = lines.get(index).trim_start().strip_prefix("- job_name:")?;
            Some((index, name.trim().trim_matches('"').to_owned()))
        })
        .collect();
    if jobs.iter().any(|(_, name)| name == spec.name.as_str()) {
        return Err(EditError::Exists(format!("scrape job `{}`", spec.name)));
    }
    let (after, _) = jobs
        .iter()
        .rev()
        .find(|(_, name)| spec.existing.contains(name))
        .ok_or_else(|| EditError::Anchor("a scrape job of an existing service".into()))?;
    let pad = " ".repeat(indent(lines.get(*after)));
    lines.insert(
        lines.block_end(*after),
        [
            format!("{pad}- job_name: {}", spec.name),
            format!("{pad}  static_configs:"),
            format!("{pad}    - targets: [\"{target}\"]"),
            format!("{pad}      labels: {{namespace: taskwatch, part_of: taskwatch}}"),
        ],
    );
    Ok(())
}

/// Checks that the parsed Prometheus config scrapes `target` under job NAME, exactly once.
pub fn verify_job(config: &serde_norway::Value, spec: &Spec, target: &str) -> Result<(), EditError> {
    let jobs = config["scrape_configs"]
        .as_sequence()
        .ok_or_else(|| EditError::Unverified("`scrape_configs` is not a list".into()))?;
    let ours: Vec<_> = jobs.iter().filter(|job| job["job_name"].as_str() == Some(spec.name.as_str())).collect();
    let group = ours.first().map(|job| &job["static_configs"][0]);
    let targets = group.map(|group| &group["targets"][0]);
    let labelled = group.is_some_and(|group| group["labels"]["part_of"].as_str() == Some("taskwatch"));
    match (ours.len(), targets.and_then(|target| target.as_str())) {
        (1, Some(found)) if found == target && labelled => Ok(()),
        (count, found) => Err(EditError::Unverified(format!(
            "job `{}` appears {count} times with target {found:?}, expected once with {target}, labelled part_of=taskwatch",
            spec.name
        ))),
    }
}
