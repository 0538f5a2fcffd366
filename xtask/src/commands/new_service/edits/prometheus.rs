//! `monitoring/prometheus/prometheus.yml`: a scrape job at the native stack's address.

use super::text::Lines;
use super::{EditError, Spec, scrape};

pub fn add_scrape_job(text: &str, spec: &Spec) -> Result<String, EditError> {
    let target = format!("127.0.0.1:{}", spec.port);
    let mut lines = Lines::new(text);
    let scrape_configs = lines
        .top_level("scrape_configs")
        .ok_or_else(|| EditError::Anchor("`scrape_configs:` in prometheus.yml".into()))?;
    scrape::insert_job(&mut lines, scrape_configs, spec, &target)?;
    let edited = lines.into_text();
    scrape::verify_job(&serde_norway::from_str(&edited)?, spec, &target)?;
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_job_follows_the_last_service_job_in_the_real_file() {
        let original = repo_file("monitoring/prometheus/prometheus.yml");
        let edited = add_scrape_job(&original, &spec()).unwrap();
        let config: serde_norway::Value = serde_norway::from_str(&edited).unwrap();
        let names: Vec<&str> =
            config["scrape_configs"].as_sequence().unwrap().iter().filter_map(|job| job["job_name"].as_str()).collect();
        let ours = names.iter().position(|name| *name == "event-archive").unwrap();
        assert_eq!(names[ours - 1], "notification", "{names:?}");
        assert_eq!(config["scrape_configs"][ours]["static_configs"][0]["targets"][0].as_str(), Some("127.0.0.1:8085"));
        assert_eq!(edited.lines().count(), original.lines().count() + 4, "only the job was added");
        assert!(matches!(add_scrape_job(&edited, &spec()), Err(EditError::Exists(_))));
    }
}
