//! Reviewing a pull request: fetch its diff from the host, analyse it,
//! store the review, and post it as one batch — a summary plus at most N
//! ranked inline comments on lines the diff shows. Fingerprints of what was
//! posted carry over to the next review of the same pull request, so a
//! re-review after a push edits the summary instead of repeating comments.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use devops_errors::{ErrorCode, HasErrorCode};
use devops_models::{Finding, Review, ReviewStatus, Severity, TenantId};
use devops_providers::{Hosts, InlineComment, ReviewPost};
use devops_store::PullRequestStore;
use uuid::Uuid;

use crate::analysis::Analyzer;
use crate::diff::{self, DiffError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Provider(#[from] devops_providers::Error),
    #[error(transparent)]
    Store(#[from] devops_store::Error),
    #[error("the pull request's diff cannot be read: {0}")]
    Diff(#[from] DiffError),
    #[error("the diff is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
}

impl HasErrorCode for ReviewError {
    fn code(&self) -> ErrorCode {
        match self {
            ReviewError::Provider(err) => err.code(),
            ReviewError::Store(err) => err.code(),
            ReviewError::Diff(_) => ErrorCode::Upstream,
            ReviewError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
        }
    }
}

/// Marks our summary comment, so people (and we) can tell it apart.
pub const SUMMARY_MARKER: &str = "<!-- devops-mcp:review -->";

#[derive(Clone)]
pub struct Reviews {
    pub analyzer: Analyzer,
    pub hosts: Hosts,
    pub store: Arc<dyn PullRequestStore>,
    pub max_inline_comments: usize,
    pub max_diff_bytes: usize,
    /// The optional LLM pass.
    pub llm: Option<crate::llm::LlmReviewer>,
}

impl Reviews {
    /// Analyses the pull request's current revision; posts when `post`.
    pub async fn review(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        post: bool,
    ) -> Result<Review, ReviewError> {
        let host = self.hosts.for_repository(tenant, repository_url).await?;
        let pr = host.get_pull_request(tenant, repository_url, number).await?;
        let diff_text = host.diff(tenant, repository_url, number).await?;
        if diff_text.len() > self.max_diff_bytes {
            return Err(ReviewError::TooLarge { size: diff_text.len(), limit: self.max_diff_bytes });
        }
        let files = diff::parse(&diff_text)?;
        let mut analysis = self.analyzer.analyze_files(&files);
        if let Some(llm) = &self.llm {
            analysis.findings.extend(llm.review(&diff_text, &files, &self.analyzer.secrets).await);
            Finding::rank(&mut analysis.findings);
            analysis.scores = devops_models::Scores::of(&analysis.findings);
        }
        let previous = self.store.latest_review(tenant, &pr.repository_url, number).await?;
        // Microseconds: what both stores keep, so a stored review reads back equal.
        let now = Utc::now().trunc_subsecs(6);
        let mut review = Review {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            repository_url: pr.repository_url.clone(),
            number,
            head_sha: pr.head_sha.clone(),
            findings: analysis.findings,
            scores: analysis.scores,
            status: ReviewStatus::Computed,
            summary_comment_id: previous.as_ref().and_then(|p| p.summary_comment_id.clone()),
            posted_fingerprints: previous.as_ref().map(|p| p.posted_fingerprints.clone()).unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.store.save_review(&review).await?;
        if !post {
            return Ok(review);
        }
        let already: BTreeSet<&str> = review.posted_fingerprints.iter().map(String::as_str).collect();
        let shown = |finding: &Finding| files.iter().any(|f| f.path == finding.file && f.shows(finding.line));
        // Ranked already: the first N new, commentable findings go inline.
        let inline: Vec<&Finding> = review
            .findings
            .iter()
            .filter(|f| shown(f) && !already.contains(f.fingerprint.as_str()))
            .take(self.max_inline_comments)
            .collect();
        let inline_prints: BTreeSet<&str> = inline.iter().map(|f| f.fingerprint.as_str()).collect();
        let post = ReviewPost {
            summary: summary(&review, &pr.head_sha, &inline_prints, &already),
            summary_comment_id: review.summary_comment_id.clone(),
            inline: inline
                .iter()
                .map(|f| InlineComment {
                    path: f.file.clone(),
                    line: f.line,
                    body: inline_body(f),
                    fingerprint: f.fingerprint.clone(),
                })
                .collect(),
        };
        let posted = host.post_review(tenant, repository_url, number, &post).await?;
        let mut fingerprints = review.posted_fingerprints.clone();
        fingerprints.extend(inline.iter().map(|f| f.fingerprint.clone()));
        fingerprints.sort();
        fingerprints.dedup();
        review.posted_fingerprints = fingerprints;
        review.summary_comment_id = Some(posted.summary_comment_id);
        review.status = ReviewStatus::Posted;
        review.updated_at = Utc::now().trunc_subsecs(6);
        self.store.save_review(&review).await?;
        Ok(review)
    }
}

fn inline_body(finding: &Finding) -> String {
    format!(
        "**{} · {}** ({})\n\n{}\n\n{}",
        finding.severity, finding.rule, finding.category, finding.message, finding.suggestion
    )
}

/// The summary: scores, counts, and every finding not commented inline now.
fn summary(review: &Review, head: &str, inline: &BTreeSet<&str>, earlier: &BTreeSet<&str>) -> String {
    let mut text = format!("{SUMMARY_MARKER}\n## DevOps MCP review of {}\n\n", &head[..head.len().min(12)]);
    let _ = writeln!(
        text,
        "Security **{:.0}**/100 · Quality **{:.0}**/100 · {} finding(s)",
        review.scores.security,
        review.scores.quality,
        review.findings.len()
    );
    let counts: Vec<String> = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info]
        .iter()
        .filter_map(|s| {
            let n = review.findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if !counts.is_empty() {
        let _ = writeln!(text, "\n{}", counts.join(" · "));
    }
    let rest: Vec<&Finding> = review.findings.iter().filter(|f| !inline.contains(f.fingerprint.as_str())).collect();
    if !rest.is_empty() {
        text.push_str("\n| severity | location | rule | finding |\n| --- | --- | --- | --- |\n");
        for finding in rest {
            let note = if earlier.contains(finding.fingerprint.as_str()) { " (commented earlier)" } else { "" };
            let _ = writeln!(
                text,
                "| {} | `{}:{}` | {} | {}{} |",
                finding.severity,
                finding.file,
                finding.line,
                finding.rule,
                finding.message.replace('|', "\\|").replace('\n', " "),
                note
            );
        }
    }
    if review.findings.is_empty() {
        text.push_str("\nNo problems found.\n");
    }
    text
}
