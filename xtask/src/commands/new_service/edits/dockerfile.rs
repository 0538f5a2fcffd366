//! The Dockerfile is generic (build argument SERVICE); only its header comment lists the services.

use super::text::Lines;
use super::{EditError, Spec};

/// Appends the service to the `# SERVICE   a | b | c   (…)` comment line, if the Dockerfile has one.
pub fn list_in_comment(text: &str, spec: &Spec) -> Result<String, EditError> {
    let mut lines = Lines::new(text);
    let Some(at) = lines.find(0, lines.len(), |line| line.starts_with("# SERVICE ") && line.contains(" | ")) else {
        return Ok(text.to_owned());
    };
    let line = lines.get(at).to_owned();
    let (list, note) = match line.find("   (") {
        Some(split) => line.split_at(split),
        None => (line.as_str(), ""),
    };
    if list.split(['|', ' ']).any(|word| word == spec.name.as_str()) {
        return Err(EditError::Exists(format!("`{}` in the Dockerfile's SERVICE comment", spec.name)));
    }
    lines.replace(at, format!("{} | {}{note}", list.trim_end(), spec.name));
    Ok(lines.into_text())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_comment_lists_the_new_service_and_nothing_else_changes() {
        let original = repo_file("Dockerfile");
        let edited = list_in_comment(&original, &spec()).unwrap();
        let changed: Vec<(&str, &str)> = original.lines().zip(edited.lines()).filter(|(a, b)| a != b).collect();
        if original.lines().any(|line| line.starts_with("# SERVICE ") && line.contains(" | ")) {
            assert_eq!(changed.len(), 1, "{changed:?}");
            assert!(changed[0].1.contains("| audit-log | event-archive"), "{changed:?}");
        } else {
            assert!(changed.is_empty());
        }
        assert_eq!(list_in_comment("FROM x\n", &spec()).unwrap(), "FROM x\n");
    }
}
