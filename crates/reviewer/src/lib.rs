//! The reviewer: analyses diffs and posts reviews, over gRPC
//! `devops_mcp.reviewer.v1.Reviewer`.
//!
//! This build defines the contract and serves it with health and
//! reflection; the RPCs answer `not_implemented` until the analysers land.

use devops_errors::{ApiError, ErrorCode};
use devops_proto::reviewer::v1::reviewer_server::{Reviewer, ReviewerServer};
use devops_proto::reviewer::v1::{
    AnalyzeDiffRequest, AnalyzeDiffResponse, GetReviewRequest, Review, ReviewPullRequestRequest,
};
use devops_runtime::{Backend, ServiceContext, grpc};
use tonic::{Request, Response, Status};

pub const NAME: &str = "reviewer";
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue];

#[derive(Debug, Clone, Default)]
pub struct ReviewerService;

fn not_available() -> Status {
    ApiError::new(ErrorCode::NotImplemented, "reviews are not available in this build").into()
}

#[tonic::async_trait]
impl Reviewer for ReviewerService {
    async fn review_pull_request(
        &self,
        request: Request<ReviewPullRequestRequest>,
    ) -> Result<Response<Review>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available())
    }

    async fn analyze_diff(
        &self,
        request: Request<AnalyzeDiffRequest>,
    ) -> Result<Response<AnalyzeDiffResponse>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available())
    }

    async fn get_review(&self, request: Request<GetReviewRequest>) -> Result<Response<Review>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available())
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.reviewer.listen;
    grpc::serve(&ctx, listen, ReviewerServer::new(ReviewerService), devops_proto::FILE_DESCRIPTOR_SET).await
}
