//! The MCP server handler: lists and calls tools under the request's
//! policy, caps output, strips hidden characters, honours cancellation and
//! progress, and audits every call.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::http::request::Parts;
use devops_adapters::blob::BlobStore;
use devops_adapters::cache::Cache;
use devops_models::{AuditOutcome, NewAuditEntry, Principal};
use devops_store::Store;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, SubscriptionContext};
// Logging is deprecated by SEP-2577; older clients (and the conformance suite) still set levels.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};

use crate::policy::{Policy, Toolset};
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::resources::{self, ContextChange, SessionSubscriptions};
use crate::session_posts::DirectCalls;
use crate::session_routes::PeerSlot;
use crate::{conformance, output, prompts};
use devops_models::sanitize::sanitize;

pub const TOOL_CALLS_TOTAL: &str = "mcp_tool_calls_total";
pub const TOOL_CALL_DURATION_SECONDS: &str = "mcp_tool_call_duration_seconds";

/// Reports progress to the client when it asked for it (sent a progress token).
#[derive(Clone)]
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
}

impl Progress {
    pub async fn report(&self, done: u64, total: Option<u64>, message: &str) {
        let Some(token) = self.token.clone() else { return };
        let mut param = ProgressNotificationParam::new(token, done as f64).with_message(message);
        if let Some(total) = total {
            param = param.with_total(total as f64);
        }
        if let Err(err) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %err, "cannot send progress");
        }
    }
}

/// What every session's handler shares.
pub struct Shared {
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub blob: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    pub indexer: devops_runtime::clients::Indexer,
    pub pull_requests: devops_runtime::clients::PullRequests,
    pub reviewer: devops_runtime::clients::Reviewer,
    pub hosts: devops_providers::Hosts,
    /// The tools each tenant switched off, kept fresh.
    pub tenant_tools: Arc<crate::tenant_tools::TenantTools>,
    /// The conformance suite's fixtures, in test deployments only.
    pub conformance: Option<Arc<conformance::Fixtures>>,
    /// Announces context changes to subscribed sessions.
    pub context_changes: tokio::sync::broadcast::Sender<ContextChange>,
    /// Writes the audit record of tool calls.
    pub audit: crate::audit::AuditWriter,
}

#[derive(Clone)]
pub struct DevopsMcp {
    shared: Arc<Shared>,
    /// This session's resource subscriptions.
    subscriptions: SessionSubscriptions,
}

impl DevopsMcp {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared, subscriptions: SessionSubscriptions::default() }
    }

    /// The change a successful call of `spec` with `arguments` makes to the
    /// tenant's contexts, if any, for subscribers.
    fn context_change(policy: &Policy, spec: &ToolSpec, arguments: &rmcp::model::JsonObject) -> Option<ContextChange> {
        if spec.toolset != Toolset::Contexts || spec.effect == Effect::Read {
            return None;
        }
        let tenant = policy.principal.tenant_id;
        Some(match arguments.get("context_id").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()) {
            Some(context) => ContextChange::Updated { tenant, context },
            None => ContextChange::Created { tenant },
        })
    }

    fn policy(&self, context: &RequestContext<RoleServer>) -> Result<Policy, McpError> {
        self.policy_of(&context.extensions).ok_or_else(unauthenticated)
    }

    /// The request's principal, which only authentication puts there.
    fn principal(extensions: &rmcp::model::Extensions) -> Result<&Principal, McpError> {
        extensions.get::<Parts>().and_then(|parts| parts.extensions.get::<Principal>()).ok_or_else(unauthenticated)
    }

    /// The request's policy, with the tools its tenant switched off.
    fn policy_of(&self, extensions: &rmcp::model::Extensions) -> Option<Policy> {
        let mut policy = extensions.get::<Parts>().and_then(Policy::from_parts)?;
        policy.disabled_tools = self.shared.tenant_tools.disabled(policy.principal.tenant_id);
        Some(policy)
    }

    async fn audit(&self, policy: &Policy, tool: &str, started: Instant, outcome: Result<(), &ToolError>) {
        let (result, detail) = match outcome {
            Ok(()) => (AuditOutcome::Success, serde_json::json!({})),
            Err(err) => (AuditOutcome::Failure, serde_json::json!({ "error_code": err.code })),
        };
        let entry = NewAuditEntry {
            actor_key_id: Some(policy.principal.key_id),
            action: "tool.call".into(),
            target: Some(tool.to_owned()),
            outcome: result,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail,
        };
        self.shared.audit.record(policy.principal.tenant_id, entry).await;
    }

    async fn render(&self, policy: &Policy, output: ToolOutput) -> Result<CallToolResult, ToolError> {
        if output.precapped {
            return Ok(capped_result(output::Capped { text: output.text, truncation: None }, output.structured));
        }
        // Copy only when something had to be stripped.
        let text = if let Cow::Owned(clean) = sanitize(&output.text) { clean } else { output.text };
        let max = self.shared.registry.max_output_bytes;
        let capped = output::cap(self.shared.cache.as_ref(), policy.principal.tenant_id, text, max, 0).await?;
        Ok(capped_result(capped, output.structured))
    }
}

/// A result from capped text; structured content is kept only when nothing was cut.
pub fn capped_result(capped: output::Capped, structured: Option<serde_json::Value>) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(capped.text)]);
    match capped.truncation {
        None => result.structured_content = structured,
        Some(truncation) => {
            let mut meta = MetaObject::new();
            meta.0.insert("devops-mcp/truncated".into(), serde_json::json!(truncation));
            result.meta = Some(meta);
        }
    }
    result
}

fn unauthenticated() -> McpError {
    McpError::invalid_request("unauthenticated", None)
}

/// A tool error: the text names the code. The code also travels in `_meta`,
/// not in structured content, which clients check against the tool's output
/// schema even on errors.
fn cancelled() -> ToolError {
    ToolError::new(devops_errors::ErrorCode::Timeout, "cancelled by the client")
}

fn error_result(err: &ToolError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("error [{}]: {}", err.code, err.message))]);
    let mut meta = MetaObject::new();
    meta.0.insert("devops-mcp/error".into(), serde_json::json!({ "code": err.code, "message": err.message }));
    result.meta = Some(meta);
    result
}

/// A tool call needs no state of its session's handler (only the shared
/// services, the request's policy and the session's peer), so one handler
/// serves the calls of every session beside their services.
impl DirectCalls for DevopsMcp {
    fn serves_beside(&self, tool: &str) -> bool {
        !(self.shared.conformance.is_some() && conformance::asks_the_client(tool))
    }

    fn call(
        self: Arc<Self>,
        request: rmcp::model::ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> futures::future::BoxFuture<'static, Result<rmcp::model::ServerResult, McpError>> {
        Box::pin(async move { rmcp::Service::handle_request(self.as_ref(), request, context).await })
    }
}

impl ServerHandler for DevopsMcp {
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let builder = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_tool_list_changed();
        let mut capabilities = builder.build();
        if self.shared.conformance.is_none() {
            // Logging and prompt list changes exist only for the fixtures so far.
            capabilities.logging = None;
            if let Some(prompts) = capabilities.prompts.as_mut() {
                prompts.list_changed = None;
            }
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("devops-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "DevOps MCP: contexts, code hosts, trackers, code search and reviews through one tool set. \
                 Select toolsets with the X-MCP-Toolsets header; X-MCP-Readonly: true hides every tool that changes state.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let policy = self.policy(&context)?;
        let cursor = request.and_then(|r| r.cursor);
        let (tools, next) = self
            .shared
            .registry
            .page(&policy, cursor.as_deref())
            .map_err(|err| McpError::invalid_params(err.message, None))?;
        let tools = match &self.shared.conformance {
            // Fixtures first: the suite calls the first listed tool with no arguments.
            Some(_) if cursor.is_none() => conformance::tools().iter().cloned().chain(tools).collect(),
            _ => tools,
        };
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        if let Some(fixtures) = &self.shared.conformance
            && conformance::is_fixture(&name)
        {
            // The fixtures need an authenticated caller, not its policy.
            Self::principal(&context.extensions)?;
            let progress = Progress { peer: context.peer.clone(), token: context.meta.get_progress_token() };
            // Boxed: the fixtures' future is large, and inline it would size
            // (and be copied with) every call's future.
            return tokio::select! {
                response = Box::pin(conformance::call(fixtures, request, &context, &progress)) => response,
                () = context.ct.cancelled() => Ok(error_result(&cancelled()).into()),
            };
        }
        let policy = self.policy(&context)?;
        let Some(spec) = self.shared.registry.get(&name, &policy) else {
            return Err(McpError::invalid_params(format!("unknown tool: {name}"), None));
        };
        let started = Instant::now();
        let ctx = ToolContext {
            principal: policy.principal.clone(),
            store: self.shared.store.clone(),
            blob: self.shared.blob.clone(),
            cache: self.shared.cache.clone(),
            indexer: self.shared.indexer.clone(),
            pull_requests: self.shared.pull_requests.clone(),
            hosts: self.shared.hosts.clone(),
            reviewer: self.shared.reviewer.clone(),
            cancel: context.ct.clone(),
            progress: Progress { peer: context.peer.clone(), token: context.meta.get_progress_token() },
        };
        let arguments = request.arguments.unwrap_or_default();
        let change = Self::context_change(&policy, spec, &arguments);
        let outcome = tokio::select! {
            outcome = spec.handler.call(&ctx, arguments) => outcome,
            () = context.ct.cancelled() => Err(cancelled()),
        };
        let outcome = match outcome {
            Ok(output) => self.render(&policy, output).await,
            Err(err) => Err(err),
        };
        if let Some(change) = change.filter(|_| outcome.is_ok()) {
            // No receiver just means nobody subscribed.
            let _ = self.shared.context_changes.send(change);
        }
        self.audit(&policy, &name, started, outcome.as_ref().map(|_| ())).await;
        let labels = [("tool", name), ("outcome", if outcome.is_ok() { "ok" } else { "error" }.to_owned())];
        metrics::counter!(TOOL_CALLS_TOTAL, &labels).increment(1);
        metrics::histogram!(TOOL_CALL_DURATION_SECONDS, &labels).record(started.elapsed().as_secs_f64());
        Ok(match outcome {
            Ok(result) => result,
            Err(err) => error_result(&err),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let policy = self.policy(&context)?;
        let mut resources = resources::list(self.shared.store.as_ref(), policy.principal.tenant_id).await?;
        if self.shared.conformance.is_some() {
            resources.extend(conformance::resources()?);
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.policy(&context)?;
        let templates = if self.shared.conformance.is_some() { conformance::resource_templates()? } else { Vec::new() };
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let policy = self.policy(&context)?;
        if let Some(id) = resources::parse_uri(&request.uri) {
            return resources::read(self.shared.store.as_ref(), policy.principal.tenant_id, id).await.map(Into::into);
        }
        if self.shared.conformance.is_some() {
            return conformance::read_resource(&request.uri).map(Into::into);
        }
        Err(McpError::invalid_params(
            format!("no resource {}", request.uri),
            Some(serde_json::json!({ "uri": request.uri })),
        ))
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let policy = self.policy(&context)?;
        let tenant = policy.principal.tenant_id;
        if let Some(id) = resources::parse_uri(&request.uri) {
            // Only the tenant's own contexts can be watched.
            resources::read(self.shared.store.as_ref(), tenant, id).await?;
            resources::subscribe(
                &self.subscriptions,
                request.uri,
                tenant,
                context.peer.clone(),
                &self.shared.context_changes,
            );
            return Ok(());
        }
        if self.shared.conformance.is_some() {
            conformance::read_resource(&request.uri)?;
            return Ok(());
        }
        Err(McpError::invalid_params(
            format!("no resource {}", request.uri),
            Some(serde_json::json!({ "uri": request.uri })),
        ))
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.policy(&context)?;
        resources::unsubscribe(&self.subscriptions, &request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.policy(&context)?;
        let mut prompts = prompts::list();
        if self.shared.conformance.is_some() {
            prompts.extend(conformance::prompts()?);
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let policy = self.policy(&context)?;
        if prompts::is_prompt(&request.name) {
            let arguments = request.arguments.unwrap_or_default();
            return prompts::get(self.shared.store.as_ref(), policy.principal.tenant_id, &request.name, &arguments)
                .await
                .map(Into::into);
        }
        if self.shared.conformance.is_some() {
            return conformance::get_prompt_or_ask(&request);
        }
        Err(McpError::invalid_params(format!("unknown prompt: {}", request.name), None))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let policy = self.policy(&context)?;
        if request.argument.name == "context_id" {
            let values = prompts::complete_context_id(
                self.shared.store.as_ref(),
                policy.principal.tenant_id,
                &request.argument.value,
            )
            .await;
            let result =
                serde_json::json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } });
            let mut result: CompleteResult =
                serde_json::from_value(result).map_err(|e| McpError::internal_error(e.to_string(), None))?;
            result.result_type = Some(rmcp::model::ResultType::COMPLETE);
            return Ok(result);
        }
        if self.shared.conformance.is_some() {
            return conformance::complete();
        }
        Ok(CompleteResult::default())
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.policy(&context)?;
        Ok(())
    }

    /// A tool's definition regardless of policy, for the SDK's validation of
    /// `Mcp-Param-*` headers against the tool's schema.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        if self.shared.conformance.is_some()
            && let Some(tool) = conformance::tools().iter().find(|t| t.name == name).cloned()
        {
            return Some(tool);
        }
        self.shared.registry.definition(name)
    }

    /// A session with a stream open hears when its tenant's tools change.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(slot) = context.extensions.get::<PeerSlot>() {
            slot.fill(context.peer.clone());
        }
        let Some(policy) = self.policy_of(&context.extensions) else { return };
        let tenant = policy.principal.tenant_id;
        let mut changes = self.shared.tenant_tools.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            let mut check = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tokio::select! {
                    changed = changes.recv() => match changed {
                        Ok(t) if t == tenant => {
                            if peer.notify_tool_list_changed().await.is_err() {
                                return; // the session is gone
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = check.tick() => if peer.is_transport_closed() {
                        return;
                    },
                }
            }
        });
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        let mut accepted = match &self.shared.conformance {
            Some(_) => conformance::Fixtures::accept(requested),
            None => SubscriptionFilter::new(),
        };
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    /// The 2026-07-28 form of subscriptions: context changes of the caller's
    /// tenant, and the fixtures' list changes in test deployments. The sink
    /// drops whatever the accepted filter does not cover.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let tenant = self.policy(context.request_context())?.principal.tenant_id;
        let mut contexts = self.shared.context_changes.subscribe();
        let mut tools = self.shared.tenant_tools.subscribe();
        let mut fixtures = self.shared.conformance.as_ref().map(|f| f.changes.subscribe());
        let fixture_change =
            async |fixtures: &mut Option<tokio::sync::broadcast::Receiver<conformance::ListChange>>| match fixtures {
                Some(receiver) => receiver.recv().await.ok(),
                None => std::future::pending().await,
            };
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = contexts.recv() => match change {
                    Ok(ContextChange::Updated { tenant: t, context: id }) if t == tenant => {
                        let _ = context.sink().notify_resource_updated(resources::uri(id)).await;
                    }
                    Ok(ContextChange::Created { tenant: t }) if t == tenant => {
                        let _ = context.sink().notify_resource_list_changed().await;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                changed = tools.recv() => match changed {
                    Ok(t) if t == tenant => {
                        let _ = context.sink().notify_tool_list_changed().await;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                change = fixture_change(&mut fixtures) => {
                    let _ = match change {
                        Some(conformance::ListChange::Tools) => context.sink().notify_tool_list_changed().await,
                        Some(conformance::ListChange::Prompts) => context.sink().notify_prompt_list_changed().await,
                        None => return Ok(()),
                    };
                }
            }
        }
    }
}
