//! Findings of the automated reviewer and the scores derived from them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How much a finding matters; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// What kind of problem a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingCategory {
    /// A credential committed to the repository.
    Secret,
    /// Code that is unsafe to run: injection, disabled TLS, weak crypto.
    Security,
    /// Maintainability: size, leftover markers, missing tests.
    Quality,
}

macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($ty), " {:?}"), other)),
                }
            }
        }
    };
}

string_enum!(Severity { Info => "info", Low => "low", Medium => "medium", High => "high", Critical => "critical" });
string_enum!(FindingCategory { Secret => "secret", Security => "security", Quality => "quality" });

/// One problem at one line of a change. Never holds a secret's value: the
/// analyser that found it redacts it before the finding exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// Path in the new revision.
    pub file: String,
    /// 1-based line in the new revision; always a line the diff shows.
    pub line: u32,
    pub severity: Severity,
    pub category: FindingCategory,
    /// Stable rule id, e.g. `aws-access-key-id`.
    pub rule: String,
    pub message: String,
    pub suggestion: String,
    /// 0.0–1.0: how sure the analyser is that this is a real problem.
    pub confidence: f32,
    /// Identifies the finding across pushes: rule, file and the hash of the
    /// line's content, not its number, so a finding that only moved keeps it.
    pub fingerprint: String,
}

impl Finding {
    /// The fingerprint of `rule` firing on a line with `content` in `file`.
    pub fn fingerprint_of(rule: &str, file: &str, content: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [rule, file, content.trim()] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..12])
    }

    /// Most important first: severity, then confidence, then position.
    pub fn rank(findings: &mut [Finding]) {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.confidence.total_cmp(&a.confidence))
                .then_with(|| a.file.cmp(&b.file))
                .then(a.line.cmp(&b.line))
        });
    }
}

/// 0–100 scores: 100 means nothing was found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scores {
    pub security: f64,
    pub quality: f64,
}

impl Scores {
    /// Each finding costs points by severity, weighted by confidence;
    /// secrets and security findings count against security, the rest
    /// against quality.
    pub fn of(findings: &[Finding]) -> Self {
        let mut security: f64 = 100.0;
        let mut quality: f64 = 100.0;
        for finding in findings {
            let confidence = f64::from(finding.confidence.clamp(0.0, 1.0));
            match finding.category {
                FindingCategory::Secret | FindingCategory::Security => {
                    let cost = match finding.severity {
                        Severity::Critical => 40.0,
                        Severity::High => 25.0,
                        Severity::Medium => 10.0,
                        Severity::Low => 3.0,
                        Severity::Info => 0.0,
                    };
                    security -= cost * confidence;
                }
                FindingCategory::Quality => {
                    let cost = match finding.severity {
                        Severity::Critical => 25.0,
                        Severity::High => 15.0,
                        Severity::Medium => 8.0,
                        Severity::Low => 3.0,
                        Severity::Info => 1.0,
                    };
                    quality -= cost * confidence;
                }
            }
        }
        Self { security: security.max(0.0).round(), quality: quality.max(0.0).round() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, category: FindingCategory, line: u32) -> Finding {
        Finding {
            file: "a.rs".into(),
            line,
            severity,
            category,
            rule: "r".into(),
            message: String::new(),
            suggestion: String::new(),
            confidence: 1.0,
            fingerprint: Finding::fingerprint_of("r", "a.rs", "x"),
        }
    }

    #[test]
    fn ranking_puts_the_worst_first_and_scores_fall_by_category() {
        let mut findings = vec![
            finding(Severity::Low, FindingCategory::Quality, 1),
            finding(Severity::Critical, FindingCategory::Secret, 9),
            finding(Severity::Medium, FindingCategory::Security, 3),
        ];
        Finding::rank(&mut findings);
        let order: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
        assert_eq!(order, [Severity::Critical, Severity::Medium, Severity::Low]);
        assert_eq!(Scores::of(&findings), Scores { security: 50.0, quality: 97.0 });
        assert_eq!(Scores::of(&[]), Scores { security: 100.0, quality: 100.0 });
    }

    #[test]
    fn fingerprints_ignore_line_numbers_and_indentation() {
        let a = Finding::fingerprint_of("r", "a.rs", "  let key = 1;");
        assert_eq!(a, Finding::fingerprint_of("r", "a.rs", "let key = 1;"));
        assert_ne!(a, Finding::fingerprint_of("r", "b.rs", "let key = 1;"));
        assert_eq!("critical".parse::<Severity>(), Ok(Severity::Critical));
        assert!("severe".parse::<Severity>().is_err());
    }
}
