//! `devops-mcp`: run the whole fleet in one process (`up`), apply
//! migrations, and administer tenants and keys.

mod admin;
mod code;
mod review;
mod stdio;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use devops_runtime::bootstrap::{ConfigArgs, load_config, run_to_exit};

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
    /// Index a repository (URL or local path) through the running indexer, with progress.
    Index {
        /// https or ssh URL, scp-style address, or a local path (must be under indexer.allowed_local_paths).
        repository: String,
        /// Tenant name or id.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Branch, tag or commit; default: the default branch.
        #[arg(long = "ref", default_value = "")]
        git_ref: String,
        /// Re-read and re-embed everything.
        #[arg(long)]
        full: bool,
    },
    /// Search the tenant's indexed code.
    Search {
        query: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Only these repositories (id, URL, owner/name or local path; repeatable).
        #[arg(long = "repo")]
        repositories: Vec<String>,
        /// Only paths matching this glob, e.g. 'src/**/*.rs'.
        #[arg(long = "path")]
        path_glob: Option<String>,
        #[arg(long)]
        language: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Review a pull request through the running reviewer, and post the review.
    Review {
        /// The repository (URL or local path).
        repository: String,
        /// The pull request's number.
        number: u64,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Only compute the review; do not post it.
        #[arg(long)]
        no_post: bool,
        #[arg(long)]
        json: bool,
    },
    /// The queue's dead letters: list them, or redrive them.
    Dlq {
        #[command(subcommand)]
        command: review::DlqCommand,
    },
    /// Bridge a stdio MCP client to a running server.
    Stdio {
        /// The server's Streamable HTTP endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8080/mcp")]
        url: String,
        /// API key; prefer the environment variable, which stays out of process lists.
        #[arg(long, env = "DEVOPS_MCP_KEY", hide_env_values = true)]
        key: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (config, unknown_keys) = match load_config("devops-mcp", &cli.config, &env) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Administrative commands talk to a terminal; `up` logs like a service;
    // `stdio` owns stdout for protocol messages, so it logs nothing.
    let mut telemetry = config.telemetry.clone();
    match cli.command {
        Command::Up => {}
        Command::Stdio { .. } => telemetry.log_level = "off".into(),
        _ => telemetry.log_level = "warn".into(),
    }
    let env_for_up = env.clone();
    run_to_exit("devops-mcp", &telemetry, &env, unknown_keys, async move {
        match cli.command {
            Command::Up => up::run(config, &env_for_up).await,
            Command::Migrate => admin::migrate(&config).await,
            Command::Tenant { command } => admin::tenant(&config, command).await,
            Command::Key { command } => admin::key(&config, command).await,
            Command::Index { repository, tenant, git_ref, full } => {
                code::index(&config, &tenant, &repository, git_ref, full).await
            }
            Command::Search { query, tenant, limit, repositories, path_glob, language, json } => {
                let args = code::SearchArgs { query, limit, repositories, path_glob, language, json };
                code::search(&config, &tenant, args).await
            }
            Command::Review { repository, number, tenant, no_post, json } => {
                review::review(&config, &tenant, &repository, number, !no_post, json).await
            }
            Command::Dlq { command } => review::dlq(&config, &env_for_up, command).await,
            Command::Stdio { url, key } => stdio::run(url, key).await.map_err(|err| {
                eprintln!("devops-mcp stdio: {err}");
                devops_runtime::Error::Serve(std::io::Error::other(err.to_string()))
            }),
        }
    })
}
