//! A Prometheus text exposition (format 0.0.4) read into metric families: each family's `# TYPE` and the label
//! sets of its samples. Enough to compare what a service emits with the registry; values are not kept.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family: the name in `# TYPE`, its type, and every sample's labels (`le` and `quantile`
/// included) keyed by the sample's own name (`x_bucket`, `x_sum`, `x_count` for a histogram `x`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Family {
    /// The `# TYPE` keyword (`counter`, `gauge`, `histogram`, …); `untyped` for samples without a `# TYPE`.
    pub kind: String,
    /// Sample name → the label set of each of its samples, in exposition order.
    pub samples: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Family {
    /// Every label name on any sample of the family.
    pub fn label_names(&self) -> BTreeSet<String> {
        self.samples.values().flatten().flat_map(|labels| labels.keys().cloned()).collect()
    }

    /// Every value `label` takes on any sample.
    pub fn label_values(&self, label: &str) -> BTreeSet<String> {
        self.samples.values().flatten().filter_map(|labels| labels.get(label).cloned()).collect()
    }
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}: {text}")]
pub struct ParseError {
    /// 1-based line number in the exposition.
    pub line: usize,
    /// What is wrong with it: `not a sample`, or a `# TYPE` line missing its name or its type.
    pub reason: &'static str,
    /// The line as it appears in the exposition.
    pub text: String,
}

/// The families of `text`, keyed by family name. A sample without a `# TYPE` is its own untyped family.
pub fn parse(text: &str) -> Result<BTreeMap<String, Family>, ParseError> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let error = |reason| ParseError { line: number + 1, reason, text: line.to_owned() };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let name = words.next().ok_or_else(|| error("TYPE without a name"))?;
                let kind = words.next().ok_or_else(|| error("TYPE without a type"))?;
                families.entry(name.to_owned()).or_default().kind = kind.to_owned();
            }
            continue;
        }
        let (name, labels) = sample(line).ok_or_else(|| error("not a sample"))?;
        let family = family_of(&families, &name);
        let entry = families.entry(family).or_insert_with(|| Family { kind: "untyped".into(), ..Family::default() });
        entry.samples.entry(name).or_default().push(labels);
    }
    Ok(families)
}

/// The family a sample named `name` belongs to: a typed histogram or summary when `name` is one of its series.
fn family_of(families: &BTreeMap<String, Family>, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && families.get(base).is_some_and(|family| family.kind == "histogram" || family.kind == "summary")
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

/// `name{a="1",b="x\"y"} value [timestamp]` → name and labels.
fn sample(line: &str) -> Option<(String, BTreeMap<String, String>)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let rest = &line[name_end..];
    let Some(mut inside) = rest.strip_prefix('{') else {
        return Some((name, labels));
    };
    loop {
        inside = inside.trim_start_matches([',', ' ']);
        if let Some(after) = inside.strip_prefix('}') {
            after.split_whitespace().next()?;
            return Some((name, labels));
        }
        let (label, after_eq) = inside.split_once('=')?;
        let mut chars = after_eq.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break at,
                other => value.push(other),
            }
        };
        labels.insert(label.trim().to_owned(), value);
        inside = &after_eq[end + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_histogram_series_and_reads_escaped_labels() {
        let text = "# HELP h Help.\n# TYPE h histogram\nh_bucket{le=\"0.5\",route=\"/a\"} 1\nh_bucket{le=\"+Inf\",route=\"/a\"} 2\n\
                    h_sum{route=\"/a\"} 0.3\nh_count{route=\"/a\"} 2\n# TYPE c_total counter\nc_total{v=\"x\\\"y,z\"} 4\nbare 1\n";
        let families = parse(text).expect("parses");
        assert_eq!(families.keys().collect::<Vec<_>>(), ["bare", "c_total", "h"]);
        assert_eq!(families["h"].kind, "histogram");
        assert_eq!(families["h"].samples.keys().collect::<Vec<_>>(), ["h_bucket", "h_count", "h_sum"]);
        assert_eq!(families["h"].label_names().into_iter().collect::<Vec<_>>(), ["le", "route"]);
        assert_eq!(families["c_total"].label_values("v").into_iter().collect::<Vec<_>>(), ["x\"y,z"]);
        assert_eq!(families["bare"].kind, "untyped");
    }

    #[test]
    fn reports_a_broken_line() {
        assert_eq!(parse("x{a=\"1\" 2\n").map_err(|error| error.line), Err(1));
    }
}
