//! Operational endpoints every service serves: `/healthz` (liveness),
//! `/readyz` (the service's own dependencies answer) and `/metrics`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

/// How long one dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Named dependency checks, run concurrently on every `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    probes: Vec<(&'static str, Probe)>,
}

#[derive(Debug, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Readiness {
    pub fn add<F, Fut>(&mut self, name: &'static str, probe: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.probes.push((name, Arc::new(move || Box::pin(probe()))));
    }

    pub async fn check(&self) -> ReadinessReport {
        let checks = join_all(self.probes.iter().map(|(name, probe)| async move {
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            CheckResult { name, ok: outcome.is_ok(), error: outcome.err() }
        }))
        .await;
        ReadinessReport { ready: checks.iter().all(|c| c.ok), checks }
    }
}

/// `/healthz`, `/readyz` and `/metrics`, unauthenticated by design.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let report = readiness.check().await;
    for failed in report.checks.iter().filter(|c| !c.ok) {
        tracing::warn!(dependency = failed.name, error = failed.error.as_deref().unwrap_or(""), "not ready");
    }
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report)).into_response()
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], devops_telemetry::prometheus().render()).into_response()
}
