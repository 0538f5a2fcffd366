//! Free-text task fields: bounded, trimmed, free of control characters.

use super::violations::Violations;

/// The longest title, in characters after trimming.
pub const TITLE_MAX_CHARS: usize = 200;
/// The longest description, in characters after trimming.
pub const DESCRIPTION_MAX_CHARS: usize = 10_000;
/// The most labels one task may carry.
pub const LABELS_MAX: usize = 20;
/// The longest label, in characters after trimming.
pub const LABEL_MAX_CHARS: usize = 50;

/// A task's title: 1 to [`TITLE_MAX_CHARS`] characters after trimming, single line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Trims `raw` and checks it; the violation names `title`.
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Violations::single("title", "must not be empty"));
        }
        if trimmed.chars().count() > TITLE_MAX_CHARS {
            return Err(Violations::single("title", format!("must be at most {TITLE_MAX_CHARS} characters")));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Violations::single("title", "must not contain control characters or line breaks"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's optional description: up to [`DESCRIPTION_MAX_CHARS`] characters; line breaks and tabs allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// An all-blank description means "no description".
    pub fn parse(raw: &str) -> Result<Option<Self>, Violations> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(Violations::single(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
        if trimmed.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Violations::single("description", "must not contain control characters"));
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    /// The description, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's labels: at most [`LABELS_MAX`], each 1 to [`LABEL_MAX_CHARS`] characters, no duplicates, in the
/// order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels(Vec<String>);

impl Labels {
    /// Trims and checks every label, naming each bad one by index (`labels[3]`); duplicates after trimming are
    /// refused.
    pub fn parse(raw: &[String]) -> Result<Self, Violations> {
        let mut collector = super::violations::Collector::new();
        if raw.len() > LABELS_MAX {
            collector.add("labels", format!("must contain at most {LABELS_MAX} labels"));
        }
        let mut labels: Vec<String> = Vec::with_capacity(raw.len());
        for (index, label) in raw.iter().enumerate() {
            let field = format!("labels[{index}]");
            let trimmed = label.trim();
            if trimmed.is_empty() {
                collector.add(field, "must not be empty");
            } else if trimmed.chars().count() > LABEL_MAX_CHARS {
                collector.add(field, format!("must be at most {LABEL_MAX_CHARS} characters"));
            } else if trimmed.chars().any(char::is_control) {
                collector.add(field, "must not contain control characters");
            } else if labels.iter().any(|seen| seen == trimmed) {
                collector.add(field, format!("duplicate label `{trimmed}`"));
            } else {
                labels.push(trimmed.to_owned());
            }
        }
        collector.finish(|| Some(Self(labels)))
    }

    /// The labels, trimmed, in the order given.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// An owned copy of the labels, for unvalidated input and the wire.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Buy milk ").map(|t| t.as_str().to_owned()), Ok("Buy milk".to_owned()));
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"x".repeat(TITLE_MAX_CHARS)).is_ok());
        assert!(Title::parse(&"x".repeat(TITLE_MAX_CHARS + 1)).is_err());
        assert!(Title::parse("two\nlines").is_err());
    }

    #[test]
    fn blank_description_is_none() {
        assert_eq!(Description::parse("  \n "), Ok(None));
        assert!(Description::parse("line one\nline two").is_ok_and(|d| d.is_some()));
        assert!(Description::parse("bell\u{7}").is_err());
    }

    #[test]
    fn labels_report_each_bad_entry_by_index() {
        let raw = vec!["home".to_owned(), " ".to_owned(), "home".to_owned(), "y".repeat(LABEL_MAX_CHARS + 1)];
        let violations = Labels::parse(&raw).expect_err("invalid labels");
        assert!(violations.mentions("labels[1]"));
        assert!(violations.mentions("labels[2]"));
        assert!(violations.mentions("labels[3]"));
        assert!(!violations.mentions("labels[0]"));
    }

    #[test]
    fn too_many_labels_is_rejected() {
        let raw: Vec<String> = (0..=LABELS_MAX).map(|i| format!("l{i}")).collect();
        assert!(Labels::parse(&raw).expect_err("too many").mentions("labels"));
    }
}
