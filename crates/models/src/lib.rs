//! The domain of DevOps MCP (design.md §4), free of any transport or storage
//! concern. A type lives here once a second crate needs it.

pub mod api_key;
pub mod audit;
pub mod context;
pub mod event;
pub mod issue;
pub mod pull_request;
pub mod repository;
pub mod review;
pub mod sanitize;
pub mod tenant;

pub use api_key::{ApiKey, ApiKeySecret, NewApiKey, ParsedApiKey, Principal, Scope};
pub use audit::{AuditEntry, AuditOutcome, NewAuditEntry, TimedAuditEntry};
pub use context::{AppendOutcome, Context, ContextItem, ContextUpdate, NewContext, NewContextItem, Role, TrimPolicy};
pub use event::{EventEnvelope, TraceContext};
pub use issue::{Issue, IssueComment, IssueState, IssueUpdate, NewIssue};
pub use pull_request::{
    ChangeSet, FileChange, FileChangeKind, MergeMethod, MergeOutcome, NewComment, NewPullRequest, PullRequest,
    PullRequestComment, PullRequestState, PullRequestUpdate, Review, ReviewStatus,
};
pub use repository::{CodeHit, CodeQuery, IndexRecord, IndexState, NewCodeChunk, Repository, SearchMode};
pub use review::{Finding, FindingCategory, Scores, Severity};
pub use tenant::{Tenant, TenantId};
