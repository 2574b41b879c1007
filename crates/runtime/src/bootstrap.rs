//! The start-up sequence every service binary shares, so `main.rs` stays a
//! few lines: parse flags, load config (exit 64 on error, before any port is
//! bound), start telemetry, connect back ends (exit 69 if one is down), check
//! the schema, run until SIGTERM or SIGINT.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use devops_config::{Config, Sources, TelemetryConfig};
use devops_errors::HasErrorCode;
use devops_telemetry::TelemetryEnv;
use tokio_util::sync::CancellationToken;

use crate::{Backend, Backends, Result};

/// Everything a service's `run` is given.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub backends: Backends,
    pub shutdown: CancellationToken,
}

/// Flags every service binary accepts.
#[derive(Debug, Clone, Parser)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "DEVOPS_MCP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting, e.g. `--set store.url=postgres://…` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Allow insecure settings, for local development only.
    #[arg(long)]
    pub dev: bool,
}

impl ConfigArgs {
    pub fn sources(&self, env: Vec<(String, String)>) -> Sources {
        Sources { file: self.config.clone(), env, overrides: self.overrides.clone(), dev: self.dev }
    }
}

#[derive(Debug, Parser)]
struct ServiceArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Loads configuration, or prints why not and returns exit code 64.
pub fn load_config(name: &str, args: &ConfigArgs, env: &[(String, String)]) -> Result<(Config, Vec<String>), ExitCode> {
    match Config::load(&args.sources(env.to_vec())) {
        Ok(loaded) => Ok((loaded.config, loaded.unknown_keys)),
        Err(err) => {
            eprintln!("{name}: {err}");
            Err(ExitCode::from(64))
        }
    }
}

/// The whole life of a service binary.
pub fn service_main<F, Fut>(name: &'static str, needs: &'static [Backend], run: F) -> ExitCode
where
    F: FnOnce(ServiceContext) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let args = ServiceArgs::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (config, unknown_keys) = match load_config(name, &args.config, &env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let telemetry = config.telemetry.clone();
    run_to_exit(name, &telemetry, &env.clone(), unknown_keys, async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let backends = Backends::connect(&config, needs, &env).await?;
        if let Some(store) = &backends.store {
            store.check_schema().await?;
        }
        run(ServiceContext { config: Arc::new(config), backends, shutdown }).await
    })
}

/// Builds the async runtime, starts telemetry, runs `body` and turns its
/// outcome into the process's exit code (see [`crate::Error::exit_code`]).
pub fn run_to_exit(
    name: &str,
    telemetry: &TelemetryConfig,
    env: &[(String, String)],
    unknown_keys: Vec<String>,
    body: impl Future<Output = Result<()>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{name}: cannot start the async runtime: {err}");
            return ExitCode::from(70);
        }
    };
    runtime.block_on(async move {
        let _telemetry = match devops_telemetry::init(name, telemetry, &TelemetryEnv::from_vars(env)) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("{name}: {err}");
                return ExitCode::from(64);
            }
        };
        for key in unknown_keys {
            tracing::warn!(key, "unknown configuration key ignored");
        }
        match body.await {
            Ok(()) => {
                tracing::info!(service = name, "stopped");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(service = name, error = %err, code = %err.code(), "exiting");
                eprintln!("{name}: {err}");
                ExitCode::from(err.exit_code())
            }
        }
    })
}

/// Cancels `token` on SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
