//! The metric names a PromQL expression references, found without a full parser: a tokenizer that knows where
//! names cannot be (strings, label matchers, range and subquery brackets, grouping label lists, function
//! calls, keywords, numbers and durations, Grafana `$variables`).

use std::collections::BTreeSet;

/// Words that are operators or modifiers, never metric names (when not followed by `(`).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "start",
    "end",
    "atan2",
];

/// Aggregation operators, which may be followed by `by (…)`/`without (…)` before their parenthesis.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Modifiers whose parenthesised list holds label names, not expressions.
const LABEL_LIST_MODIFIERS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// One instant- or range-vector selector of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name, written before the matchers or as an `__name__="…"` equality matcher; `None` when a
    /// regex or nothing names it.
    pub name: Option<String>,
    /// The text between the braces, empty for a bare name.
    pub matchers: String,
}

/// Every metric name `expr` selects: bare selectors and `{__name__="…"}` matchers. Recording-rule names
/// (`level:metric:operations`) are returned like any other name.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().filter_map(|selector| selector.name).collect()
}

/// Every selector of `expr`, in order.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '"' || c == '\'' || c == '`' {
            index = skip_string(&chars, index);
        } else if c == '#' {
            // A comment runs to the end of the line.
            while index < chars.len() && chars[index] != '\n' {
                index += 1;
            }
        } else if c == '{' {
            let end = matching(&chars, index, '{', '}');
            let inside = &chars[index + 1..end.saturating_sub(1).max(index + 1)];
            found.push(Selector { name: name_matchers(inside).pop(), matchers: inside.iter().collect() });
            index = end;
        } else if c == '[' {
            index = matching(&chars, index, '[', ']');
        } else if c == '$' {
            // A Grafana variable: `$var`, `${var}`, `$__rate_interval`.
            index += 1;
            if chars.get(index) == Some(&'{') {
                index = matching(&chars, index, '{', '}');
            } else {
                while index < chars.len() && is_name_char(chars[index]) {
                    index += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(index + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers, durations (5m, 1h30m), hex and exponents.
            while index < chars.len() && (chars[index].is_ascii_alphanumeric() || chars[index] == '.') {
                index += 1;
            }
        } else if is_name_start(c) {
            let start = index;
            while index < chars.len() && is_name_char(chars[index]) {
                index += 1;
            }
            let word: String = chars[start..index].iter().collect();
            let next = next_non_space(&chars, index);
            let is_call = next.is_some_and(|at| chars[at] == '(');
            if LABEL_LIST_MODIFIERS.contains(&word.as_str()) {
                if let Some(at) = next.filter(|at| chars[*at] == '(') {
                    index = matching(&chars, at, '(', ')');
                }
            } else if !is_call
                && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                && !AGGREGATIONS.contains(&word.as_str())
            {
                let mut matchers = String::new();
                if let Some(at) = next.filter(|at| chars[*at] == '{') {
                    let end = matching(&chars, at, '{', '}');
                    matchers = chars[at + 1..end.saturating_sub(1).max(at + 1)].iter().collect();
                    index = end;
                }
                found.push(Selector { name: Some(word), matchers });
            }
        } else {
            index += 1;
        }
    }
    found
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn next_non_space(chars: &[char], from: usize) -> Option<usize> {
    (from..chars.len()).find(|at| !chars[*at].is_whitespace())
}

/// The index after the quoted string starting at `start` (escapes honoured, except in backtick strings).
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut index = start + 1;
    while index < chars.len() {
        match chars[index] {
            '\\' if quote != '`' => index += 2,
            c if c == quote => return index + 1,
            _ => index += 1,
        }
    }
    index
}

/// The index after the bracket that closes the one at `start`, skipping strings inside.
fn matching(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    let mut index = start;
    while index < chars.len() {
        let c = chars[index];
        if c == '"' || c == '\'' || c == '`' {
            index = skip_string(chars, index);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return index + 1;
            }
        }
        index += 1;
    }
    index
}

/// Names given as `__name__="…"` (equality only; a regex names a pattern, not a metric) inside a matcher block.
fn name_matchers(inside: &[char]) -> Vec<String> {
    let text: String = inside.iter().collect();
    text.split(',')
        .filter_map(|matcher| {
            let (label, value) = matcher.split_once('=')?;
            let value = value.trim();
            (label.trim() == "__name__" && !value.starts_with('~'))
                .then(|| value.trim_matches(|c| c == '"' || c == '\'' || c == '`').to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn finds_selectors_and_skips_functions_labels_and_keywords() {
        let expr = r#"sum by (job, le) (rate(http_server_request_duration_seconds_bucket{http_route!~"/health/.*|/metrics", job="x"}[5m]))
              / on (job) group_left (instance) (up{job="a,b"} > 0) and ignoring(le) bool job:foo:rate5m offset 5m"#;
        assert_eq!(names(expr), ["http_server_request_duration_seconds_bucket", "job:foo:rate5m", "up"]);
    }

    #[test]
    fn skips_numbers_durations_strings_comments_and_grafana_variables() {
        let expr = "histogram_quantile(0.95, x_bucket[$__rate_interval]) > 1e3 # not_a_metric\n\
                    + label_replace(y, \"dst\", \"$1\", \"src\", \"(.*)\") * 0x1F + z[1h30m:1m] + ${var} + $job";
        assert_eq!(names(expr), ["x_bucket", "y", "z"]);
    }

    #[test]
    fn selectors_come_with_their_matchers() {
        let found = selectors(r#"sum by (job) (rate(a_total{job="x, y"}[5m])) / on (job) b + {__name__="c"}"#);
        let pairs: Vec<(Option<&str>, &str)> =
            found.iter().map(|selector| (selector.name.as_deref(), selector.matchers.as_str())).collect();
        assert_eq!(pairs, [(Some("a_total"), r#"job="x, y""#), (Some("b"), ""), (Some("c"), r#"__name__="c""#)]);
    }

    #[test]
    fn reads_name_matchers_and_aggregations_with_trailing_grouping() {
        assert_eq!(names(r#"{__name__="a_total", job="x"} + sum(b) without (instance) + vector(1)"#), ["a_total", "b"]);
        assert_eq!(names(r#"absent(up{job="backend"})"#), ["up"]);
    }
}
