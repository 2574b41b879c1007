//! Shared AWS SDK configuration for the production adapters.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the standard credential chain (environment, profile, ECS task role,
/// IMDS) for `region`, with every client pointed at `endpoint_url` when it is
/// given (moto, LocalStack, VPC endpoints).
pub async fn sdk_config(region: &str, endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
    if let Some(url) = endpoint_url.filter(|u| !u.is_empty()) {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
