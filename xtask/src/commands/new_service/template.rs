//! The service template (`xtask/templates/service`, embedded at compile time) and its renderer: `{{key}}`
//! placeholders replaced by values, nothing else. Strict, so a typo in a template is an error at generation
//! time rather than a broken crate: an unknown key, an unclosed `{{` or an unused value fail.

use std::collections::BTreeMap;

/// One template file: its path in the generated service (without `.tmpl`) and its text.
#[derive(Debug, Clone, Copy)]
pub struct TemplateFile {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! template_files {
    ($($path:literal),* $(,)?) => {
        &[$(TemplateFile {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/service/", $path, ".tmpl")),
        }),*]
    };
}

/// Every file of the template; a test checks this list against the directory.
pub const SERVICE_TEMPLATE: &[TemplateFile] = template_files![
    "Cargo.toml",
    "README.md",
    "migrations/20260101000001_task_activity.sql",
    "src/app.rs",
    "src/config.rs",
    "src/handler.rs",
    "src/lib.rs",
    "src/main.rs",
    "src/metrics.rs",
    "src/store.rs",
    "tests/service.rs",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown placeholder `{{{{{0}}}}}` at byte {1}")]
    UnknownKey(String, usize),
    #[error("`{{{{` at byte {0} is not closed by `}}}}`")]
    Unclosed(usize),
    #[error("value `{0}` is never used by the template")]
    Unused(String),
}

/// Replaces every `{{key}}` in each of `files` with `values[key]`; fails if any value is used by none of them.
pub fn render_all(
    files: &[TemplateFile],
    values: &BTreeMap<&str, String>,
) -> Result<Vec<(&'static str, String)>, RenderError> {
    let mut used = Vec::new();
    let rendered = files
        .iter()
        .map(|file| Ok((file.path, render_tracking(file.text, values, &mut used)?)))
        .collect::<Result<Vec<_>, RenderError>>()?;
    match values.keys().find(|key| !used.contains(*key)) {
        Some(unused) => Err(RenderError::Unused((*unused).to_owned())),
        None => Ok(rendered),
    }
}

fn render_tracking<'v>(
    template: &str,
    values: &'v BTreeMap<&str, String>,
    used: &mut Vec<&'v str>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let offset = template.len() - rest.len() + start;
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(RenderError::Unclosed(offset))?;
        let key = &after[..end];
        let (known, value) =
            values.get_key_value(key).ok_or_else(|| RenderError::UnknownKey(key.to_owned(), offset))?;
        if !used.contains(known) {
            used.push(known);
        }
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &'static str, values: &BTreeMap<&'static str, String>) -> Result<String, RenderError> {
        Ok(render_all(&[TemplateFile { path: "f", text }], values)?.remove(0).1)
    }

    fn values(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn placeholders_are_replaced_and_the_rest_kept() {
        let rendered = render("a {{name}} b {{port}}{{name}} {c}", &values(&[("name", "x"), ("port", "1")])).unwrap();
        assert_eq!(rendered, "a x b 1x {c}");
    }

    #[test]
    fn unknown_unclosed_and_unused_are_errors() {
        let vals = values(&[("name", "x")]);
        assert_eq!(render("{{name}}", &vals), Ok("x".to_owned()));
        assert_eq!(render("ab {{nmae}}", &vals), Err(RenderError::UnknownKey("nmae".into(), 3)));
        assert_eq!(render("ab {{name", &vals), Err(RenderError::Unclosed(3)));
        let file = TemplateFile { path: "f", text: "{{name}}" };
        assert_eq!(
            render_all(&[file], &values(&[("name", "x"), ("port", "1")])),
            Err(RenderError::Unused("port".into()))
        );
        assert_eq!(RenderError::UnknownKey("k".into(), 0).to_string(), "unknown placeholder `{{k}}` at byte 0");
    }

    #[test]
    fn the_embedded_list_is_the_template_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/service");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
                    on_disk.push(relative.strip_suffix(".tmpl").expect("every template file ends in .tmpl").to_owned());
                }
            }
        }
        on_disk.sort();
        let embedded: Vec<&str> = SERVICE_TEMPLATE.iter().map(|file| file.path).collect();
        assert_eq!(on_disk, embedded);
    }
}
