//! One pass of every analyser over a diff, into ranked findings and scores.

use devops_models::{Finding, FindingCategory, Scores, Severity};

use crate::diff::{self, DiffError, FileDiff};
use crate::patterns::{self, Lang};
use crate::quality;
use crate::secrets::SecretScanner;

const SECRET_SUGGESTION: &str = "Revoke this credential with its issuer now (it is in the repository history), \
     remove it from the change, and load it at run time from a secret store or an environment variable.";

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Most important first.
    pub findings: Vec<Finding>,
    pub scores: Scores,
    pub files: usize,
    pub added_lines: usize,
}

/// The analysers of this build, configured once.
#[derive(Clone, Default)]
pub struct Analyzer {
    pub secrets: SecretScanner,
}

impl Analyzer {
    pub fn analyze(&self, diff_text: &str) -> Result<Analysis, DiffError> {
        let files = diff::parse(diff_text)?;
        Ok(self.analyze_files(&files))
    }

    pub fn analyze_files(&self, files: &[FileDiff]) -> Analysis {
        let mut findings = Vec::new();
        let mut added_lines = 0;
        for file in files.iter().filter(|f| !f.deleted && !f.binary) {
            let lang = Lang::of(&file.path);
            added_lines += file.added.len();
            for (line, text) in &file.added {
                findings.extend(self.secret_findings(&file.path, *line, text));
                for rule in patterns::scan_line(lang, text) {
                    findings.push(Finding {
                        file: file.path.clone(),
                        line: *line,
                        severity: rule.severity,
                        category: FindingCategory::Security,
                        rule: rule.id.into(),
                        message: rule.message.into(),
                        suggestion: rule.suggestion.into(),
                        confidence: rule.confidence,
                        fingerprint: Finding::fingerprint_of(rule.id, &file.path, text),
                    });
                }
            }
        }
        for issue in quality::analyze(files) {
            let (severity, confidence, suggestion) = match issue.rule {
                "todo-added" => (Severity::Info, 0.9, "Finish the work, or track it in an issue and link it here."),
                "oversized-function" => {
                    (Severity::Low, 0.8, "Extract the steps into functions named for what they do.")
                }
                _ => (Severity::Low, 0.6, "Add or update tests that exercise the changed behaviour."),
            };
            let content = files
                .iter()
                .find(|f| f.path == issue.file)
                .and_then(|f| f.added.iter().find(|(n, _)| *n == issue.line))
                .map_or("", |(_, text)| text.as_str());
            findings.push(Finding {
                fingerprint: Finding::fingerprint_of(issue.rule, &issue.file, content),
                file: issue.file,
                line: issue.line,
                severity,
                category: FindingCategory::Quality,
                rule: issue.rule.into(),
                message: issue.message,
                suggestion: suggestion.into(),
                confidence,
            });
        }
        Finding::rank(&mut findings);
        let scores = Scores::of(&findings);
        Analysis { findings, scores, files: files.len(), added_lines }
    }

    fn secret_findings(&self, path: &str, line: u32, text: &str) -> Vec<Finding> {
        let matches = self.secrets.scan_line(path, text);
        if matches.is_empty() {
            return Vec::new();
        }
        // The fingerprint hashes the line with every value masked, so no
        // digest of a secret is ever stored.
        let mut masked = text.to_owned();
        for m in matches.iter().rev() {
            masked.replace_range(m.start..m.end, &m.redacted);
        }
        matches
            .iter()
            .map(|m| Finding {
                file: path.to_owned(),
                line,
                severity: m.severity,
                category: FindingCategory::Secret,
                rule: m.rule.into(),
                message: format!("{} added to the repository: `{}`.", capitalized(m.name), m.redacted),
                suggestion: SECRET_SUGGESTION.into(),
                confidence: m.confidence,
                fingerprint: Finding::fingerprint_of(m.rule, path, &masked),
            })
            .collect()
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/app/db.py b/app/db.py
--- a/app/db.py
+++ b/app/db.py
@@ -1,3 +1,5 @@
 import os
+AWS_ACCESS_KEY_ID = \"AKIAQ3EGUVWXF4ZN7KPD\"
+rows = cursor.execute(\"SELECT * FROM users WHERE name = '\" + name + \"'\")
 
 def connect():
";

    #[test]
    fn findings_are_ranked_redacted_and_on_added_lines() {
        let analysis = Analyzer::default().analyze(DIFF).expect("analyze");
        let found: Vec<(&str, u32, Severity)> =
            analysis.findings.iter().map(|f| (f.rule.as_str(), f.line, f.severity)).collect();
        assert_eq!(found, [("aws-access-key-id", 2, Severity::Critical), ("sql-string-building", 3, Severity::High)]);
        let secret = &analysis.findings[0];
        assert!(!secret.message.contains("AKIAQ3EGUVWXF4ZN7KPD") && secret.message.contains("AKIA…"));
        assert_eq!(analysis.scores.security, 41.0, "100 - 40 × 0.97 - 25 × 0.8");
        assert_eq!(analysis.scores.quality, 100.0);
        assert_eq!((analysis.files, analysis.added_lines), (1, 2));
    }

    #[test]
    fn fingerprints_follow_the_masked_line_not_its_number() {
        let analyzer = Analyzer::default();
        let moved = DIFF.replace("@@ -1,3 +1,5 @@", "@@ -11,3 +11,5 @@");
        let a = analyzer.analyze(DIFF).expect("a");
        let b = analyzer.analyze(&moved).expect("b");
        assert_eq!(b.findings[0].line, 12);
        assert_eq!(a.findings[0].fingerprint, b.findings[0].fingerprint);
        let other = analyzer.analyze(&DIFF.replace("AKIAQ3EGUVWXF4ZN7KPD", "AKIAZ7RT2MWQ5XN3BV6L")).expect("c");
        assert_eq!(other.findings[0].rule, "aws-access-key-id");
        // Same rule, same redaction: the masked line is the same, so is the fingerprint.
        assert_eq!(a.findings[0].fingerprint, other.findings[0].fingerprint);
    }
}
