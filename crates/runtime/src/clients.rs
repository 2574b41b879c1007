//! gRPC clients of the internal services. Each connects on first use, so a
//! caller starts (and reports ready) before the service it calls is up.

use std::time::Duration;

use devops_config::Config;
use devops_proto::indexer::v1::indexer_client::IndexerClient;
use devops_proto::pull_requests::v1::pull_requests_client::PullRequestsClient;
use devops_proto::reviewer::v1::reviewer_client::ReviewerClient;
use tonic::transport::{Channel, Endpoint};

use crate::Result;

pub type Indexer = IndexerClient<Channel>;

fn channel(name: &str, url: String) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|err| devops_config::Error::Invalid(format!("services.{name}.url {url:?}: {err}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

pub fn indexer(config: &Config) -> Result<Indexer> {
    Ok(IndexerClient::new(channel("indexer", config.services.indexer.url())?))
}

pub type PullRequests = PullRequestsClient<Channel>;
pub type Reviewer = ReviewerClient<Channel>;

pub fn pull_requests(config: &Config) -> Result<PullRequests> {
    Ok(PullRequestsClient::new(channel("pr_manager", config.services.pr_manager.url())?))
}

pub fn reviewer(config: &Config) -> Result<Reviewer> {
    Ok(ReviewerClient::new(channel("reviewer", config.services.reviewer.url())?))
}
