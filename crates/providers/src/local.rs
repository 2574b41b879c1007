//! The local-git host: repositories on this machine's disk (under the
//! operator's `indexer.allowed_local_paths`), pull requests as branches in
//! the repository plus records in the store.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use devops_git::{LocalRepository, MergeTree, RepoLocation, Signature, TreeEdit, UrlPolicy};
use devops_models::{
    ChangeSet, FileChangeKind, MergeMethod, MergeOutcome, NewComment, NewPullRequest, PullRequest, PullRequestComment,
    PullRequestState, PullRequestUpdate, TenantId,
};
use devops_store::{PullRequestStore, Store};
use uuid::Uuid;

use crate::{CloudProvider, Error, PostedReview, Result, ReviewPost};

pub struct LocalGitHost {
    prs: Arc<dyn PullRequestStore>,
    policy: Arc<UrlPolicy>,
    signature: Signature,
}

impl LocalGitHost {
    pub fn new(store: &dyn Store, policy: Arc<UrlPolicy>) -> Self {
        Self {
            prs: store.pull_requests(),
            policy,
            signature: Signature { name: "DevOps MCP".into(), email: "devops-mcp@localhost".into() },
        }
    }

    /// Whether `url` is one this host serves (a local path or `file://`).
    pub fn serves(url: &str) -> bool {
        url.starts_with('/') || url.starts_with("file://")
    }

    /// The canonical URL and the opened repository.
    async fn open(&self, url: &str) -> Result<(String, LocalRepository)> {
        let checked = self.policy.check(url).await?;
        let RepoLocation::Local { path } = &checked.location else {
            return Err(Error::Unsupported(format!("{url} is not a local repository")));
        };
        let path: PathBuf = path.clone();
        Ok((checked.url.clone(), LocalRepository::open(&path).await?))
    }

    async fn record(&self, tenant: TenantId, url: &str, number: u64) -> Result<(PullRequest, LocalRepository)> {
        let (canonical, repo) = self.open(url).await?;
        let mut pr = self.prs.get_pull_request(tenant, &canonical, number).await?;
        // The source branch may have moved since (a push to it).
        if pr.state == PullRequestState::Open
            && let Ok(head) = repo.resolve(&format!("refs/heads/{}", pr.source_branch)).await
            && head != pr.head_sha
        {
            let update = PullRequestUpdate { head_sha: Some(head), ..PullRequestUpdate::default() };
            pr = self.prs.update_pull_request(tenant, pr.id, &update).await?;
        }
        Ok((pr, repo))
    }

    fn edits(changes: &ChangeSet) -> Result<Vec<TreeEdit>> {
        crate::check_changes(changes)?;
        Ok(changes
            .files
            .iter()
            .map(|file| {
                let content = match file.kind {
                    FileChangeKind::Delete => None,
                    FileChangeKind::Add | FileChangeKind::Modify => Some(file.content.clone()),
                };
                TreeEdit { path: file.path.clone(), content }
            })
            .collect())
    }

    /// The commit that merges `pr` by `method`, or the conflicting paths.
    async fn merged_commit(
        &self,
        repo: &LocalRepository,
        pr: &PullRequest,
        target: &str,
        head: &str,
        method: MergeMethod,
    ) -> Result<Result<String, Vec<String>>> {
        match method {
            MergeMethod::Merge | MergeMethod::Squash => {
                let tree = match repo.merge_tree(target, head, None).await? {
                    MergeTree::Clean { tree } => tree,
                    MergeTree::Conflicts { paths } => return Ok(Err(paths)),
                };
                let (parents, message) = if method == MergeMethod::Merge {
                    (
                        vec![target, head],
                        format!("Merge pull request #{} from {}\n\n{}", pr.number, pr.source_branch, pr.title),
                    )
                } else {
                    (vec![target], format!("{} (#{})\n\n{}", pr.title, pr.number, pr.body))
                };
                Ok(Ok(repo.commit_tree(&tree, &parents, &message, &self.signature).await?))
            }
            MergeMethod::Rebase => {
                let base = repo.merge_base(target, head).await?;
                let mut tip = target.to_owned();
                for commit in repo.commits_between(&base, head).await? {
                    let parent = format!("{commit}^");
                    let tree = match repo.merge_tree(&tip, &commit, Some(&parent)).await? {
                        MergeTree::Clean { tree } => tree,
                        MergeTree::Conflicts { paths } => return Ok(Err(paths)),
                    };
                    let message = repo.commit_message(&commit).await?;
                    tip = repo.commit_tree(&tree, &[&tip], &message, &self.signature).await?;
                }
                Ok(Ok(tip))
            }
        }
    }
}

#[async_trait]
impl CloudProvider for LocalGitHost {
    fn provider(&self) -> &'static str {
        "local"
    }

    async fn create_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        title: &str,
        body: &str,
        changes: &ChangeSet,
    ) -> Result<PullRequest> {
        if title.trim().is_empty() || title.len() > 512 {
            return Err(Error::Invalid("a pull request title must be 1-512 bytes".into()));
        }
        let edits = Self::edits(changes)?;
        let (canonical, repo) = self.open(repository_url).await?;
        let target = if changes.base_ref.is_empty() { repo.default_branch().await? } else { changes.base_ref.clone() };
        devops_git::check_branch(&target)
            .map_err(|_| Error::Invalid(format!("base_ref {target:?} must be a branch")))?;
        let base_sha = repo
            .resolve(&format!("refs/heads/{target}"))
            .await
            .map_err(|_| Error::Invalid(format!("base_ref {target:?} is not a branch of the repository")))?;
        let message = if changes.message.trim().is_empty() { title } else { changes.message.as_str() };
        let head_sha = repo.commit_edits(&base_sha, &edits, message, &self.signature).await?;
        let source_branch = crate::branch_name(title);
        repo.create_branch(&source_branch, &head_sha).await?;
        let record = NewPullRequest {
            repository_url: canonical,
            provider: self.provider().into(),
            title: title.into(),
            body: body.into(),
            source_branch,
            target_branch: target,
            base_sha,
            head_sha,
        };
        Ok(self.prs.create_pull_request(tenant, &record).await?)
    }

    async fn get_pull_request(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<PullRequest> {
        Ok(self.record(tenant, repository_url, number).await?.0)
    }

    async fn list_pull_requests(
        &self,
        tenant: TenantId,
        repository_url: &str,
        state: Option<PullRequestState>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PullRequest>> {
        let canonical = self.policy.identity(repository_url).unwrap_or_else(|| repository_url.to_owned());
        Ok(self.prs.list_pull_requests(tenant, &canonical, state, before, limit).await?)
    }

    async fn update_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest> {
        let (pr, _) = self.record(tenant, repository_url, number).await?;
        if update.state == Some(PullRequestState::Merged) {
            return Err(Error::Invalid("merge a pull request with merge, not by setting its state".into()));
        }
        if pr.state == PullRequestState::Merged && update.state.is_some() {
            return Err(Error::Conflict(format!("pull request #{number} is merged")));
        }
        let allowed = PullRequestUpdate {
            title: update.title.clone(),
            body: update.body.clone(),
            state: update.state,
            ..PullRequestUpdate::default()
        };
        Ok(self.prs.update_pull_request(tenant, pr.id, &allowed).await?)
    }

    async fn merge_pull_request(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        method: MergeMethod,
    ) -> Result<MergeOutcome> {
        let (pr, repo) = self.record(tenant, repository_url, number).await?;
        if pr.state != PullRequestState::Open {
            return Err(Error::Conflict(format!("pull request #{number} is {}", pr.state)));
        }
        if repo.checked_out_branch().await?.as_deref() == Some(pr.target_branch.as_str()) {
            return Err(Error::Conflict(format!(
                "{} is checked out in the repository's work tree; merging would leave the work tree behind \
                 (check out another branch, or use a bare repository)",
                pr.target_branch
            )));
        }
        let target = repo.resolve(&format!("refs/heads/{}", pr.target_branch)).await?;
        let head = repo.resolve(&format!("refs/heads/{}", pr.source_branch)).await?;
        let commit = match self.merged_commit(&repo, &pr, &target, &head, method).await? {
            Ok(commit) => commit,
            Err(conflicts) => return Ok(MergeOutcome { merged: false, merge_commit: None, conflicts }),
        };
        repo.move_branch(&pr.target_branch, &commit, &target)
            .await
            .map_err(|_| Error::Conflict(format!("{} moved during the merge; try again", pr.target_branch)))?;
        let update = PullRequestUpdate {
            state: Some(PullRequestState::Merged),
            merge_commit: Some(commit.clone()),
            ..PullRequestUpdate::default()
        };
        self.prs.update_pull_request(tenant, pr.id, &update).await?;
        Ok(MergeOutcome { merged: true, merge_commit: Some(commit), conflicts: Vec::new() })
    }

    async fn comment(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        comment: &NewComment,
    ) -> Result<PullRequestComment> {
        let (pr, _) = self.record(tenant, repository_url, number).await?;
        if let Some(path) = &comment.path {
            devops_git::check_tree_path(path)?;
        }
        Ok(self.prs.add_comment(tenant, pr.id, comment).await?)
    }

    async fn diff(&self, tenant: TenantId, repository_url: &str, number: u64) -> Result<String> {
        let (pr, repo) = self.record(tenant, repository_url, number).await?;
        match pr.state {
            PullRequestState::Open => Ok(repo.diff(&format!("refs/heads/{}", pr.target_branch), &pr.head_sha).await?),
            _ => Ok(repo.diff(&pr.base_sha, &pr.head_sha).await?),
        }
    }

    async fn post_review(
        &self,
        tenant: TenantId,
        repository_url: &str,
        number: u64,
        review: &ReviewPost,
    ) -> Result<PostedReview> {
        let (pr, _) = self.record(tenant, repository_url, number).await?;
        let edited = match review.summary_comment_id.as_deref().and_then(|id| id.parse::<Uuid>().ok()) {
            Some(id) => match self.prs.edit_comment(tenant, id, &review.summary).await {
                Ok(comment) => Some(comment),
                Err(devops_store::Error::NotFound(_)) => None,
                Err(err) => return Err(err.into()),
            },
            None => None,
        };
        let summary = match edited {
            Some(comment) => comment,
            None => {
                let comment = NewComment { body: review.summary.clone(), path: None, line: None, fingerprint: None };
                self.prs.add_comment(tenant, pr.id, &comment).await?
            }
        };
        for inline in &review.inline {
            let comment = NewComment {
                body: inline.body.clone(),
                path: Some(inline.path.clone()),
                line: Some(inline.line),
                fingerprint: Some(inline.fingerprint.clone()),
            };
            self.prs.add_comment(tenant, pr.id, &comment).await?;
        }
        Ok(PostedReview { summary_comment_id: summary.id.to_string(), inline_posted: review.inline.len() })
    }
}
