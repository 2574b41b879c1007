//! Contexts: an agent's conversation or working memory, as ordered items
//! under a token budget. Large items live in the blob store; the row keeps a
//! preview for listing and search.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;

/// Items larger than this many bytes go to the blob store.
pub const INLINE_LIMIT_BYTES: usize = 8 * 1024;
/// Characters of a large item kept in the row, for listing and search.
pub const PREVIEW_CHARS: usize = 1024;

/// What happens when an append would exceed the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrimPolicy {
    /// Drop the oldest items until the new ones fit.
    DropOldest,
    /// Refuse the append.
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
    Note,
}

macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }
    };
}

string_enum!(TrimPolicy { DropOldest => "drop_oldest", Reject => "reject" });
string_enum!(Role { System => "system", User => "user", Assistant => "assistant", Tool => "tool", Note => "note" });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: String,
    pub max_tokens: u64,
    pub trim_policy: TrimPolicy,
    pub token_count: u64,
    pub item_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContext {
    pub name: String,
    pub description: String,
    pub max_tokens: u64,
    pub trim_policy: TrimPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub max_tokens: Option<u64>,
    pub trim_policy: Option<TrimPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextItem {
    pub id: Uuid,
    pub context_id: Uuid,
    /// Position in the context, increasing, never reused.
    pub seq: u64,
    pub role: Role,
    /// The whole content, or a preview when `blob_key` is set.
    pub content: String,
    pub blob_key: Option<String>,
    pub byte_len: u64,
    pub token_count: u64,
    pub created_at: DateTime<Utc>,
}

/// An item ready to store; build it with [`NewContextItem::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContextItem {
    pub id: Uuid,
    pub role: Role,
    pub content: String,
    pub blob_key: Option<String>,
    pub byte_len: u64,
    pub token_count: u64,
}

impl NewContextItem {
    /// Prepares `content`; when it is too large to keep inline, the caller
    /// must store the full text in the blob store under the returned `blob_key`.
    pub fn new(context_id: Uuid, role: Role, content: &str) -> Self {
        let id = Uuid::now_v7();
        let byte_len = content.len() as u64;
        let token_count = estimate_tokens(content);
        if content.len() <= INLINE_LIMIT_BYTES {
            return Self { id, role, content: content.to_owned(), blob_key: None, byte_len, token_count };
        }
        let preview: String = content.chars().take(PREVIEW_CHARS).collect();
        let blob_key = format!("contexts/{context_id}/{id}.txt");
        Self { id, role, content: preview, blob_key: Some(blob_key), byte_len, token_count }
    }
}

/// What an append did: the stored items, and the items the trim policy
/// dropped (whose blobs the caller deletes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub context: Context,
    pub appended: Vec<ContextItem>,
    pub dropped: Vec<ContextItem>,
}

/// A token estimate good to a few percent for English text and code with
/// common BPE vocabularies: one token per word-ish run of up to four
/// characters, one per punctuation mark. Deterministic and allocation-free.
pub fn estimate_tokens(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut run = 0u32;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if run.is_multiple_of(4) {
                tokens += 1;
            }
            run += 1;
        } else {
            run = 0;
            if !c.is_whitespace() {
                tokens += 1;
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates_are_plausible() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("hello world"), 4);
        assert_eq!(estimate_tokens("fn main() {}"), 6);
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(10);
        let estimate = estimate_tokens(&prose);
        assert!((90..=160).contains(&estimate), "{estimate}");
    }

    #[test]
    fn large_items_move_to_the_blob_store() {
        let context = Uuid::now_v7();
        let small = NewContextItem::new(context, Role::User, "hi");
        assert_eq!(small.blob_key, None);
        let big = "x".repeat(INLINE_LIMIT_BYTES + 1);
        let item = NewContextItem::new(context, Role::Tool, &big);
        assert!(item.blob_key.as_deref().is_some_and(|k| k.starts_with(&format!("contexts/{context}/"))));
        assert_eq!(item.content.len(), PREVIEW_CHARS);
        assert_eq!(item.byte_len, big.len() as u64);
    }

    #[test]
    fn enums_round_trip_as_text() {
        assert_eq!("drop_oldest".parse::<TrimPolicy>(), Ok(TrimPolicy::DropOldest));
        assert_eq!(Role::Assistant.to_string(), "assistant");
        assert!("boss".parse::<Role>().is_err());
    }
}
