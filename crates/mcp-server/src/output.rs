//! Output limits. A result whose text is larger than the cap is cut at a
//! character boundary and ends with an explicit marker; the rest is kept for
//! a while under a tenant-scoped cursor that `continue_output` pages through.
//! Nothing is truncated silently.

use std::time::Duration;

use devops_adapters::cache::Cache;
use devops_errors::ErrorCode;
use devops_models::TenantId;
use uuid::Uuid;

use crate::registry::ToolError;

/// How long the rest of a truncated output can be fetched.
pub const CONTINUATION_TTL: Duration = Duration::from_secs(15 * 60);

/// A piece of output no larger than the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    pub text: String,
    /// Set when more follows: the cursor, bytes shown so far, and the total.
    pub truncation: Option<Truncation>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Truncation {
    pub cursor: String,
    pub shown_bytes: usize,
    pub total_bytes: usize,
}

fn cache_key(tenant: TenantId, cursor: &str) -> String {
    format!("mcp-output:{tenant}:{cursor}")
}

fn split_at_boundary(text: &str, max: usize) -> usize {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// Caps `text` at `max_bytes`, storing the remainder when it does not fit.
/// `already_shown` counts bytes of the same output returned by earlier pages.
pub async fn cap(
    cache: &dyn Cache,
    tenant: TenantId,
    text: String,
    max_bytes: usize,
    already_shown: usize,
) -> Result<Capped, ToolError> {
    if text.len() <= max_bytes {
        return Ok(Capped { text, truncation: None });
    }
    let cut = split_at_boundary(&text, max_bytes);
    let cursor = Uuid::new_v4().simple().to_string();
    let total_bytes = already_shown + text.len();
    let shown_bytes = already_shown + cut;
    let rest = serde_json::json!({ "shown": shown_bytes, "total": total_bytes, "text": &text[cut..] });
    cache
        .set(&cache_key(tenant, &cursor), rest.to_string().as_bytes(), CONTINUATION_TTL)
        .await
        .map_err(ToolError::from)?;
    let mut shown = text;
    shown.truncate(cut);
    shown.push_str(&format!(
        "\n\n[output truncated: {shown_bytes} of {total_bytes} bytes shown. \
         Call continue_output with cursor \"{cursor}\" for the rest.]"
    ));
    Ok(Capped { text: shown, truncation: Some(Truncation { cursor, shown_bytes, total_bytes }) })
}

/// The next page of a truncated output.
pub async fn resume(cache: &dyn Cache, tenant: TenantId, cursor: &str, max_bytes: usize) -> Result<Capped, ToolError> {
    let key = cache_key(tenant, cursor);
    let stored = cache.get(&key).await.map_err(ToolError::from)?.ok_or_else(|| {
        ToolError::new(ErrorCode::NotFound, "unknown or expired cursor; call the original tool again")
    })?;
    let rest: serde_json::Value =
        serde_json::from_slice(&stored).map_err(|e| ToolError::new(ErrorCode::Internal, e.to_string()))?;
    let text = rest["text"].as_str().unwrap_or_default().to_owned();
    let shown = usize::try_from(rest["shown"].as_u64().unwrap_or(0)).unwrap_or(0);
    let capped = cap(cache, tenant, text, max_bytes, shown).await?;
    cache.delete(&key).await.map_err(ToolError::from)?;
    Ok(capped)
}

#[cfg(test)]
mod tests {
    use devops_adapters::cache::MemoryCache;

    use super::*;

    #[tokio::test]
    async fn long_output_is_paged_through_cursors_without_loss() {
        let cache = MemoryCache::new();
        let tenant = TenantId::new();
        let text: String = (0..500).map(|n| format!("line {n} é\n")).collect();
        let mut first = cap(&cache, tenant, text.clone(), 1000, 0).await.expect("cap");
        let mut rebuilt = String::new();
        loop {
            let Some(truncation) = first.truncation.clone() else {
                rebuilt.push_str(&first.text);
                break;
            };
            assert!(first.text.contains(&truncation.cursor), "the marker names the cursor");
            let body = first.text.split("\n\n[output truncated").next().expect("body");
            assert!(body.len() <= 1000);
            rebuilt.push_str(body);
            assert!(resume(&cache, TenantId::new(), &truncation.cursor, 1000).await.is_err(), "cursors are per tenant");
            first = resume(&cache, tenant, &truncation.cursor, 1000).await.expect("resume");
        }
        assert_eq!(rebuilt, text);
    }

    #[tokio::test]
    async fn short_output_is_untouched() {
        let cache = MemoryCache::new();
        let capped = cap(&cache, TenantId::new(), "small".into(), 1000, 0).await.expect("cap");
        assert_eq!(capped, Capped { text: "small".into(), truncation: None });
    }
}
