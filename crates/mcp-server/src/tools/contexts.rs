//! Context management: an agent's working memory as ordered items under a
//! token budget. Items above the inline limit live in the blob store.

use async_trait::async_trait;
use bytes::Bytes;
use devops_models::{Context, ContextItem, ContextUpdate, NewContext, NewContextItem, Role, TrimPolicy};
use devops_store::Page;
use rmcp::model::JsonObject;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::policy::Toolset;
use crate::registry::{Effect, Registry, ToolContext, ToolError, ToolHandler, ToolOutput, ToolSpec, arguments};
use devops_models::sanitize::sanitize;

const DEFAULT_MAX_TOKENS: u64 = 100_000;
const MAX_ITEMS_PER_APPEND: usize = 100;
const DEFAULT_PAGE: u32 = 50;

pub fn register(registry: &mut Registry) {
    let specs = [
        ToolSpec::new::<CreateArgs, ContextView>(
            Toolset::Contexts,
            "create_context",
            "Create a context",
            "Creates a named context: ordered items (messages, notes, tool results) under a token budget.",
            Effect::Write,
            CreateContext,
        ),
        ToolSpec::new::<AppendArgs, AppendView>(
            Toolset::Contexts,
            "append_to_context",
            "Append to a context",
            "Appends items to a context. When the budget would be exceeded, the context's trim policy either drops \
             the oldest items or refuses the append.",
            Effect::Write,
            AppendToContext,
        ),
        ToolSpec::new::<GetArgs, ContextPage>(
            Toolset::Contexts,
            "get_context",
            "Read a context",
            "Returns a context and a page of its items in order. Pass next_after_seq as after_seq for the next page.",
            Effect::Read,
            GetContext,
        ),
        ToolSpec::new::<SearchArgs, SearchView>(
            Toolset::Contexts,
            "search_context",
            "Search contexts",
            "Finds items containing the query (case-insensitive), newest first, in one context or all of them.",
            Effect::Read,
            SearchContext,
        ),
        ToolSpec::new::<ListArgs, ContextList>(
            Toolset::Contexts,
            "list_contexts",
            "List contexts",
            "Lists the tenant's contexts.",
            Effect::Read,
            ListContexts,
        ),
        ToolSpec::new::<UpdateArgs, ContextView>(
            Toolset::Contexts,
            "update_context",
            "Update a context",
            "Renames a context or changes its description, budget or trim policy.",
            Effect::IdempotentWrite,
            UpdateContext,
        ),
        ToolSpec::new::<DeleteArgs, Deleted>(
            Toolset::Contexts,
            "delete_context",
            "Delete a context",
            "Deletes a context and all of its items. This cannot be undone.",
            Effect::Destructive,
            DeleteContext,
        ),
    ];
    for spec in specs {
        registry.add(spec);
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrimPolicyArg {
    DropOldest,
    Reject,
}

impl From<TrimPolicyArg> for TrimPolicy {
    fn from(arg: TrimPolicyArg) -> Self {
        match arg {
            TrimPolicyArg::DropOldest => TrimPolicy::DropOldest,
            TrimPolicyArg::Reject => TrimPolicy::Reject,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleArg {
    System,
    User,
    Assistant,
    Tool,
    Note,
}

impl From<RoleArg> for Role {
    fn from(arg: RoleArg) -> Self {
        match arg {
            RoleArg::System => Role::System,
            RoleArg::User => Role::User,
            RoleArg::Assistant => Role::Assistant,
            RoleArg::Tool => Role::Tool,
            RoleArg::Note => Role::Note,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub max_tokens: u64,
    /// `drop_oldest` or `reject`.
    pub trim_policy: String,
    pub token_count: u64,
    pub item_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Context> for ContextView {
    fn from(c: Context) -> Self {
        Self {
            id: c.id.to_string(),
            name: sanitize(&c.name).into_owned(),
            description: sanitize(&c.description).into_owned(),
            max_tokens: c.max_tokens,
            trim_policy: c.trim_policy.to_string(),
            token_count: c.token_count,
            item_count: c.item_count,
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemView {
    pub seq: u64,
    pub role: String,
    pub content: String,
    /// True when `content` is only the start of a large item; ask for
    /// `full_content` to get all of it.
    pub preview: bool,
    pub byte_len: u64,
    pub token_count: u64,
    pub created_at: String,
}

impl ItemView {
    fn new(item: ContextItem, full: Option<String>) -> Self {
        let preview = item.blob_key.is_some() && full.is_none();
        let content = full.unwrap_or(item.content);
        Self {
            seq: item.seq,
            role: item.role.to_string(),
            content: sanitize(&content).into_owned(),
            preview,
            byte_len: item.byte_len,
            token_count: item.token_count,
            created_at: item.created_at.to_rfc3339(),
        }
    }
}

fn context_id(raw: &str) -> Result<Uuid, ToolError> {
    raw.parse().map_err(|_| ToolError::invalid(format!("context_id {raw:?} is not a context id")))
}

fn limit(raw: Option<u32>) -> Result<u32, ToolError> {
    let limit = raw.unwrap_or(DEFAULT_PAGE);
    if (1..=Page::MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ToolError::invalid("limit must be between 1 and 200"))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// Unique within the tenant.
    pub name: String,
    pub description: Option<String>,
    /// Token budget; default 100000.
    pub max_tokens: Option<u64>,
    /// What to do when an append would exceed the budget; default drop_oldest.
    pub trim_policy: Option<TrimPolicyArg>,
}

struct CreateContext;

#[async_trait]
impl ToolHandler for CreateContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: CreateArgs = arguments(args)?;
        let new = NewContext {
            name: args.name,
            description: args.description.unwrap_or_default(),
            max_tokens: args.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            trim_policy: args.trim_policy.map_or(TrimPolicy::DropOldest, Into::into),
        };
        ToolOutput::json(&ContextView::from(ctx.store.create_context(ctx.principal.tenant_id, &new).await?))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ItemArg {
    pub role: RoleArg,
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AppendArgs {
    pub context_id: String,
    /// 1 to 100 items, appended in order.
    pub items: Vec<ItemArg>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppendView {
    pub context: ContextView,
    /// Sequence numbers given to the new items.
    pub appended: Vec<u64>,
    /// Sequence numbers of the items the trim policy dropped.
    pub dropped: Vec<u64>,
}

struct AppendToContext;

#[async_trait]
impl ToolHandler for AppendToContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: AppendArgs = arguments(args)?;
        let id = context_id(&args.context_id)?;
        if args.items.is_empty() || args.items.len() > MAX_ITEMS_PER_APPEND {
            return Err(ToolError::invalid("items must hold 1 to 100 items"));
        }
        let tenant = ctx.principal.tenant_id;
        // Fail early, before any blob is written, if the context is not the caller's.
        ctx.store.get_context(tenant, id).await?;
        let items: Vec<NewContextItem> =
            args.items.iter().map(|item| NewContextItem::new(id, item.role.into(), &item.content)).collect();
        let large: Vec<(&NewContextItem, &ItemArg)> =
            items.iter().zip(&args.items).filter(|(item, _)| item.blob_key.is_some()).collect();
        for (done, (item, arg)) in large.iter().enumerate() {
            if ctx.cancel.is_cancelled() {
                break;
            }
            if let Some(key) = &item.blob_key {
                ctx.blob.put(tenant, key, Bytes::from(arg.content.clone())).await?;
            }
            ctx.progress.report(done as u64 + 1, Some(large.len() as u64), "stored large item").await;
        }
        let written: Vec<&String> = large.iter().filter_map(|(item, _)| item.blob_key.as_ref()).collect();
        let outcome = match ctx.store.append_context_items(tenant, id, &items).await {
            Ok(outcome) => outcome,
            Err(err) => {
                for key in written {
                    let _ = ctx.blob.delete(tenant, key).await;
                }
                return Err(err.into());
            }
        };
        for key in outcome.dropped.iter().filter_map(|item| item.blob_key.as_ref()) {
            if let Err(err) = ctx.blob.delete(tenant, key).await {
                tracing::warn!(error = %err, "cannot delete a dropped item's blob");
            }
        }
        ToolOutput::json(&AppendView {
            appended: outcome.appended.iter().map(|i| i.seq).collect(),
            dropped: outcome.dropped.iter().map(|i| i.seq).collect(),
            context: outcome.context.into(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetArgs {
    pub context_id: String,
    /// Return items after this sequence number; default 0 (from the start).
    pub after_seq: Option<u64>,
    /// At most this many items (1-200, default 50).
    pub limit: Option<u32>,
    /// Fetch large items whole instead of their preview.
    pub full_content: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextPage {
    pub context: ContextView,
    pub items: Vec<ItemView>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    pub next_after_seq: Option<u64>,
}

struct GetContext;

#[async_trait]
impl ToolHandler for GetContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: GetArgs = arguments(args)?;
        let id = context_id(&args.context_id)?;
        let limit = limit(args.limit)?;
        let tenant = ctx.principal.tenant_id;
        let context = ctx.store.get_context(tenant, id).await?;
        let items = ctx.store.list_context_items(tenant, id, args.after_seq.unwrap_or(0), limit).await?;
        let next_after_seq = (items.len() == limit as usize).then(|| items.last().map(|i| i.seq)).flatten();
        let mut views = Vec::with_capacity(items.len());
        for item in items {
            let full = match (&item.blob_key, args.full_content.unwrap_or(false)) {
                (Some(key), true) => {
                    ctx.blob.get(tenant, key).await?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => None,
            };
            views.push(ItemView::new(item, full));
        }
        ToolOutput::json(&ContextPage { context: context.into(), items: views, next_after_seq })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    pub query: String,
    /// Search one context; omit to search all.
    pub context_id: Option<String>,
    /// At most this many hits (1-200, default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Hit {
    pub context_id: String,
    pub seq: u64,
    pub role: String,
    pub content: String,
    pub preview: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchView {
    pub hits: Vec<Hit>,
}

struct SearchContext;

#[async_trait]
impl ToolHandler for SearchContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: SearchArgs = arguments(args)?;
        if args.query.trim().is_empty() {
            return Err(ToolError::invalid("query must not be empty"));
        }
        let context = args.context_id.as_deref().map(context_id).transpose()?;
        let items =
            ctx.store.search_context_items(ctx.principal.tenant_id, context, &args.query, limit(args.limit)?).await?;
        let hits = items
            .into_iter()
            .map(|item| Hit {
                context_id: item.context_id.to_string(),
                seq: item.seq,
                role: item.role.to_string(),
                preview: item.blob_key.is_some(),
                content: sanitize(&item.content).into_owned(),
            })
            .collect();
        ToolOutput::json(&SearchView { hits })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// Return contexts after this id (the previous page's `next_after`).
    pub after: Option<String>,
    /// At most this many (1-200, default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextList {
    pub contexts: Vec<ContextView>,
    pub next_after: Option<String>,
}

struct ListContexts;

#[async_trait]
impl ToolHandler for ListContexts {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: ListArgs = arguments(args)?;
        let page = Page { after: args.after.as_deref().map(context_id).transpose()?, limit: limit(args.limit)? };
        let contexts = ctx.store.list_contexts(ctx.principal.tenant_id, page).await?;
        let next_after =
            (contexts.len() == page.limit as usize).then(|| contexts.last().map(|c| c.id.to_string())).flatten();
        ToolOutput::json(&ContextList { contexts: contexts.into_iter().map(Into::into).collect(), next_after })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    pub context_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Cannot go below the tokens the context holds.
    pub max_tokens: Option<u64>,
    pub trim_policy: Option<TrimPolicyArg>,
}

struct UpdateContext;

#[async_trait]
impl ToolHandler for UpdateContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: UpdateArgs = arguments(args)?;
        let update = ContextUpdate {
            name: args.name,
            description: args.description,
            max_tokens: args.max_tokens,
            trim_policy: args.trim_policy.map(Into::into),
        };
        let context = ctx.store.update_context(ctx.principal.tenant_id, context_id(&args.context_id)?, &update).await?;
        ToolOutput::json(&ContextView::from(context))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteArgs {
    pub context_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    pub deleted: String,
}

struct DeleteContext;

#[async_trait]
impl ToolHandler for DeleteContext {
    async fn call(&self, ctx: &ToolContext, args: JsonObject) -> Result<ToolOutput, ToolError> {
        let args: DeleteArgs = arguments(args)?;
        let id = context_id(&args.context_id)?;
        let tenant = ctx.principal.tenant_id;
        for key in ctx.store.delete_context(tenant, id).await? {
            if let Err(err) = ctx.blob.delete(tenant, &key).await {
                tracing::warn!(error = %err, "cannot delete a deleted context's blob");
            }
        }
        ToolOutput::json(&Deleted { deleted: id.to_string() })
    }
}
