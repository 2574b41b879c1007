//! gRPC services share their port with `/healthz`, `/readyz` and `/metrics`:
//! tonic's routes become an axum router, served over HTTP/1.1 and h2c alike.
//! Every gRPC server also answers `grpc.health.v1` and server reflection.

use std::convert::Infallible;

use axum::Router;
use tonic::server::NamedService;

use crate::{Error, Result};

/// A generated tonic server, ready to be routed.
pub trait GrpcService:
    tower::Service<
        http::Request<tonic::body::Body>,
        Error = Infallible,
        Response: axum::response::IntoResponse,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Error = Infallible,
            Response: axum::response::IntoResponse,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Routes for `service`, plus health (reporting it serving) and reflection
/// over `descriptors`.
pub async fn router<S: GrpcService>(service: S, descriptors: &'static [u8]) -> Result<Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<S>().await;
    // Reflection describes what this server answers, not every contract in the set.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(S::NAME)
        .with_service_name("grpc.health.v1.Health")
        .build_v1()
        .map_err(|err| Error::Serve(std::io::Error::other(err)))?;
    Ok(tonic::service::Routes::new(health).add_service(reflection).add_service(service).into_axum_router())
}

/// Serves a gRPC service and the operational endpoints on `listen` until shutdown.
pub async fn serve<S: GrpcService>(
    ctx: &crate::ServiceContext,
    listen: std::net::SocketAddr,
    service: S,
    descriptors: &'static [u8],
) -> Result<()> {
    let app = router(service, descriptors)
        .await?
        .layer(axum::middleware::from_fn(crate::http::continue_trace))
        .merge(crate::ops::router(ctx.backends.readiness()));
    let listener = crate::http::bind(listen).await?;
    crate::http::serve(listener, app, ctx.shutdown.clone()).await
}

/// Parses the tenant id every request carries, as the edge conversion to
/// the domain type.
pub fn tenant_id(raw: &str) -> Result<devops_models::TenantId, tonic::Status> {
    raw.parse().map(devops_models::TenantId).map_err(|_| {
        devops_errors::ApiError::new(devops_errors::ErrorCode::InvalidArgument, "tenant_id must be a UUID").into()
    })
}
