//! Logs, traces and metrics for every service.
//!
//! - Logs are JSON lines (or text for a terminal), filtered by `RUST_LOG` or
//!   the configured level.
//! - Traces go out over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//!   the W3C trace-context propagator is installed either way, so context
//!   flows across HTTP, gRPC and queue hops.
//! - Metrics go to one process-wide Prometheus recorder, rendered by each
//!   service's `/metrics`.

mod json_fields;

use std::sync::OnceLock;
use std::time::Duration;

use devops_config::{LogFormat, TelemetryConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid log filter {0:?}")]
    Filter(String),
    #[error("cannot start the OTLP exporter: {0}")]
    Otlp(String),
    #[error("a global subscriber is already installed")]
    AlreadyInstalled,
}

/// The environment variables telemetry honours, passed in by the binary.
#[derive(Debug, Clone, Default)]
pub struct TelemetryEnv {
    pub rust_log: Option<String>,
    pub otlp_endpoint: Option<String>,
}

impl TelemetryEnv {
    pub fn from_vars(vars: &[(String, String)]) -> Self {
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        Self { rust_log: get("RUST_LOG"), otlp_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT") }
    }
}

/// Flushes pending spans when dropped; keep it alive for the process's life.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs logging, tracing and the metrics recorder for `service`.
pub fn init(service: &str, config: &TelemetryConfig, env: &TelemetryEnv) -> Result<TelemetryGuard, Error> {
    let directive = env.rust_log.clone().unwrap_or_else(|| config.log_level.clone());
    let filter = EnvFilter::try_new(&directive).map_err(|_| Error::Filter(directive.clone()))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let tracer_provider = match &env.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| Error::Otlp(e.to_string()))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            Some(provider)
        }
        None => None,
    };
    let otel_layer = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned())));

    let (json, text) = match config.log_format {
        LogFormat::Json => (Some(json_fields::json_layer()), None),
        LogFormat::Text => (None, Some(tracing_subscriber::fmt::layer())),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel_layer)
        .try_init()
        .map_err(|_| Error::AlreadyInstalled)?;
    prometheus();
    Ok(TelemetryGuard { tracer_provider })
}

/// The process-wide Prometheus recorder, installed on first use. Services in
/// one process (`devops-mcp up`, tests) share it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours
        // still renders what is recorded through it.
        let _ = metrics::set_global_recorder(recorder);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let upkeep = handle.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// W3C trace-context fields of an event (`traceparent`, `tracestate`).
pub type TraceCarrier = std::collections::BTreeMap<String, String>;

struct CarrierWriter<'c>(&'c mut TraceCarrier);

impl opentelemetry::propagation::Injector for CarrierWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct CarrierReader<'c>(&'c TraceCarrier);

impl opentelemetry::propagation::Extractor for CarrierReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the current span's trace context into an event, so the trace
/// continues wherever the event is handled.
pub fn inject_trace_context(carrier: &mut TraceCarrier) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut CarrierWriter(carrier));
    });
}

/// Makes `span` a child of the trace an event carries.
pub fn continue_trace(span: &tracing::Span, carrier: &TraceCarrier) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if carrier.is_empty() {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&CarrierReader(carrier)));
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod trace_tests {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn an_event_carries_the_trace_to_its_consumer() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let webhook = tracing::info_span!("webhook");
            let mut carrier = TraceCarrier::new();
            webhook.in_scope(|| inject_trace_context(&mut carrier));
            let traceparent = carrier.get("traceparent").expect("traceparent").clone();
            let sent = webhook.context().span().span_context().trace_id();
            assert!(traceparent.contains(&sent.to_string()), "{traceparent}");

            let worker = tracing::info_span!("worker.event");
            continue_trace(&worker, &carrier);
            assert_eq!(worker.context().span().span_context().trace_id(), sent, "one trace across the queue");
            let unrelated = tracing::info_span!("other");
            assert_ne!(unrelated.context().span().span_context().trace_id(), sent);
        });
    }
}
