//! pr-manager: provider-agnostic pull requests over gRPC
//! `devops_mcp.pull_requests.v1.PullRequests`.
//!
//! This build defines the contract and serves it with health and
//! reflection; the RPCs answer `not_implemented` until the providers land.

use devops_errors::{ApiError, ErrorCode};
use devops_proto::pull_requests::v1::pull_requests_server::{PullRequests, PullRequestsServer};
use devops_proto::pull_requests::v1::{
    CommentRequest, CommentResponse, CreateRequest, GetRequest, ListRequest, ListResponse, MergeRequest, MergeResponse,
    PullRequest, PullRequestRef, UpdateRequest,
};
use devops_runtime::{Backend, ServiceContext, grpc};
use tonic::{Request, Response, Status};

pub const NAME: &str = "pr-manager";
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue];

#[derive(Debug, Clone, Default)]
pub struct PullRequestsService;

fn not_available() -> Status {
    ApiError::new(ErrorCode::NotImplemented, "pull request operations are not available in this build").into()
}

fn check_ref(pr: Option<&PullRequestRef>) -> Result<(), Status> {
    let pr = pr.ok_or_else(|| Status::from(ApiError::new(ErrorCode::InvalidArgument, "ref is required")))?;
    grpc::tenant_id(&pr.tenant_id).map(|_| ())
}

#[tonic::async_trait]
impl PullRequests for PullRequestsService {
    async fn create(&self, request: Request<CreateRequest>) -> Result<Response<PullRequest>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available())
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<PullRequest>, Status> {
        check_ref(request.get_ref().r#ref.as_ref())?;
        Err(not_available())
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available())
    }

    async fn update(&self, request: Request<UpdateRequest>) -> Result<Response<PullRequest>, Status> {
        check_ref(request.get_ref().r#ref.as_ref())?;
        Err(not_available())
    }

    async fn merge(&self, request: Request<MergeRequest>) -> Result<Response<MergeResponse>, Status> {
        check_ref(request.get_ref().r#ref.as_ref())?;
        Err(not_available())
    }

    async fn comment(&self, request: Request<CommentRequest>) -> Result<Response<CommentResponse>, Status> {
        check_ref(request.get_ref().r#ref.as_ref())?;
        Err(not_available())
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.pr_manager.listen;
    grpc::serve(&ctx, listen, PullRequestsServer::new(PullRequestsService), devops_proto::FILE_DESCRIPTOR_SET).await
}
