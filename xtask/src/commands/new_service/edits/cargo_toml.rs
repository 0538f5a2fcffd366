//! The workspace `members` list of the root `Cargo.toml`.

use super::text::Lines;
use super::{EditError, Spec};

pub fn add_member(text: &str, spec: &Spec) -> Result<String, EditError> {
    let member = format!("\"services/{}\"", spec.name);
    let mut lines = Lines::new(text);
    let open = lines
        .find(0, lines.len(), |line| line.trim_start().starts_with("members = [") && !line.contains(']'))
        .ok_or_else(|| EditError::Anchor("a multi-line `members = [` list in Cargo.toml".into()))?;
    let close = lines
        .find(open + 1, lines.len(), |line| line.trim() == "]")
        .ok_or_else(|| EditError::Anchor("the end of the `members` list".into()))?;
    if members(&lines, open, close).contains(&member) {
        return Err(EditError::Exists(format!("workspace member {member}")));
    }
    let indent = if close > open + 1 { super::text::indent(lines.get(close - 1)) } else { 4 };
    lines.insert(close, [format!("{}{member},", " ".repeat(indent))]);
    let edited = lines.clone().into_text();
    let count = members(&lines, open, close + 1).iter().filter(|entry| **entry == member).count();
    if count != 1 {
        return Err(EditError::Unverified(format!("{member} appears {count} times in `members`")));
    }
    Ok(edited)
}

/// The quoted entries between the `members = [` line and its closing `]`.
fn members(lines: &Lines, open: usize, close: usize) -> Vec<String> {
    (open + 1..close).map(|index| lines.get(index).trim().trim_end_matches(',').to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_member_is_added_once_to_the_real_cargo_toml() {
        let original = repo_file("Cargo.toml");
        let edited = add_member(&original, &spec()).unwrap();
        assert!(edited.contains("    \"services/event-archive\",\n]"), "{edited}");
        assert_eq!(edited.replace("    \"services/event-archive\",\n", ""), original, "nothing else changed");
        assert!(matches!(add_member(&edited, &spec()), Err(EditError::Exists(_))));
    }
}
