//! `devops-mcp review` and `devops-mcp dlq`: reviews through the running
//! reviewer, and the queue's dead letters, from a terminal.

use devops_config::Config;
use devops_proto::reviewer::v1 as pb;
use devops_runtime::{Error, Result};

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Move dead letters back onto the queue.
    Redrive {
        #[arg(long, default_value_t = 100)]
        max: u32,
    },
}

pub async fn review(
    config: &Config,
    tenant: &str,
    repository: &str,
    number: u64,
    post: bool,
    json: bool,
) -> Result<()> {
    let store = crate::admin::connect(config).await?;
    let tenant = crate::admin::resolve_tenant(store.as_ref(), tenant).await?;
    let request = pb::ReviewPullRequestRequest {
        tenant_id: tenant.id.to_string(),
        repository_url: crate::code::repository_argument(repository),
        number,
        post,
    };
    let mut client = devops_runtime::clients::reviewer(config)?;
    let review = client.review_pull_request(request).await.map_err(|s| crate::code::failed("review", s))?.into_inner();
    if json {
        let findings: Vec<serde_json::Value> = review
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({"file": f.file, "line": f.line, "severity": f.severity, "category": f.category,
                    "rule": f.rule, "message": f.message, "suggestion": f.suggestion, "confidence": f.confidence})
            })
            .collect();
        let out = serde_json::json!({"id": review.id, "status": review.status, "security_score": review.security_score,
            "quality_score": review.quality_score, "findings": findings});
        println!("{out}");
        return Ok(());
    }
    println!(
        "review {} of #{number} ({}): security {:.0}/100, quality {:.0}/100, {} finding(s)",
        review.id,
        review.status,
        review.security_score,
        review.quality_score,
        review.findings.len()
    );
    for f in &review.findings {
        println!("{:>8}  {}:{}  {}  {}", f.severity, f.file, f.line, f.rule, f.message);
    }
    Ok(())
}

pub async fn dlq(config: &Config, env: &[(String, String)], command: DlqCommand) -> Result<()> {
    let backends = devops_runtime::Backends::connect(config, &[devops_runtime::Backend::Queue], env).await?;
    let queue = backends.queue()?;
    match command {
        DlqCommand::List { limit } => {
            let letters = queue.list_dead_letters(limit.clamp(1, 100)).await.map_err(Error::from)?;
            for letter in &letters {
                println!("{}\t{}", letter.message_id, letter.body);
            }
            eprintln!("{} dead letter(s)", letters.len());
        }
        DlqCommand::Redrive { max } => {
            let moved = queue.redrive(max.clamp(1, 1000)).await.map_err(Error::from)?;
            println!("{moved} dead letter(s) moved back to the queue");
        }
    }
    Ok(())
}
