//! `devops-mcp`: run the whole fleet in one process (`up`), apply
//! migrations, and administer tenants and keys.

mod admin;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use devops_runtime::bootstrap::{ConfigArgs, load_config};
use devops_telemetry::TelemetryEnv;

#[derive(Debug, Parser)]
#[command(name = "devops-mcp", version, about = "DevOps MCP: one endpoint for agents doing DevOps work")]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all six services in this process.
    Up,
    /// Apply database migrations.
    Migrate,
    /// Administer tenants.
    Tenant {
        #[command(subcommand)]
        command: admin::TenantCommand,
    },
    /// Administer API keys.
    Key {
        #[command(subcommand)]
        command: admin::KeyCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (config, unknown_keys) = match load_config("devops-mcp", &cli.config, &env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("devops-mcp: cannot start the async runtime: {err}");
            return ExitCode::from(70);
        }
    };
    runtime.block_on(async move {
        // Administrative commands talk to a terminal; `up` logs like a service.
        let mut telemetry_config = config.telemetry.clone();
        if !matches!(cli.command, Command::Up) {
            telemetry_config.log_level = "warn".into();
        }
        let _telemetry = match devops_telemetry::init("devops-mcp", &telemetry_config, &TelemetryEnv::from_vars(&env)) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("devops-mcp: {err}");
                return ExitCode::from(64);
            }
        };
        for key in unknown_keys {
            tracing::warn!(key, "unknown configuration key ignored");
        }
        let result = match cli.command {
            Command::Up => up::run(config, &env).await,
            Command::Migrate => admin::migrate(&config).await,
            Command::Tenant { command } => admin::tenant(&config, command).await,
            Command::Key { command } => admin::key(&config, command).await,
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("devops-mcp: {err}");
                ExitCode::from(err.exit_code())
            }
        }
    })
}
