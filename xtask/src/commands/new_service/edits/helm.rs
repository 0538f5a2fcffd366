//! The Helm chart: the `services:` entry in `values.yaml`, the schema's list of service keys when it is closed,
//! and the service's database credential in the `taskwatch.secretEnv` helper.

use serde_norway::Value;

use super::text::{Lines, indent};
use super::{EditError, Spec};

/// The Secret key holding the Postgres URL (the chart's `secretEnv` helper maps variables to keys).
const DATABASE_URL_KEY: &str = "database-url";

/// Adds `services.NAME`, a copy of the last entry's shape (its comments dropped) with this service's image and
/// port, so keys the chart adds later to every service are carried over.
pub fn add_values_entry(text: &str, spec: &Spec) -> Result<String, EditError> {
    let mut lines = Lines::new(text);
    let services = lines.top_level("services").ok_or_else(|| EditError::Anchor("`services:` in values.yaml".into()))?;
    let entries = lines.child_mappings(services);
    if entries.iter().any(|(_, key)| key == spec.name.as_str()) {
        return Err(EditError::Exists(format!("services.{} in values.yaml", spec.name)));
    }
    let (model_line, model) =
        entries.last().cloned().ok_or_else(|| EditError::Anchor("an entry under `services:` to copy".into()))?;
    let end = lines.block_end(model_line);
    let depth = indent(lines.get(model_line));
    let mut entry = Vec::new();
    for index in model_line..end {
        let line = lines.get(index);
        let trimmed = line.trim_start();
        let pad = &line[..indent(line)];
        if trimmed.starts_with('#') {
            continue;
        }
        entry.push(if index == model_line {
            format!("{pad}{}:", spec.name)
        } else if trimmed.starts_with("repository:") {
            format!("{pad}repository: taskwatch/{}", spec.name)
        } else if trimmed.starts_with("port:") && indent(line) == depth + 2 {
            format!("{pad}port: {}", spec.port)
        } else {
            line.to_owned()
        });
    }
    lines.insert(end, entry);
    let edited = lines.into_text();
    verify_values(&edited, spec, &model)?;
    Ok(edited)
}

fn verify_values(edited: &str, spec: &Spec, model: &str) -> Result<(), EditError> {
    let values: Value = serde_norway::from_str(edited)?;
    let services = &values["services"];
    let keys = |entry: &Value| -> Vec<String> {
        entry
            .as_mapping()
            .map(|map| map.keys().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let ours = &services[spec.name.as_str()];
    let expected_image = format!("taskwatch/{}", spec.name);
    let ok = keys(ours) == keys(&services[model])
        && ours["port"].as_u64() == Some(u64::from(spec.port))
        && ours["image"]["repository"].as_str() == Some(expected_image.as_str());
    if ok {
        Ok(())
    } else {
        Err(EditError::Unverified(format!("services.{} in values.yaml is not shaped like services.{model}", spec.name)))
    }
}

/// When the schema closes the `services` map (`additionalProperties: false`), adds the new key, pointing at the
/// schema of an existing service: every service entry has the same shape.
pub fn allow_in_schema(text: &str, spec: &Spec) -> Result<String, EditError> {
    let schema: serde_json::Value = serde_json::from_str(text)?;
    let services = &schema["properties"]["services"];
    if services["additionalProperties"] != serde_json::Value::Bool(false) {
        return Ok(text.to_owned());
    }
    let known = services["properties"]
        .as_object()
        .ok_or_else(|| EditError::Anchor("`services.properties` in the schema".into()))?;
    if known.contains_key(spec.name.as_str()) {
        return Err(EditError::Exists(format!("services.{} in values.schema.json", spec.name)));
    }
    let model = spec
        .existing
        .iter()
        .find(|name| known.contains_key(name.as_str()))
        .ok_or_else(|| EditError::Anchor("an existing service in the schema's `services.properties`".into()))?;
    let mut lines = Lines::new(text);
    let anchor = || EditError::Anchor("the `\"services\"` → `\"properties\"` object of values.schema.json".into());
    let services_line = lines.find(0, lines.len(), |line| line.trim() == "\"services\": {").ok_or_else(anchor)?;
    let properties = lines
        .find(services_line + 1, lines.block_end(services_line), |line| {
            line.trim() == "\"properties\": {" && indent(line) == indent(lines.get(services_line)) + 2
        })
        .ok_or_else(anchor)?;
    let pad = " ".repeat(indent(lines.get(properties)) + 2);
    lines.insert(
        properties + 1,
        [
            format!("{pad}\"{}\": {{", spec.name),
            format!("{pad}  \"$ref\": \"#/properties/services/properties/{model}\""),
            format!("{pad}}},"),
        ],
    );
    let edited = lines.into_text();
    let parsed: serde_json::Value = serde_json::from_str(&edited)?;
    let reference = parsed["properties"]["services"]["properties"][spec.name.as_str()]["$ref"].as_str();
    let target = reference.and_then(|pointer| parsed.pointer(pointer.trim_start_matches('#')));
    if !target.is_some_and(serde_json::Value::is_object) {
        return Err(EditError::Unverified(format!("the schema entry of {} does not resolve", spec.name)));
    }
    Ok(edited)
}

/// Gives the service `DATABASE_URL` from the chart's Secret (a service never sees another's credentials, so the
/// helper lists each one).
pub fn wire_database_secret(text: &str, spec: &Spec) -> Result<String, EditError> {
    let mut lines = Lines::new(text);
    let anchor = || EditError::Anchor("`{{- define \"taskwatch.secretEnv\" -}}` … `{{- end }}` in _helpers.tpl".into());
    let define =
        lines.find(0, lines.len(), |line| line.contains("define \"taskwatch.secretEnv\"")).ok_or_else(anchor)?;
    let end = lines.find(define + 1, lines.len(), |line| line.trim() == "{{- end }}").ok_or_else(anchor)?;
    let header = format!("{}:", spec.name);
    if lines.find(define, end, |line| line == header).is_some() {
        return Err(EditError::Exists(format!("`{}` in taskwatch.secretEnv", spec.name)));
    }
    lines.insert(end, [header.clone(), format!("  DATABASE_URL: {DATABASE_URL_KEY}")]);
    let edited = lines.clone().into_text();
    let at = lines.find(define, end + 2, |line| line == header).ok_or_else(anchor)?;
    if lines.get(at + 1).trim() != format!("DATABASE_URL: {DATABASE_URL_KEY}") {
        return Err(EditError::Unverified(format!("taskwatch.secretEnv does not give {} its DATABASE_URL", spec.name)));
    }
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_values_entry_copies_the_shape_of_the_last_service() {
        let original = repo_file("helm/taskwatch/values.yaml");
        let edited = add_values_entry(&original, &spec()).unwrap();
        let values: Value = serde_norway::from_str(&edited).unwrap();
        let ours = &values["services"]["event-archive"];
        assert_eq!(ours["port"].as_u64(), Some(8085));
        assert_eq!(ours["image"]["repository"].as_str(), Some("taskwatch/event-archive"));
        assert_eq!(ours["enabled"].as_bool(), Some(true));
        assert!(ours["resources"]["limits"]["memory"].as_str().is_some());
        let original_values: Value = serde_norway::from_str(&original).unwrap();
        for key in ["backend", "reminder", "recurring-task", "notification"] {
            assert_eq!(values["services"][key], original_values["services"][key], "{key} untouched");
        }
        assert_eq!(values["monitoring"], original_values["monitoring"]);
        assert!(matches!(add_values_entry(&edited, &spec()), Err(EditError::Exists(_))));
    }

    #[test]
    fn a_closed_schema_gets_the_key_and_an_open_one_is_left_alone() {
        let original = repo_file("helm/taskwatch/values.schema.json");
        let edited = allow_in_schema(&original, &spec()).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&edited).unwrap();
        let services = &schema["properties"]["services"];
        if services["additionalProperties"] == serde_json::Value::Bool(false) {
            let reference = services["properties"]["event-archive"]["$ref"].as_str().unwrap();
            assert!(schema.pointer(reference.trim_start_matches('#')).unwrap()["properties"]["port"].is_object());
        } else {
            assert_eq!(edited, original);
        }
        let open = r#"{"properties": {"services": {"type": "object", "additionalProperties": {"type": "object"}}}}"#;
        assert_eq!(allow_in_schema(open, &spec()).unwrap(), open);
    }

    #[test]
    fn the_helper_gives_the_service_its_database_url() {
        let original = repo_file("helm/taskwatch/templates/_helpers.tpl");
        let edited = wire_database_secret(&original, &spec()).unwrap();
        assert!(edited.contains("event-archive:\n  DATABASE_URL: database-url\n{{- end }}"), "{edited}");
        assert_eq!(edited.lines().count(), original.lines().count() + 2);
        assert!(matches!(wire_database_secret(&edited, &spec()), Err(EditError::Exists(_))));
    }
}
