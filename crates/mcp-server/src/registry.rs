//! The tool registry: every tool's description, annotations, schemas and
//! handler, and which of them one request may see.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use devops_adapters::blob::BlobStore;
use devops_adapters::cache::Cache;
use devops_errors::{ErrorCode, HasErrorCode};
use devops_models::Principal;
use devops_store::Store;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use rmcp::schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::policy::{Policy, Toolset};

/// How many tools one `tools/list` page holds.
pub const PAGE_SIZE: usize = 50;

/// What a tool does to the world, published as MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Adds or changes; calling again with the same arguments changes nothing more.
    IdempotentWrite,
    /// Adds or changes.
    Write,
    /// Deletes or overwrites; refused in read-only mode and marked destructive.
    Destructive,
}

/// Everything a handler may use for one call.
pub struct ToolContext {
    pub principal: Principal,
    pub store: Arc<dyn Store>,
    pub blob: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    pub indexer: devops_runtime::clients::Indexer,
    pub pull_requests: devops_runtime::clients::PullRequests,
    pub reviewer: devops_runtime::clients::Reviewer,
    /// Code hosts, through the tenant's provider connections.
    pub hosts: devops_providers::Hosts,
    /// Cancelled when the client cancels the request or the session ends.
    pub cancel: CancellationToken,
    pub progress: crate::handler::Progress,
}

/// A failed call, shown to the agent as a tool error with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ToolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ToolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl<E: HasErrorCode> From<E> for ToolError {
    fn from(err: E) -> Self {
        let code = err.code();
        if code.spec().http.is_server_error() {
            tracing::error!(error = %err, %code, "tool failed");
        }
        let api = devops_errors::ApiError::from_coded(&err);
        Self { code: api.code, message: api.message }
    }
}

/// A successful call: text for the agent, and the same as structured content.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    pub structured: Option<serde_json::Value>,
    /// The text is already within the output cap (a continuation page).
    pub precapped: bool,
}

impl ToolOutput {
    /// Pretty JSON as text, the value as structured content.
    pub fn json(value: &impl serde::Serialize) -> Result<Self, ToolError> {
        let structured = serde_json::to_value(value).map_err(|e| ToolError::new(ErrorCode::Internal, e.to_string()))?;
        let text = serde_json::to_string_pretty(&structured)
            .map_err(|e| ToolError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(Self { text, structured: Some(structured), precapped: false })
    }
}

#[async_trait]
pub trait ToolHandler: Send + Sync + 'static {
    async fn call(&self, ctx: &ToolContext, arguments: JsonObject) -> Result<ToolOutput, ToolError>;
}

/// Parses a tool's arguments into its argument type.
pub fn arguments<T: DeserializeOwned>(arguments: JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(serde_json::Value::Object(arguments))
        .map_err(|err| ToolError::invalid(format!("invalid arguments: {err}")))
}

pub struct ToolSpec {
    pub toolset: Toolset,
    pub effect: Effect,
    pub tool: Tool,
    pub handler: Arc<dyn ToolHandler>,
}

impl ToolSpec {
    /// Describes a tool whose arguments are `Args` and whose structured
    /// output is `Out`.
    pub fn new<Args: JsonSchema + 'static, Out: JsonSchema + 'static>(
        toolset: Toolset,
        name: &'static str,
        title: &str,
        description: &'static str,
        effect: Effect,
        handler: impl ToolHandler,
    ) -> Self {
        let mut tool = Tool::default();
        tool.name = name.into();
        tool.title = Some(title.to_owned());
        tool.description = Some(description.into());
        tool.input_schema = rmcp::handler::server::common::schema_for_type::<Args>();
        tool.output_schema = Some(rmcp::handler::server::common::schema_for_output::<Out>());
        tool.annotations = Some(ToolAnnotations::from_raw(
            Some(title.to_owned()),
            Some(effect == Effect::Read),
            Some(effect == Effect::Destructive),
            Some(matches!(effect, Effect::Read | Effect::IdempotentWrite)),
            Some(false),
        ));
        Self { toolset, effect, tool, handler: Arc::new(handler) }
    }

    /// Marks a tool that reaches systems outside DevOps MCP (a git host, a provider API).
    pub fn open_world(mut self) -> Self {
        if let Some(annotations) = self.tool.annotations.as_mut() {
            annotations.open_world_hint = Some(true);
        }
        self
    }

    pub fn allowed_by(&self, policy: &Policy, destructive_enabled: bool) -> bool {
        policy.toolsets.contains(&self.toolset)
            && !policy.disabled_tools.contains(self.tool.name.as_ref())
            && !(policy.read_only && self.effect != Effect::Read)
            && (destructive_enabled || self.effect != Effect::Destructive)
    }
}

/// All tools of this server, by name.
pub struct Registry {
    tools: BTreeMap<String, ToolSpec>,
    /// Operators can switch destructive tools off for the whole server.
    pub destructive_enabled: bool,
    /// The cap on one result's text.
    pub max_output_bytes: usize,
}

impl Registry {
    pub fn new(destructive_enabled: bool, max_output_bytes: usize) -> Self {
        Self { tools: BTreeMap::new(), destructive_enabled, max_output_bytes }
    }

    pub fn add(&mut self, spec: ToolSpec) {
        self.tools.insert(spec.tool.name.to_string(), spec);
    }

    /// The tools `policy` may see, in name order.
    pub fn visible<'a>(&'a self, policy: &'a Policy) -> impl Iterator<Item = &'a ToolSpec> + 'a {
        self.tools.values().filter(move |spec| spec.allowed_by(policy, self.destructive_enabled))
    }

    /// The definition of `name`, whoever asks.
    pub fn definition(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).map(|spec| spec.tool.clone())
    }

    /// The tool `name`, if `policy` may call it.
    pub fn get(&self, name: &str, policy: &Policy) -> Option<&ToolSpec> {
        self.tools.get(name).filter(|spec| spec.allowed_by(policy, self.destructive_enabled))
    }

    /// One page of visible tools, and the cursor of the next page.
    pub fn page(&self, policy: &Policy, cursor: Option<&str>) -> Result<(Vec<Tool>, Option<String>), ToolError> {
        let offset = match cursor {
            None => 0,
            Some(raw) => raw
                .strip_prefix("tools:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ToolError::invalid(format!("invalid cursor {raw:?}")))?,
        };
        let visible: Vec<&ToolSpec> = self.visible(policy).collect();
        let page: Vec<Tool> = visible.iter().skip(offset).take(PAGE_SIZE).map(|s| s.tool.clone()).collect();
        let next = (offset + PAGE_SIZE < visible.len()).then(|| format!("tools:{}", offset + PAGE_SIZE));
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use devops_models::{Principal, Scope, TenantId};

    use super::*;
    use crate::tools::core::{Identity, NoArguments};

    struct Noop;

    #[async_trait]
    impl ToolHandler for Noop {
        async fn call(&self, _ctx: &ToolContext, _arguments: JsonObject) -> Result<ToolOutput, ToolError> {
            Err(ToolError::invalid("noop"))
        }
    }

    fn policy(read_only: bool) -> Policy {
        Policy {
            principal: Principal { tenant_id: TenantId::new(), key_id: uuid::Uuid::nil(), scopes: vec![Scope::Write] },
            read_only,
            toolsets: BTreeSet::from([Toolset::Core, Toolset::Contexts]),
            disabled_tools: Default::default(),
        }
    }

    #[test]
    fn pages_cover_every_visible_tool_once() {
        const NAMES: [&str; 3] = ["a", "b", "c"];
        let mut registry = Registry::new(true, 1024);
        for n in 0..120 {
            let name: &'static str = Box::leak(format!("tool_{n:03}_{}", NAMES[n % 3]).into_boxed_str());
            let effect = if n % 2 == 0 { Effect::Read } else { Effect::Write };
            registry.add(ToolSpec::new::<NoArguments, Identity>(Toolset::Contexts, name, "t", "d", effect, Noop));
        }
        for (read_only, expected) in [(false, 120), (true, 60)] {
            let policy = policy(read_only);
            let (mut seen, mut cursor) = (Vec::new(), None::<String>);
            loop {
                let (page, next) = registry.page(&policy, cursor.as_deref()).expect("page");
                assert!(page.len() <= PAGE_SIZE);
                seen.extend(page.into_iter().map(|t| t.name.to_string()));
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let unique: BTreeSet<_> = seen.iter().collect();
            assert_eq!((seen.len(), unique.len()), (expected, expected));
        }
        assert!(registry.page(&policy(false), Some("garbage")).is_err());
    }
}
