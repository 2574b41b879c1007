//! The indexer: clones, chunks and embeds repositories and serves search,
//! over gRPC `devops_mcp.indexer.v1.Indexer`.
//!
//! This build defines the contract and serves it with health and
//! reflection; the RPCs answer `not_implemented` until the code index lands.

use std::pin::Pin;

use devops_errors::{ApiError, ErrorCode};
use devops_proto::indexer::v1::indexer_server::{Indexer, IndexerServer};
use devops_proto::indexer::v1::{
    GetIndexStatusRequest, IndexProgress, IndexRepositoryRequest, IndexStatus, SearchRequest, SearchResponse,
};
use devops_runtime::{Backend, ServiceContext, grpc};
use tonic::{Request, Response, Status};

pub const NAME: &str = "indexer";
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Blob, Backend::Cache];

#[derive(Debug, Clone, Default)]
pub struct IndexerService;

fn not_available(what: &str) -> Status {
    ApiError::new(ErrorCode::NotImplemented, format!("{what} is not available in this build")).into()
}

#[tonic::async_trait]
impl Indexer for IndexerService {
    type IndexRepositoryStream = Pin<Box<dyn futures_core::Stream<Item = Result<IndexProgress, Status>> + Send>>;

    async fn index_repository(
        &self,
        request: Request<IndexRepositoryRequest>,
    ) -> Result<Response<Self::IndexRepositoryStream>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available("repository indexing"))
    }

    async fn get_index_status(&self, request: Request<GetIndexStatusRequest>) -> Result<Response<IndexStatus>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available("index status"))
    }

    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        grpc::tenant_id(&request.get_ref().tenant_id)?;
        Err(not_available("code search"))
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.indexer.listen;
    grpc::serve(&ctx, listen, IndexerServer::new(IndexerService), devops_proto::FILE_DESCRIPTOR_SET).await
}
