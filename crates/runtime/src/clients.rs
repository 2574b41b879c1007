//! gRPC clients of the internal services. Each connects on first use, so a
//! caller starts (and reports ready) before the service it calls is up.

use std::time::Duration;

use devops_config::Config;
use devops_proto::indexer::v1::indexer_client::IndexerClient;
use devops_proto::pull_requests::v1::pull_requests_client::PullRequestsClient;
use devops_proto::reviewer::v1::reviewer_client::ReviewerClient;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::Result;

/// Channels that carry the caller's trace context in every request.
pub type Traced = InterceptedService<Channel, TracePropagation>;

pub type Indexer = IndexerClient<Traced>;

/// Writes the current span's trace context into each request's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracePropagation;

impl Interceptor for TracePropagation {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut carrier = devops_telemetry::TraceCarrier::new();
        devops_telemetry::inject_trace_context(&mut carrier);
        for (key, value) in carrier {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_str()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

fn channel(name: &str, url: String) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|err| devops_config::Error::Invalid(format!("services.{name}.url {url:?}: {err}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

pub fn indexer(config: &Config) -> Result<Indexer> {
    Ok(IndexerClient::with_interceptor(channel("indexer", config.services.indexer.url())?, TracePropagation))
}

pub type PullRequests = PullRequestsClient<Traced>;
pub type Reviewer = ReviewerClient<Traced>;

pub fn pull_requests(config: &Config) -> Result<PullRequests> {
    Ok(PullRequestsClient::with_interceptor(channel("pr_manager", config.services.pr_manager.url())?, TracePropagation))
}

pub fn reviewer(config: &Config) -> Result<Reviewer> {
    Ok(ReviewerClient::with_interceptor(channel("reviewer", config.services.reviewer.url())?, TracePropagation))
}
