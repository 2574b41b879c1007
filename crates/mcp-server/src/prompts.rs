//! Prompts built from a tenant's stored data.

use devops_models::TenantId;
use devops_store::Store;
use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, ResultType, Role};
use uuid::Uuid;

use devops_models::sanitize::sanitize;

const ITEMS_IN_PROMPT: u32 = 200;

pub fn list() -> Vec<Prompt> {
    let context_arg =
        || vec![PromptArgument::new("context_id").with_description("The context to use").with_required(true)];
    vec![
        Prompt::new(
            "summarize_context",
            Some("Summarise a context: decisions, open questions and next steps"),
            Some(context_arg()),
        ),
        Prompt::new(
            "handoff_context",
            Some("Write a hand-off note so another agent or person can continue the work in a context"),
            Some(context_arg()),
        ),
    ]
}

pub fn is_prompt(name: &str) -> bool {
    matches!(name, "summarize_context" | "handoff_context")
}

pub async fn get(
    store: &dyn Store,
    tenant: TenantId,
    name: &str,
    arguments: &JsonObject,
) -> Result<GetPromptResult, McpError> {
    let id: Uuid = arguments
        .get("context_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| McpError::invalid_params("context_id must be a context id", None))?;
    let context = store.get_context(tenant, id).await.map_err(|_| McpError::invalid_params("no such context", None))?;
    let items = store
        .list_context_items(tenant, id, 0, ITEMS_IN_PROMPT)
        .await
        .map_err(|_| McpError::internal_error("context store unavailable", None))?;
    let transcript: String =
        items.iter().map(|i| format!("[{} #{}] {}\n", i.role, i.seq, sanitize(&i.content))).collect();
    let task = match name {
        "summarize_context" => {
            "Summarise the working memory below. List the decisions taken, the open questions, and the next steps, \
             each as short bullet points, citing item numbers (#n)."
        }
        _ => {
            "Write a hand-off note for whoever continues this work: the goal, what has been done, the current state, \
             known pitfalls, and the first three things to do next. Cite item numbers (#n) for facts."
        }
    };
    let text = format!(
        "{task}\n\nContext \"{}\" ({} items, {} tokens):\n\n{transcript}",
        sanitize(&context.name),
        context.item_count,
        context.token_count
    );
    let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
    result.description = Some(format!("{name} for {}", sanitize(&context.name)));
    result.result_type = Some(ResultType::COMPLETE);
    Ok(result)
}

/// Completes a `context_id` argument with the tenant's context ids whose id
/// or name starts with what was typed.
pub async fn complete_context_id(store: &dyn Store, tenant: TenantId, typed: &str) -> Vec<String> {
    let Ok(contexts) = store.list_contexts(tenant, devops_store::Page::first(devops_store::Page::MAX_LIMIT)).await
    else {
        return Vec::new();
    };
    contexts
        .into_iter()
        .filter(|c| c.id.to_string().starts_with(typed) || c.name.starts_with(typed))
        .map(|c| c.id.to_string())
        .take(100)
        .collect()
}
