//! Quality heuristics over a whole diff: oversized new functions, added
//! TODO/FIXME markers, and source changes that come without a test change.

use std::sync::LazyLock;

use regex::Regex;

use crate::diff::FileDiff;
use crate::patterns::Lang;

/// A function longer than this many added lines is reported.
pub const MAX_FUNCTION_LINES: usize = 80;
/// Source changes smaller than this need no test change.
pub const MIN_LINES_NEEDING_TESTS: usize = 20;

static FUNCTION_START: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // constant
    Regex::new(concat!(
        r"^\s*(?:",
        r"(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:const\s+)?fn\s+\w+", // Rust
        r"|(?:async\s+)?def\s+\w+",                                                   // Python
        r"|(?:export\s+)?(?:default\s+)?(?:async\s+)?function\b\*?\s*\w*",            // JavaScript
        r"|func\s+(?:\([^)]*\)\s*)?\w+",                                              // Go
        r"|(?:(?:public|private|protected|static|final|synchronized|abstract)\s+)+[\w<>\[\],\s]+\s+\w+\s*\([^;]*$", // Java
        r")"
    ))
    .unwrap()
});

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // constant
    Regex::new(r"(?:#|//|/\*|\*|--|<!--)\s*(?:\w+\s*)?\b(TODO|FIXME|XXX|HACK)\b").unwrap()
});

/// A quality problem at one added line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityIssue {
    pub rule: &'static str,
    pub file: String,
    pub line: u32,
    pub message: String,
}

pub fn analyze(files: &[FileDiff]) -> Vec<QualityIssue> {
    let mut issues = Vec::new();
    for file in files.iter().filter(|f| !f.deleted && !f.binary) {
        for &(line, ref text) in &file.added {
            if let Some(marker) = MARKER.captures(text).and_then(|c| c.get(1)) {
                issues.push(QualityIssue {
                    rule: "todo-added",
                    file: file.path.clone(),
                    line,
                    message: format!("A `{}` marker is added: unfinished work merges with it.", marker.as_str()),
                });
            }
        }
        issues.extend(oversized_functions(file));
    }
    issues.extend(missing_tests(files));
    issues
}

/// New functions whose added body runs past [`MAX_FUNCTION_LINES`]. A
/// function ends where the next one starts at the same or a lower indent,
/// or where the run of consecutive added lines ends.
fn oversized_functions(file: &FileDiff) -> Vec<QualityIssue> {
    let mut issues = Vec::new();
    let added = &file.added;
    let mut index = 0;
    while index < added.len() {
        let (start_line, text) = (&added[index].0, &added[index].1);
        if !FUNCTION_START.is_match(text) {
            index += 1;
            continue;
        }
        let indent = indentation(text);
        let mut end = index + 1;
        while end < added.len()
            && added[end].0 == added[end - 1].0 + 1
            && !(FUNCTION_START.is_match(&added[end].1) && indentation(&added[end].1) <= indent)
        {
            end += 1;
        }
        let length = end - index;
        if length > MAX_FUNCTION_LINES {
            let name = text.trim().chars().take(60).collect::<String>();
            issues.push(QualityIssue {
                rule: "oversized-function",
                file: file.path.clone(),
                line: *start_line,
                message: format!(
                    "`{name}` adds {length} lines in one function (limit {MAX_FUNCTION_LINES}); split it into named steps."
                ),
            });
        }
        index = end;
    }
    issues
}

fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn is_source(path: &str) -> bool {
    !matches!(Lang::of(path), Lang::Other | Lang::Shell)
}

fn is_test(file: &FileDiff) -> bool {
    let path = file.path.to_ascii_lowercase();
    let name = path.rsplit('/').next().unwrap_or(&path);
    path.split('/').any(|part| matches!(part, "test" | "tests" | "spec" | "specs" | "__tests__" | "testdata"))
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("test.java")
        || name.ends_with("tests.java")
        || file.added.iter().any(|(_, line)| line.contains("#[test]") || line.contains("#[tokio::test]"))
}

/// One finding, on the largest source change, when source files gain
/// [`MIN_LINES_NEEDING_TESTS`] lines or more and no test file changes.
fn missing_tests(files: &[FileDiff]) -> Option<QualityIssue> {
    if files.iter().any(is_test) {
        return None;
    }
    let sources: Vec<&FileDiff> = files.iter().filter(|f| !f.deleted && is_source(&f.path)).collect();
    let total: usize = sources.iter().map(|f| f.added.len()).sum();
    if total < MIN_LINES_NEEDING_TESTS {
        return None;
    }
    let largest = sources.iter().max_by_key(|f| f.added.len())?;
    let line = largest.added.first()?.0;
    Some(QualityIssue {
        rule: "missing-tests",
        file: largest.path.clone(),
        line,
        message: format!("{total} lines of source change across {} file(s) with no test change.", sources.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, lines: &[&str]) -> FileDiff {
        let added: Vec<(u32, String)> =
            lines.iter().enumerate().map(|(i, l)| (i as u32 + 1, (*l).to_owned())).collect();
        FileDiff { path: path.into(), visible: added.iter().map(|(n, _)| *n).collect(), added, ..FileDiff::default() }
    }

    #[test]
    fn markers_long_functions_and_untested_changes_are_reported() {
        let mut body = vec!["def handle(event):"];
        body.extend(std::iter::repeat_n("    step()", 90));
        body.push("def small():");
        body.push("    pass  # TODO: implement");
        let issues = analyze(&[file("app/handler.py", &body)]);
        let rules: Vec<(&str, u32)> = issues.iter().map(|i| (i.rule, i.line)).collect();
        assert_eq!(rules, [("todo-added", 93), ("oversized-function", 1), ("missing-tests", 1)]);
        assert!(issues[1].message.contains("91 lines"), "{}", issues[1].message);
    }

    #[test]
    fn a_test_change_or_a_small_change_needs_no_test_finding() {
        let source = file("src/lib.rs", &["pub fn a() {}"; 30]);
        assert!(analyze(&[source.clone(), file("tests/api.rs", &["fn t() {}"])]).is_empty());
        assert!(analyze(&[file("src/lib.rs", &["pub fn a() {}"; 5])]).is_empty());
        assert!(analyze(&[file("README.md", &["text"; 50])]).is_empty(), "docs need no tests");
        let inline = file("src/lib.rs", &["#[test]", "fn works() {}"].repeat(15));
        assert!(analyze(&[inline]).is_empty());
        assert!(analyze(&[file("a.rs", &["let todo_list = vec![];"])]).is_empty(), "identifiers are not markers");
    }
}
