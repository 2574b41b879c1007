//! HTTP plumbing shared by the services: JSON extraction with coded errors,
//! common layers, request metrics and graceful serving.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use devops_errors::{ApiError, ErrorCode};
use metrics::{Counter, Histogram};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{Error, Result};

/// After a shutdown signal, in-flight requests get this long to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";

/// `Json` whose rejections become our coded errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let code = match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidArgument,
        _ => ErrorCode::MalformedJson,
    };
    ApiError::new(code, rejection.body_text())
}

/// Layers every public router gets: body limit, JSON 404/405, panic
/// containment and per-route metrics.
pub fn with_common_layers(router: Router, service: &'static str, max_body_bytes: usize) -> Router {
    devops_telemetry::prometheus();
    let metrics = Arc::new(RequestMetrics::new(service));
    // One layer for all three: axum wraps every route in a box per layer,
    // and clones each box on every request.
    let common = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(move |req, next| observe(metrics.clone(), req, next)))
        .layer(CatchPanicLayer::custom(|_| ApiError::new(ErrorCode::Internal, "internal error").into_response()))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes));
    router
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route")
        })
        .layer(common)
}

/// Runs the request in its trace span and records its metrics.
async fn observe(metrics: Arc<RequestMetrics>, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let span = request_span(&request);
    async move {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let started = Instant::now();
        let response = next.run(request).await;
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        metrics.record(route, &method, response.status(), started.elapsed());
        response
    }
    .instrument(span)
    .await
}

/// Runs the request in a span that continues the caller's W3C trace
/// (`traceparent` from HTTP or gRPC metadata), so one trace follows a
/// webhook through the queue to the posted review.
pub async fn continue_trace(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let span = request_span(&request);
    next.run(request).instrument(span).await
}

fn request_span(request: &Request) -> tracing::Span {
    let carrier: devops_telemetry::TraceCarrier = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), request.headers().get(name)?.to_str().ok()?.to_owned())))
        .collect();
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    devops_telemetry::continue_trace(&span, &carrier);
    span
}

/// One service's request metrics, with each label set's handles kept: the
/// recorder's own lookup builds, hashes and compares the four labels on
/// every request.
struct RequestMetrics {
    service: &'static str,
    /// By route, then method and status.
    kept: RwLock<HashMap<String, Vec<LabelSet>>>,
}

type LabelSet = (Method, StatusCode, Counter, Histogram);

/// Bounds the label sets kept; past it (a flood of odd methods) the
/// recorder's lookup serves them.
const MAX_KEPT_LABEL_SETS: usize = 512;

impl RequestMetrics {
    fn new(service: &'static str) -> Self {
        Self { service, kept: RwLock::default() }
    }

    fn record(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let seconds = took.as_secs_f64();
        let find = |sets: &[LabelSet]| sets.iter().position(|set| set.0 == method && set.1 == status);
        {
            let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(sets) = kept.get(route)
                && let Some(at) = find(sets)
            {
                sets[at].2.increment(1);
                sets[at].3.record(seconds);
                return;
            }
        }
        let labels = [
            ("service", self.service.to_owned()),
            ("method", method.to_string()),
            ("route", route.to_owned()),
            ("status", status.as_u16().to_string()),
        ];
        let counter = metrics::counter!(HTTP_REQUESTS_TOTAL, &labels);
        let histogram = metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels);
        counter.increment(1);
        histogram.record(seconds);
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        // Only label sets not kept get here: new ones, and past the bound
        // (at most 512 to count) the rare odd one.
        if kept.values().map(Vec::len).sum::<usize>() < MAX_KEPT_LABEL_SETS {
            let sets = kept.entry(route.to_owned()).or_default();
            if find(sets).is_none() {
                sets.push((method.clone(), status, counter, histogram));
            }
        }
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })
}

/// Serves until `shutdown` fires, then drains for at most [`DRAIN_TIMEOUT`].
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) -> Result<()> {
    let addr = listener.local_addr().map_err(Error::Serve)?;
    tracing::info!(%addr, "listening");
    // Responses are written in several small frames (SSE priming, then the
    // message); without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to each.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = server => result.map_err(Error::Serve),
        () = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
            tracing::warn!(%addr, "connections still open after the drain timeout; closing");
            Ok(())
        }
    }
}

/// Turns a library error into the caller's view, logging it here, where it
/// is handled, when it is the server's fault.
pub fn api_error<E: devops_errors::HasErrorCode>(err: E) -> ApiError {
    let code = err.code();
    if code.spec().http.is_server_error() {
        tracing::error!(error = %err, %code, "request failed");
    }
    ApiError::from_coded(&err)
}

/// `Query` whose rejections become our coded errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for AppQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| AppQuery(value))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidArgument, rejection.body_text()))
    }
}

/// `Path` whose rejections become our coded errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for AppPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| AppPath(value))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidArgument, rejection.body_text()))
    }
}
