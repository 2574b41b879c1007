//! Provider-agnostic pull requests, the change sets that open them, their
//! comments, and the reviews posted on them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Finding, Scores, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestState {
    Open,
    Closed,
    Merged,
}

impl PullRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            PullRequestState::Open => "open",
            PullRequestState::Closed => "closed",
            PullRequestState::Merged => "merged",
        }
    }
}

impl fmt::Display for PullRequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PullRequestState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(PullRequestState::Open),
            "closed" => Ok(PullRequestState::Closed),
            "merged" => Ok(PullRequestState::Merged),
            other => Err(format!("unknown pull request state {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// The repository's canonical URL, as registered.
    pub repository_url: String,
    /// Per repository, from 1.
    pub number: u64,
    /// `local`, `github`, `gitlab`, …
    pub provider: String,
    pub title: String,
    pub body: String,
    pub source_branch: String,
    pub target_branch: String,
    /// The target's commit the change was made on.
    pub base_sha: String,
    /// The source branch's commit when last seen.
    pub head_sha: String,
    pub state: PullRequestState,
    pub merge_commit: Option<String>,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    pub repository_url: String,
    pub provider: String,
    pub title: String,
    pub body: String,
    pub source_branch: String,
    pub target_branch: String,
    pub base_sha: String,
    pub head_sha: String,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestUpdate {
    pub title: Option<String>,
    pub body: Option<String>,
    pub state: Option<PullRequestState>,
    pub head_sha: Option<String>,
    pub merge_commit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileChangeKind {
    Add,
    Modify,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub kind: FileChangeKind,
    pub path: String,
    /// Empty for a deletion.
    pub content: Vec<u8>,
}

/// What an agent wants changed: files, on top of a base ref, with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// Branch, tag or commit; empty for the default branch.
    pub base_ref: String,
    pub message: String,
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MergeOutcome {
    pub merged: bool,
    pub merge_commit: Option<String>,
    /// Paths that conflict, when `merged` is false.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PullRequestComment {
    pub id: Uuid,
    pub pull_request_id: Uuid,
    pub body: String,
    /// An inline comment's file and line in the new revision.
    pub path: Option<String>,
    pub line: Option<u32>,
    /// The finding an automated comment reports.
    pub fingerprint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub body: String,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Analysed, not posted.
    Computed,
    Posted,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Computed => "computed",
            ReviewStatus::Posted => "posted",
        }
    }
}

impl FromStr for ReviewStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "computed" => Ok(ReviewStatus::Computed),
            "posted" => Ok(ReviewStatus::Posted),
            other => Err(format!("unknown review status {other:?}")),
        }
    }
}

/// One analysis of one revision of a pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub repository_url: String,
    pub number: u64,
    /// The revision analysed.
    pub head_sha: String,
    pub findings: Vec<Finding>,
    pub scores: Scores,
    pub status: ReviewStatus,
    /// The provider's id of the summary comment, edited by later reviews.
    pub summary_comment_id: Option<String>,
    /// Fingerprints of the findings posted inline so far on this pull
    /// request, this review's and earlier ones': never posted twice.
    pub posted_fingerprints: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
