//! Line-level helpers for editing YAML-like text in place: comments, blank lines and formatting outside the
//! inserted lines stay byte-for-byte as they were.

/// A file as lines, rejoined exactly (a trailing newline stays a trailing newline).
#[derive(Debug, Clone)]
pub struct Lines(Vec<String>);

impl Lines {
    pub fn new(text: &str) -> Self {
        Self(text.split('\n').map(str::to_owned).collect())
    }

    pub fn get(&self, index: usize) -> &str {
        self.0.get(index).map_or("", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Inserts `new` so that its first line becomes line `at`.
    pub fn insert(&mut self, at: usize, new: impl IntoIterator<Item = String>) {
        let tail = self.0.split_off(at);
        self.0.extend(new);
        self.0.extend(tail);
    }

    pub fn replace(&mut self, at: usize, line: String) {
        self.0[at] = line;
    }

    /// The first line in `from..to` for which `predicate` holds.
    pub fn find(&self, from: usize, to: usize, predicate: impl Fn(&str) -> bool) -> Option<usize> {
        (from..to.min(self.len())).find(|&index| predicate(self.get(index)))
    }

    /// One past the last line of the block that `header` opens: the following lines indented deeper than it
    /// (blank lines inside count; blank lines after it do not).
    pub fn block_end(&self, header: usize) -> usize {
        let depth = indent(self.get(header));
        let mut last = header;
        for index in header + 1..self.len() {
            let line = self.get(index);
            if line.trim().is_empty() {
                continue;
            }
            if indent(line) <= depth {
                break;
            }
            last = index;
        }
        last + 1
    }

    /// The keys of the mapping that `header` opens, as `(line, key)`: its direct children `key:` with nothing after
    /// the colon (nested mappings such as services), skipping comments.
    pub fn child_mappings(&self, header: usize) -> Vec<(usize, String)> {
        let end = self.block_end(header);
        let depth = (header + 1..end)
            .map(|index| self.get(index))
            .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map_or(0, indent);
        (header + 1..end)
            .filter(|&index| indent(self.get(index)) == depth)
            .filter_map(|index| {
                let key = self.get(index).trim().strip_suffix(':')?;
                let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                plain.then(|| (index, key.to_owned()))
            })
            .collect()
    }

    /// The line of the top-level key `key:` (column 0).
    pub fn top_level(&self, key: &str) -> Option<usize> {
        self.find(0, self.len(), |line| line.strip_prefix(key).is_some_and(|rest| rest.trim_end() == ":"))
    }

    pub fn into_text(self) -> String {
        self.0.join("\n")
    }
}

/// Leading spaces of `line`.
pub fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a:\n  # note\n  b:\n    x: 1\n\n    y: 2\n\n  c:\n    z: 3\n# end\nd: 4\n";

    #[test]
    fn blocks_end_before_the_next_sibling_and_trailing_blank_lines() {
        let lines = Lines::new(TEXT);
        assert_eq!(lines.block_end(2), 6);
        assert_eq!(lines.block_end(0), 9);
        assert_eq!(lines.child_mappings(0), vec![(2, "b".to_owned()), (7, "c".to_owned())]);
        assert_eq!(lines.top_level("d"), None, "only keys opening a block");
        assert_eq!(lines.top_level("a"), Some(0));
    }

    #[test]
    fn insertions_keep_everything_else() {
        let mut lines = Lines::new(TEXT);
        lines.insert(9, ["  e:".to_owned()]);
        assert_eq!(lines.into_text(), TEXT.replace("# end", "  e:\n# end"));
    }
}
