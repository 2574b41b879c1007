//! pr-manager: provider-agnostic pull requests over gRPC
//! `devops_mcp.pull_requests.v1.PullRequests`.
//!
//! Each call goes to the host of the repository ([`devops_providers::Hosts`]).
//! Creating a pull request emits `pull_request.opened`; seeing its source
//! branch at a new commit emits `pull_request.synchronize`. Events go through
//! the store's outbox, which this service relays too, so a crash after the
//! answer cannot lose one.

use std::sync::Arc;

use devops_errors::{ApiError, ErrorCode, HasErrorCode};
use devops_models::{
    ChangeSet, EventEnvelope, FileChange, FileChangeKind, MergeMethod, NewComment, PullRequest, PullRequestState,
    PullRequestUpdate, TenantId,
};
use devops_proto::pull_requests::v1 as pb;
use devops_proto::pull_requests::v1::pull_requests_server::{PullRequests, PullRequestsServer};
use devops_providers::Hosts;
use devops_runtime::{Backend, ServiceContext, grpc, outbox};
use devops_store::Store;
use tonic::{Request, Response, Status};

pub const NAME: &str = "pr-manager";
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue, Backend::Secrets];

const DEFAULT_PAGE: u32 = 30;

#[derive(Clone)]
pub struct PullRequestsService {
    store: Arc<dyn Store>,
    hosts: Hosts,
}

impl PullRequestsService {
    pub fn new(store: Arc<dyn Store>, hosts: Hosts) -> Self {
        Self { store, hosts }
    }

    /// Queues `pull_request.<action>` for the worker (and the reviewer).
    async fn emit(&self, action: &str, pr: &PullRequest) -> Result<(), Status> {
        let mut event = EventEnvelope::new(
            format!("pull_request.{action}"),
            pr.tenant_id,
            format!("pr:{}:{}:{}:{}", pr.repository_url, pr.number, action, pr.head_sha),
            serde_json::json!({
                "provider": pr.provider, "repository_url": pr.repository_url, "number": pr.number,
                "head_sha": pr.head_sha, "head_ref": pr.source_branch, "base_ref": pr.target_branch, "title": pr.title,
            }),
        );
        devops_telemetry::inject_trace_context(&mut event.trace_context);
        self.store.enqueue_outbox(pr.tenant_id, &event).await.map_err(|err| status(&err))
    }

    /// The pull request as the host has it now, emitting `synchronize` when
    /// its head moved since we last looked.
    async fn current(&self, tenant: TenantId, url: &str, number: u64) -> Result<PullRequest, Status> {
        let host = self.hosts.for_repository(tenant, url).await.map_err(|err| status(&err))?;
        let canonical = devops_git::UrlPolicy::default().identity(url).unwrap_or_else(|| url.to_owned());
        let before = self.store.pull_requests().get_pull_request(tenant, &canonical, number).await.ok();
        let pr = host.get_pull_request(tenant, url, number).await.map_err(|err| status(&err))?;
        if before.is_some_and(|b| b.head_sha != pr.head_sha) {
            self.emit("synchronize", &pr).await?;
        }
        Ok(pr)
    }
}

fn status(err: &(impl HasErrorCode + std::fmt::Display)) -> Status {
    ApiError::new(err.code(), err.to_string()).into()
}

fn invalid(message: impl Into<String>) -> Status {
    ApiError::new(ErrorCode::InvalidArgument, message).into()
}

fn target(pr: Option<&pb::PullRequestRef>) -> Result<(TenantId, String, u64), Status> {
    let pr = pr.ok_or_else(|| invalid("ref is required"))?;
    let tenant = grpc::tenant_id(&pr.tenant_id)?;
    if pr.repository_url.is_empty() || pr.number == 0 {
        return Err(invalid("ref needs repository_url and a number"));
    }
    Ok((tenant, pr.repository_url.clone(), pr.number))
}

fn change_set(message: Option<pb::ChangeSet>) -> Result<ChangeSet, Status> {
    let message = message.ok_or_else(|| invalid("change_set is required"))?;
    let files = message
        .files
        .into_iter()
        .map(|file| {
            let kind = match pb::file_change::Kind::try_from(file.kind) {
                Ok(pb::file_change::Kind::Add) => FileChangeKind::Add,
                Ok(pb::file_change::Kind::Modify) => FileChangeKind::Modify,
                Ok(pb::file_change::Kind::Delete) => FileChangeKind::Delete,
                _ => return Err(invalid(format!("{}: kind must be add, modify or delete", file.path))),
            };
            Ok(FileChange { kind, path: file.path, content: file.content })
        })
        .collect::<Result<_, _>>()?;
    Ok(ChangeSet { base_ref: message.base_ref, message: message.message, files })
}

fn state(raw: &str) -> Result<Option<PullRequestState>, Status> {
    match raw {
        "" | "all" => Ok(None),
        other => other.parse().map(Some).map_err(invalid),
    }
}

fn message(pr: PullRequest) -> pb::PullRequest {
    pb::PullRequest {
        r#ref: Some(pb::PullRequestRef {
            tenant_id: pr.tenant_id.to_string(),
            repository_url: pr.repository_url,
            number: pr.number,
        }),
        provider: pr.provider,
        title: pr.title,
        body: pr.body,
        source_branch: pr.source_branch,
        target_branch: pr.target_branch,
        state: pr.state.to_string(),
        url: pr.url,
    }
}

#[tonic::async_trait]
impl PullRequests for PullRequestsService {
    async fn create(&self, request: Request<pb::CreateRequest>) -> Result<Response<pb::PullRequest>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let changes = change_set(request.change_set)?;
        let host = self.hosts.for_repository(tenant, &request.repository_url).await.map_err(|err| status(&err))?;
        let pr = host
            .create_pull_request(tenant, &request.repository_url, &request.title, &request.body, &changes)
            .await
            .map_err(|err| status(&err))?;
        self.emit("opened", &pr).await?;
        tracing::info!(%tenant, number = pr.number, provider = %pr.provider, "pull request opened");
        Ok(Response::new(message(pr)))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::PullRequest>, Status> {
        let (tenant, url, number) = target(request.get_ref().r#ref.as_ref())?;
        Ok(Response::new(message(self.current(tenant, &url, number).await?)))
    }

    async fn list(&self, request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let before = match request.page_token.as_str() {
            "" => None,
            token => Some(token.parse::<u64>().map_err(|_| invalid("page_token is not one this service issued"))?),
        };
        let limit = if request.page_size == 0 { DEFAULT_PAGE } else { request.page_size.min(100) };
        let host = self.hosts.for_repository(tenant, &request.repository_url).await.map_err(|err| status(&err))?;
        let prs = host
            .list_pull_requests(tenant, &request.repository_url, state(&request.state)?, before, limit)
            .await
            .map_err(|err| status(&err))?;
        let next_page_token = match prs.last() {
            Some(last) if prs.len() as u32 == limit && last.number > 1 => last.number.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListResponse { pull_requests: prs.into_iter().map(message).collect(), next_page_token }))
    }

    async fn update(&self, request: Request<pb::UpdateRequest>) -> Result<Response<pb::PullRequest>, Status> {
        let request = request.into_inner();
        let (tenant, url, number) = target(request.r#ref.as_ref())?;
        let update = PullRequestUpdate {
            title: request.title,
            body: request.body,
            state: request.state.as_deref().map(state).transpose()?.flatten(),
            ..PullRequestUpdate::default()
        };
        let host = self.hosts.for_repository(tenant, &url).await.map_err(|err| status(&err))?;
        let pr = host.update_pull_request(tenant, &url, number, &update).await.map_err(|err| status(&err))?;
        Ok(Response::new(message(pr)))
    }

    async fn merge(&self, request: Request<pb::MergeRequest>) -> Result<Response<pb::MergeResponse>, Status> {
        let request = request.into_inner();
        let (tenant, url, number) = target(request.r#ref.as_ref())?;
        let method = match pb::merge_request::Method::try_from(request.method) {
            Ok(pb::merge_request::Method::Unspecified | pb::merge_request::Method::Merge) => MergeMethod::Merge,
            Ok(pb::merge_request::Method::Squash) => MergeMethod::Squash,
            Ok(pb::merge_request::Method::Rebase) => MergeMethod::Rebase,
            Err(_) => return Err(invalid("method must be merge, squash or rebase")),
        };
        let host = self.hosts.for_repository(tenant, &url).await.map_err(|err| status(&err))?;
        let outcome = host.merge_pull_request(tenant, &url, number, method).await.map_err(|err| status(&err))?;
        Ok(Response::new(pb::MergeResponse {
            merged: outcome.merged,
            merge_commit: outcome.merge_commit.unwrap_or_default(),
            conflicts: outcome.conflicts,
        }))
    }

    async fn comment(&self, request: Request<pb::CommentRequest>) -> Result<Response<pb::CommentResponse>, Status> {
        let request = request.into_inner();
        let (tenant, url, number) = target(request.r#ref.as_ref())?;
        let anchored = !request.path.is_empty();
        if anchored != (request.line > 0) {
            return Err(invalid("an inline comment needs both path and line"));
        }
        let comment = NewComment {
            body: request.body,
            path: anchored.then_some(request.path),
            line: anchored.then_some(request.line),
            fingerprint: None,
        };
        let host = self.hosts.for_repository(tenant, &url).await.map_err(|err| status(&err))?;
        let posted = host.comment(tenant, &url, number, &comment).await.map_err(|err| status(&err))?;
        Ok(Response::new(pb::CommentResponse { comment_id: posted.id.to_string() }))
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.pr_manager.listen;
    let store = ctx.backends.store()?;
    let relay = tokio::spawn(outbox::run_relay(store.clone(), ctx.backends.queue()?, ctx.shutdown.clone()));
    let hosts = devops_runtime::providers::hosts(&ctx.config, &store, ctx.backends.secrets()?.as_ref()).await?;
    let service = PullRequestsService::new(store, hosts);
    let served = grpc::serve(&ctx, listen, PullRequestsServer::new(service), devops_proto::FILE_DESCRIPTOR_SET).await;
    ctx.shutdown.cancel();
    let _ = relay.await;
    served
}
