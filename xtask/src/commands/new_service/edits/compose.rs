//! `docker-compose.yml`: the service block (on the shared `x-taskwatch-service` anchor), its scrape job in the
//! inline Prometheus config, and its topics in the `kafka-topics` job.

use serde_norway::Value;

use super::text::{Lines, indent};
use super::{EditError, Spec, scrape};

/// The anchor every Taskwatch service block merges.
const SERVICE_ANCHOR: &str = "<<: *taskwatch-service";

pub fn add_service(text: &str, spec: &Spec) -> Result<String, EditError> {
    let mut lines = Lines::new(text);
    // Each step finds its anchors afresh, so the order does not matter.
    add_scrape_job(&mut lines, spec)?;
    add_topics(&mut lines, spec)?;
    add_service_block(&mut lines, spec)?;
    let edited = lines.into_text();
    verify(&edited, spec)?;
    Ok(edited)
}

fn add_service_block(lines: &mut Lines, spec: &Spec) -> Result<(), EditError> {
    let services =
        lines.top_level("services").ok_or_else(|| EditError::Anchor("`services:` in docker-compose.yml".into()))?;
    let entries = lines.child_mappings(services);
    if entries.iter().any(|(_, key)| key == spec.name.as_str()) {
        return Err(EditError::Exists(format!("compose service `{}`", spec.name)));
    }
    let (last, _) = entries
        .iter()
        .rev()
        .find(|(line, _)| lines.find(*line, lines.block_end(*line), |text| text.trim() == SERVICE_ANCHOR).is_some())
        .ok_or_else(|| EditError::Anchor(format!("a service block using `{SERVICE_ANCHOR}`")))?;
    let (name, port) = (&spec.name, spec.port);
    let block = format!(
        "
  {name}:
    {SERVICE_ANCHOR}
    build:
      context: .
      args: {{ SERVICE: {name}, PORT: \"{port}\" }}
    image: taskwatch/{name}:dev
    environment:
      <<: *taskwatch-env
      PORT: \"{port}\"
      DATABASE_URL: *database-url
      KAFKA_BROKERS: kafka:9092
    ports:
      - 127.0.0.1:{port}:{port}"
    );
    lines.insert(lines.block_end(*last), block.lines().map(str::to_owned));
    Ok(())
}

fn add_scrape_job(lines: &mut Lines, spec: &Spec) -> Result<(), EditError> {
    let anchor =
        || EditError::Anchor("`configs: prometheus: content:` with `scrape_configs:` in docker-compose.yml".into());
    let configs = lines.top_level("configs").ok_or_else(anchor)?;
    let scrape_configs =
        lines.find(configs, lines.block_end(configs), |line| line.trim() == "scrape_configs:").ok_or_else(anchor)?;
    scrape::insert_job(lines, scrape_configs, spec, &format!("{}:{}", spec.name, spec.port))
}

/// The dead-letter topic (one partition, read by hand) and the source topic if the stack does not create it yet.
fn add_topics(lines: &mut Lines, spec: &Spec) -> Result<(), EditError> {
    let anchor = || EditError::Anchor("the `create TOPIC PARTITIONS` lines of the `kafka-topics` job".into());
    let services = lines.top_level("services").ok_or_else(anchor)?;
    let (job, _) =
        lines.child_mappings(services).into_iter().find(|(_, key)| key == "kafka-topics").ok_or_else(anchor)?;
    let creates: Vec<usize> = (job..lines.block_end(job))
        .filter(|&index| {
            let words: Vec<&str> = lines.get(index).split_whitespace().collect();
            matches!(words.as_slice(), ["create", _, partitions] if partitions.parse::<u16>().is_ok())
        })
        .collect();
    let last = *creates.last().ok_or_else(anchor)?;
    let created: Vec<&str> = creates.iter().filter_map(|&index| lines.get(index).split_whitespace().nth(1)).collect();
    let dead_letter = spec.dead_letter_topic();
    if created.contains(&dead_letter.as_str()) {
        return Err(EditError::Exists(format!("topic `{dead_letter}` in kafka-topics")));
    }
    let pad = " ".repeat(indent(lines.get(last)));
    let mut new = Vec::new();
    if !created.contains(&spec.topic.as_str()) {
        new.push(format!("{pad}create {} 3", spec.topic));
    }
    new.push(format!("{pad}create {dead_letter} 1"));
    lines.insert(last + 1, new);
    Ok(())
}

fn verify(edited: &str, spec: &Spec) -> Result<(), EditError> {
    let mut model: Value = serde_norway::from_str(edited)?;
    model.apply_merge()?;
    let service = &model["services"][spec.name.as_str()];
    let port = spec.port.to_string();
    let wired = service["build"]["args"]["SERVICE"].as_str() == Some(spec.name.as_str())
        && service["build"]["args"]["PORT"].as_str() == Some(port.as_str())
        && service["environment"]["PORT"].as_str() == Some(port.as_str())
        && service["environment"]["DATABASE_URL"].as_str().is_some_and(|url| url.starts_with("postgres://"))
        && service["depends_on"]["postgres"]["condition"].as_str() == Some("service_healthy");
    if !wired {
        return Err(EditError::Unverified(format!(
            "compose service `{}` is not wired as expected: {service:?}",
            spec.name
        )));
    }
    let content = model["configs"]["prometheus"]["content"]
        .as_str()
        .ok_or_else(|| EditError::Unverified("`configs.prometheus.content` is gone".into()))?;
    scrape::verify_job(&serde_norway::from_str(content)?, spec, &format!("{}:{}", spec.name, spec.port))?;
    let script: String = match &model["services"]["kafka-topics"]["command"] {
        Value::Sequence(parts) => parts.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or_default().to_owned(),
    };
    if !script.lines().any(|line| line.split_whitespace().eq(["create", &spec.dead_letter_topic(), "1"])) {
        return Err(EditError::Unverified(format!("kafka-topics does not create {}", spec.dead_letter_topic())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_real_compose_file_gets_the_block_the_job_and_the_topic() {
        let original = repo_file("docker-compose.yml");
        let edited = add_service(&original, &spec()).unwrap();
        let mut model: Value = serde_norway::from_str(&edited).unwrap();
        model.apply_merge().unwrap();
        let service = &model["services"]["event-archive"];
        assert_eq!(service["image"].as_str(), Some("taskwatch/event-archive:dev"));
        assert_eq!(service["ports"][0].as_str(), Some("127.0.0.1:8085:8085"));
        assert_eq!(service["environment"]["KAFKA_BROKERS"].as_str(), Some("kafka:9092"));
        assert_eq!(service["environment"]["RUST_LOG"].as_str(), Some("info"), "the shared environment is merged");
        assert_eq!(service["depends_on"]["kafka-topics"]["condition"].as_str(), Some("service_completed_successfully"));
        let services: Vec<&str> = model["services"].as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
        let ours = services.iter().position(|name| *name == "event-archive").unwrap();
        assert_eq!(services[ours - 1], "audit-log", "after the last service: {services:?}");
        assert!(edited.contains("        create task-events.event-archive.dlq 1\n"), "{edited}");
        assert!(
            !edited.contains("create task-events 3\n        create task-events 3"),
            "a known topic is not re-created"
        );
        // Every original line is still there, in order.
        let mut remaining = edited.lines();
        for line in original.lines() {
            assert!(remaining.any(|edited_line| edited_line == line), "lost: {line}");
        }
        assert!(matches!(add_service(&edited, &spec()), Err(EditError::Exists(_))));
    }

    #[test]
    fn a_new_source_topic_is_created_too() {
        let mut spec = spec();
        spec.topic = "audit-events".into();
        let edited = add_service(&repo_file("docker-compose.yml"), &spec).unwrap();
        assert!(
            edited.contains("create audit-events 3\n        create audit-events.event-archive.dlq 1\n"),
            "{edited}"
        );
    }
}
