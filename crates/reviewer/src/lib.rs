//! The reviewer: analyses diffs and posts reviews, over gRPC
//! `devops_mcp.reviewer.v1.Reviewer`.
//!
//! The analysers ([`analysis::Analyzer`]) are pure functions of a unified
//! diff: secrets ([`secrets`]), risky patterns ([`patterns`]) and quality
//! heuristics ([`quality`]). `AnalyzeDiff` serves them directly;
//! `ReviewPullRequest` ([`review::Reviews`]) reads the diff from the pull
//! request's host, stores the review and posts it; `GetReview` reads it back.

pub mod analysis;
pub mod diff;
pub mod llm;
pub mod patterns;
pub mod quality;
pub mod review;
pub mod secrets;

use std::sync::Arc;

use devops_config::Config;
use devops_errors::{ApiError, ErrorCode};
use devops_models::{Finding, Review};
use devops_proto::reviewer::v1 as pb;
use devops_proto::reviewer::v1::reviewer_server::{Reviewer, ReviewerServer};
use devops_providers::Hosts;
use devops_runtime::{Backend, ServiceContext, grpc};
use devops_store::Store;
use tonic::{Request, Response, Status};

use crate::analysis::Analyzer;
use crate::review::Reviews;
use crate::secrets::SecretScanner;

pub const NAME: &str = "reviewer";
pub const NEEDS: &[Backend] = &[Backend::Store, Backend::Queue, Backend::Secrets];

#[derive(Clone)]
pub struct ReviewerService {
    reviews: Reviews,
}

impl ReviewerService {
    /// Fails on an allow-list entry that is not a regular expression.
    pub fn new(config: &Config, store: Arc<dyn Store>, hosts: Hosts) -> Result<Self, devops_config::Error> {
        let secrets = SecretScanner::new(&config.reviewer.secret_allowlist)
            .map_err(|err| devops_config::Error::Invalid(format!("reviewer.secret_allowlist: {err}")))?;
        Ok(Self {
            reviews: Reviews {
                analyzer: Analyzer { secrets },
                hosts,
                store: store.pull_requests(),
                max_inline_comments: config.reviewer.max_inline_comments,
                max_diff_bytes: config.reviewer.max_diff_bytes,
                llm: llm(config)?,
            },
        })
    }
}

/// The LLM pass, when the configuration turns it on.
fn llm(config: &Config) -> Result<Option<llm::LlmReviewer>, devops_config::Error> {
    let settings = &config.reviewer;
    if settings.llm_url.is_empty() {
        return Ok(None);
    }
    llm::LlmReviewer::new(
        &settings.llm_url,
        &settings.llm_model,
        std::env::var("DEVOPS_MCP_LLM_API_KEY").ok(),
        std::time::Duration::from_secs(settings.llm_timeout_secs),
        settings.llm_max_diff_bytes,
        settings.llm_max_tokens,
    )
    .map(Some)
    .map_err(|err| devops_config::Error::Invalid(format!("reviewer.llm_url: {err}")))
}

fn status(err: &(impl devops_errors::HasErrorCode + std::fmt::Display)) -> Status {
    ApiError::new(err.code(), err.to_string()).into()
}

fn review_message(review: Review) -> pb::Review {
    pb::Review {
        id: review.id.to_string(),
        repository_url: review.repository_url,
        number: review.number,
        findings: review.findings.into_iter().map(finding_message).collect(),
        security_score: review.scores.security,
        quality_score: review.scores.quality,
        status: review.status.as_str().to_owned(),
    }
}

fn finding_message(finding: Finding) -> pb::Finding {
    pb::Finding {
        file: finding.file,
        line: finding.line,
        severity: finding.severity.to_string(),
        category: finding.category.to_string(),
        rule: finding.rule,
        message: finding.message,
        suggestion: finding.suggestion,
        confidence: f64::from(finding.confidence),
    }
}

#[tonic::async_trait]
impl Reviewer for ReviewerService {
    async fn review_pull_request(
        &self,
        request: Request<pb::ReviewPullRequestRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        if request.number == 0 || request.repository_url.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "repository_url and number are required").into());
        }
        let review = self
            .reviews
            .review(tenant, &request.repository_url, request.number, request.post)
            .await
            .map_err(|err| status(&err))?;
        Ok(Response::new(review_message(review)))
    }

    async fn analyze_diff(
        &self,
        request: Request<pb::AnalyzeDiffRequest>,
    ) -> Result<Response<pb::AnalyzeDiffResponse>, Status> {
        let request = request.into_inner();
        grpc::tenant_id(&request.tenant_id)?;
        let limit = self.reviews.max_diff_bytes;
        if request.diff.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the diff is {} bytes; the limit is {limit}", request.diff.len()),
            )
            .into());
        }
        let analysis = self
            .reviews
            .analyzer
            .analyze(&request.diff)
            .map_err(|err| Status::from(ApiError::new(ErrorCode::InvalidArgument, format!("diff: {err}"))))?;
        Ok(Response::new(pb::AnalyzeDiffResponse {
            findings: analysis.findings.into_iter().map(finding_message).collect(),
            security_score: analysis.scores.security,
            quality_score: analysis.scores.quality,
        }))
    }

    async fn get_review(&self, request: Request<pb::GetReviewRequest>) -> Result<Response<pb::Review>, Status> {
        let request = request.into_inner();
        let tenant = grpc::tenant_id(&request.tenant_id)?;
        let id = request
            .review_id
            .parse()
            .map_err(|_| Status::from(ApiError::new(ErrorCode::InvalidArgument, "review_id must be a UUID")))?;
        let review = self.reviews.store.get_review(tenant, id).await.map_err(|err| status(&err))?;
        Ok(Response::new(review_message(review)))
    }
}

pub async fn run(ctx: ServiceContext) -> devops_runtime::Result<()> {
    let listen = ctx.config.services.reviewer.listen;
    let store = ctx.backends.store()?;
    let hosts = devops_runtime::providers::hosts(&ctx.config, &store, ctx.backends.secrets()?.as_ref()).await?;
    let service = ReviewerService::new(&ctx.config, store, hosts)?;
    grpc::serve(&ctx, listen, ReviewerServer::new(service), devops_proto::FILE_DESCRIPTOR_SET).await
}
