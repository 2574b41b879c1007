//! Unified diffs (`git diff`, provider patch files) parsed into what the
//! analysers read: per file, the added lines with their new line numbers,
//! and which new lines the diff shows at all (only those take comments).

use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDiff {
    /// The path in the new revision (the old one for a deletion).
    pub path: String,
    pub deleted: bool,
    pub binary: bool,
    /// Added lines: (new line number, text without the leading `+`).
    pub added: Vec<(u32, String)>,
    /// Every new-side line inside a hunk: added and context lines.
    pub visible: BTreeSet<u32>,
}

impl FileDiff {
    /// Whether a review comment may sit on `line`.
    pub fn shows(&self, line: u32) -> bool {
        self.visible.contains(&line)
    }
}

/// Parses a unified diff of any number of files.
pub fn parse(text: &str) -> Result<Vec<FileDiff>, DiffError> {
    let mut files: Vec<FileDiff> = Vec::new();
    // Lines of the current hunk still expected: (old, new).
    let mut remaining = (0u32, 0u32);
    let mut new_line = 0u32;
    // Whether the last file already had a hunk: a plain patch (no `diff --git`)
    // starts its next file at the next `---`.
    let mut had_hunk = false;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let malformed = |message: &str| DiffError::Malformed { line: number, message: message.into() };
        if remaining != (0, 0) {
            let current = files.last_mut().ok_or_else(|| malformed("hunk outside a file"))?;
            match raw.as_bytes().first() {
                Some(b'+') => {
                    current.added.push((new_line, raw[1..].to_owned()));
                    current.visible.insert(new_line);
                    new_line += 1;
                    remaining.1 = remaining.1.checked_sub(1).ok_or_else(|| malformed("hunk longer than its header"))?;
                }
                Some(b'-') => {
                    remaining.0 = remaining.0.checked_sub(1).ok_or_else(|| malformed("hunk longer than its header"))?;
                }
                Some(b' ') | None => {
                    current.visible.insert(new_line);
                    new_line += 1;
                    remaining.0 = remaining.0.checked_sub(1).ok_or_else(|| malformed("hunk longer than its header"))?;
                    remaining.1 = remaining.1.checked_sub(1).ok_or_else(|| malformed("hunk longer than its header"))?;
                }
                Some(b'\\') => {} // "\ No newline at end of file"
                _ => return Err(malformed("hunk shorter than its header")),
            }
            continue;
        }
        if let Some(rest) = raw.strip_prefix("diff --git ") {
            files.push(FileDiff { path: git_header_path(rest).unwrap_or_default(), ..FileDiff::default() });
            had_hunk = false;
        } else if let Some(rest) = raw.strip_prefix("--- ") {
            // A patch without `diff --git` lines starts a file here.
            if files.is_empty() || had_hunk {
                files.push(FileDiff::default());
                had_hunk = false;
            }
            let current = files.last_mut().ok_or_else(|| malformed("no file"))?;
            if current.path.is_empty() {
                current.path = strip_side(rest).unwrap_or_default();
            }
        } else if let Some(rest) = raw.strip_prefix("+++ ") {
            let current = files.last_mut().ok_or_else(|| malformed("`+++` before `---`"))?;
            match strip_side(rest) {
                Some(path) => current.path = path,
                None => current.deleted = true,
            }
        } else if raw.starts_with("deleted file mode") {
            if let Some(current) = files.last_mut() {
                current.deleted = true;
            }
        } else if raw.starts_with("Binary files ") || raw == "GIT binary patch" {
            if let Some(current) = files.last_mut() {
                current.binary = true;
            }
        } else if raw.starts_with("@@") {
            let current = files.last_mut().ok_or_else(|| malformed("hunk before any file header"))?;
            let (old, new) = hunk_header(raw).ok_or_else(|| malformed("bad hunk header"))?;
            if current.path.is_empty() {
                return Err(malformed("hunk for a file without a name"));
            }
            new_line = new.0;
            remaining = (old.1, new.1);
            had_hunk = true;
        }
        // Anything else (index, mode, similarity lines, commit messages) is metadata.
    }
    if remaining != (0, 0) {
        return Err(DiffError::Malformed { line: text.lines().count(), message: "diff ends inside a hunk".into() });
    }
    Ok(files.into_iter().filter(|f| !f.path.is_empty()).collect())
}

/// `a/x b/x` → `x` (the new side). Paths with spaces are ambiguous here;
/// the `+++` line that follows settles them.
fn git_header_path(rest: &str) -> Option<String> {
    let b = rest.rfind(" b/")?;
    Some(rest[b + 3..].to_owned())
}

/// `a/path` or `b/path` → `path`; `/dev/null` → None.
fn strip_side(rest: &str) -> Option<String> {
    let path = rest.split('\t').next().unwrap_or(rest).trim_end();
    if path == "/dev/null" {
        return None;
    }
    let path = path.strip_prefix("a/").or_else(|| path.strip_prefix("b/")).unwrap_or(path);
    Some(path.trim_matches('"').to_owned())
}

/// `@@ -12,5 +14,7 @@ fn x()` → ((12, 5), (14, 7)); a missing count is 1.
fn hunk_header(raw: &str) -> Option<((u32, u32), (u32, u32))> {
    let inner = raw.strip_prefix("@@ ")?;
    let end = inner.find(" @@")?;
    let mut parts = inner[..end].split(' ');
    let range = |part: &str, sign: char| -> Option<(u32, u32)> {
        let part = part.strip_prefix(sign)?;
        match part.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((part.parse().ok()?, 1)),
        }
    };
    let old = range(parts.next()?, '-')?;
    let new = range(parts.next()?, '+')?;
    Some((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/db.py b/src/db.py
index 83db48f..bf269f4 100644
--- a/src/db.py
+++ b/src/db.py
@@ -10,4 +10,6 @@ def connect():
     conn = open_connection()
-    return conn
+    key = \"value\"
+    return conn
+
 
 def close():
@@ -40 +42 @@ def other():
-x = 1
+x = 2
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-gone
-too
diff --git a/img.png b/img.png
new file mode 100644
Binary files /dev/null and b/img.png differ
diff --git a/new.rs b/new.rs
new file mode 100644
--- /dev/null
+++ b/new.rs
@@ -0,0 +1,2 @@
+fn main() {}
+// end
\\ No newline at end of file
";

    #[test]
    fn parses_added_and_visible_lines_per_file() {
        let files = parse(DIFF).expect("parse");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/db.py", "old.txt", "img.png", "new.rs"]);
        let db = &files[0];
        assert_eq!(
            db.added,
            [
                (11, "    key = \"value\"".into()),
                (12, "    return conn".into()),
                (13, String::new()),
                (42, "x = 2".into())
            ]
        );
        assert!(db.shows(10) && db.shows(14) && db.shows(15) && db.shows(42));
        assert!(!db.shows(16) && !db.shows(41), "outside every hunk");
        assert!(files[1].deleted && files[1].added.is_empty());
        assert!(files[2].binary);
        assert_eq!(files[3].added.len(), 2);
    }

    #[test]
    fn plain_patches_without_git_headers_parse_too() {
        let files =
            parse("--- a/x.txt\n+++ b/x.txt\n@@ -1 +1,2 @@\n a\n+b\n--- a/y.txt\n+++ b/y.txt\n@@ -0,0 +1 @@\n+c\n")
                .expect("parse");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].added, [(2, "b".into())]);
        assert_eq!(files[1].path, "y.txt");
    }

    #[test]
    fn malformed_diffs_say_where() {
        assert!(matches!(parse("@@ -1 +1 @@\n+x\n"), Err(DiffError::Malformed { line: 1, .. })));
        let truncated = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n";
        assert!(matches!(parse(truncated), Err(DiffError::Malformed { .. })));
        assert!(matches!(parse("--- a/x\n+++ b/x\n@@ nonsense @@\n"), Err(DiffError::Malformed { line: 3, .. })));
        assert_eq!(parse("").expect("empty"), []);
    }
}
