//! Tools every session has: who am I, and the rest of a truncated output.

use async_trait::async_trait;
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::output;
use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};

pub fn register(registry: &mut Registry) {
    registry.add(ToolSpec::new::<NoArguments, Identity>(
        Toolset::Core,
        "whoami",
        "Who am I",
        "Returns the tenant and scopes of the credential this session uses.",
        Effect::Read,
        Whoami,
    ));
    registry.add(ToolSpec::new::<ContinueArgs, Continuation>(
        Toolset::Core,
        "continue_output",
        "Continue a truncated output",
        "Returns the next part of a tool output that was truncated. Pass the cursor named in the truncation marker.",
        Effect::Read,
        ContinueOutput { max_bytes: registry.max_output_bytes },
    ));
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoArguments {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Identity {
    pub tenant_id: String,
    pub tenant_name: String,
    pub key_id: String,
    pub scopes: Vec<String>,
}

struct Whoami;

#[async_trait]
impl ToolHandler for Whoami {
    async fn call(&self, ctx: &ToolContext, _arguments: JsonObject) -> Result<ToolOutput, ToolError> {
        let tenant = ctx.store.get_tenant(ctx.principal.tenant_id).await?;
        ToolOutput::json(&Identity {
            tenant_id: tenant.id.to_string(),
            tenant_name: tenant.name,
            key_id: ctx.principal.key_id.to_string(),
            scopes: ctx.principal.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ContinueArgs {
    /// The cursor from the truncation marker.
    pub cursor: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Continuation {
    /// The next part, ending with a truncation marker if more follows.
    pub text: String,
    /// Present when more follows.
    pub truncation: Option<ContinuationCursor>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContinuationCursor {
    pub cursor: String,
    pub shown_bytes: usize,
    pub total_bytes: usize,
}

struct ContinueOutput {
    max_bytes: usize,
}

#[async_trait]
impl ToolHandler for ContinueOutput {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ContinueArgs = arguments(args)?;
        let capped = output::resume(ctx.cache.as_ref(), ctx.principal.tenant_id, &args.cursor, self.max_bytes).await?;
        let structured = match &capped.truncation {
            None => Some(serde_json::json!({ "text": capped.text })),
            Some(truncation) => Some(serde_json::json!({ "text": capped.text, "truncation": truncation })),
        };
        Ok(ToolOutput { text: capped.text, structured, precapped: true })
    }
}
