//! gRPC clients of the internal services. Each connects on first use, so a
//! caller starts (and reports ready) before the service it calls is up.

use std::time::Duration;

use devops_config::Config;
use devops_proto::indexer::v1::indexer_client::IndexerClient;
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
