//! Reading a Prometheus text exposition (a service's `/metrics`), the way an operator's queries would: by
//! metric name and label values. One parser for every test in the workspace, so a fix (label values holding
//! braces, say) reaches all of them.
/// The samples of `metric` in a Prometheus text exposition whose label set contains every `label="value"`
/// pair in `labels`, as their values.
pub fn metric_samples(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (label_set, value) = match rest.strip_prefix('{') {
                // The last brace: label values may hold braces themselves (route templates like `/v1/tasks/{id}`).
                Some(labelled) => labelled.rsplit_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let pairs = label_pairs(label_set)?;
            let matches = labels
                .iter()
                .all(|(name, expected)| pairs.iter().any(|(label, value)| label == name && value == expected));
            let value = value.split_whitespace().next()?.parse().ok()?;
            matches.then_some(value)
        })
        .collect()
}

/// The `name="value"` pairs of a rendered label set (`a="1",b="x\"y"`), values unescaped; `None` when it is not
/// one. Names are compared whole, so `topic` never matches `x_topic`.
fn label_pairs(label_set: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = label_set.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (index, '"') => break index,
                (_, other) => value.push(other),
            }
        };
        pairs.push((name.trim().to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',').trim_start();
    }
    Some(pairs)
}

/// The sum over the matching samples of `metric` (see [`metric_samples`]); `None` when there are none.
pub fn metric_sum(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let samples = metric_samples(exposition, metric, labels);
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// The first matching sample of `metric` (see [`metric_samples`]), for series that exist once per label set.
pub fn metric_value(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(exposition, metric, labels).into_iter().next()
}

/// The value of the sample whose series is exactly `series` (name and label set as rendered, e.g.
/// `events_total{outcome="applied"}`), if present.
pub fn series_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"1\",b=\"3\"} 4\nx_total 9\nx 1\n";

    #[test]
    fn selects_by_name_and_labels() {
        assert_eq!(metric_samples(EXPOSITION, "x", &[("a", "1")]), vec![3.0, 4.0]);
        assert_eq!(metric_samples(EXPOSITION, "x", &[]), vec![3.0, 4.0, 1.0]);
        assert_eq!(metric_samples(EXPOSITION, "x", &[("b", "3")]), vec![4.0]);
        assert_eq!(metric_sum(EXPOSITION, "x_total", &[]), Some(9.0));
        assert_eq!(metric_sum(EXPOSITION, "y", &[]), None);
    }

    #[test]
    fn label_names_match_whole_and_values_unescape() {
        let exposition = "m{x_topic=\"a\",topic=\"b\"} 1\nm{route=\"/v1/{id}\",q=\"say \\\"hi\\\"\"} 2\n";
        assert_eq!(metric_samples(exposition, "m", &[("topic", "a")]), Vec::<f64>::new());
        assert_eq!(metric_samples(exposition, "m", &[("topic", "b")]), vec![1.0]);
        assert_eq!(metric_samples(exposition, "m", &[("route", "/v1/{id}"), ("q", "say \"hi\"")]), vec![2.0]);
    }

    #[test]
    fn the_first_sample_or_the_exact_series() {
        assert_eq!(metric_value(EXPOSITION, "x", &[("a", "1")]), Some(3.0));
        assert_eq!(metric_value(EXPOSITION, "y", &[]), None);
        assert_eq!(series_value(EXPOSITION, "x{a=\"1\",b=\"3\"}"), Some(4.0));
        // Exact: a label subset, or a name that is only a prefix, is another series.
        assert_eq!(series_value(EXPOSITION, "x{a=\"1\"}"), None);
        assert_eq!(series_value(EXPOSITION, "x_tot"), None);
    }

    #[test]
    fn label_values_may_contain_braces() {
        let exposition = "r_count{http_route=\"/v1/tasks/{id}\",code=\"200\"} 5\n";
        assert_eq!(
            metric_samples(exposition, "r_count", &[("http_route", "/v1/tasks/{id}"), ("code", "200")]),
            vec![5.0]
        );
    }
}
