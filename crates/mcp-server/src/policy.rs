//! What one request may see and do: the key's scopes, narrowed by the
//! `X-MCP-Toolsets` and `X-MCP-Readonly` headers. Headers can narrow, never
//! widen: a read-only key stays read-only whatever the header says.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use axum::http::request::Parts;
use devops_models::{Principal, Scope};

pub const TOOLSETS_HEADER: &str = "x-mcp-toolsets";
pub const READONLY_HEADER: &str = "x-mcp-readonly";

/// Groups of tools. `Core` is always on; the rest are chosen per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolset {
    Core,
    Contexts,
    Repos,
    Issues,
    PullRequests,
    Reviews,
    Search,
    Wiki,
    Workflows,
    Upstream,
}

impl Toolset {
    pub const SELECTABLE: [Toolset; 9] = [
        Toolset::Contexts,
        Toolset::Repos,
        Toolset::Issues,
        Toolset::PullRequests,
        Toolset::Reviews,
        Toolset::Search,
        Toolset::Wiki,
        Toolset::Workflows,
        Toolset::Upstream,
    ];

    /// What a request gets when it names no toolsets: a small set.
    pub const DEFAULT: [Toolset; 2] = [Toolset::Contexts, Toolset::Search];

    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Core => "core",
            Toolset::Contexts => "contexts",
            Toolset::Repos => "repos",
            Toolset::Issues => "issues",
            Toolset::PullRequests => "pull_requests",
            Toolset::Reviews => "reviews",
            Toolset::Search => "search",
            Toolset::Wiki => "wiki",
            Toolset::Workflows => "workflows",
            Toolset::Upstream => "upstream",
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Toolset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Toolset::SELECTABLE.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown toolset {s:?}"))
    }
}

/// The effective permissions of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub principal: Principal,
    pub read_only: bool,
    pub toolsets: BTreeSet<Toolset>,
    /// Tools the tenant's admins switched off for every key.
    pub disabled_tools: std::sync::Arc<BTreeSet<String>>,
}

impl Policy {
    /// Builds the policy from the authenticated principal and the request
    /// headers. Unknown toolset names are ignored rather than failing the
    /// session, so older servers accept newer clients.
    pub fn from_parts(parts: &Parts) -> Option<Policy> {
        let principal = parts.extensions.get::<Principal>()?.clone();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let requested: Option<BTreeSet<Toolset>> = header(TOOLSETS_HEADER).map(|list| {
            list.split(',').map(str::trim).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
        });
        let mut toolsets: BTreeSet<Toolset> = requested.unwrap_or_else(|| Toolset::DEFAULT.into_iter().collect());
        toolsets.insert(Toolset::Core);
        let header_read_only = header(READONLY_HEADER).is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        let read_only = header_read_only || !principal.has(Scope::Write);
        Some(Policy { principal, read_only, toolsets, disabled_tools: std::sync::Arc::default() })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use devops_models::TenantId;

    use super::*;

    fn parts(scopes: Vec<Scope>, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).expect("request").into_parts();
        parts.extensions.insert(Principal { tenant_id: TenantId::new(), key_id: uuid::Uuid::nil(), scopes });
        parts
    }

    #[test]
    fn headers_narrow_but_never_widen() {
        let default = Policy::from_parts(&parts(vec![Scope::Write], &[])).expect("policy");
        assert_eq!(default.toolsets, BTreeSet::from([Toolset::Core, Toolset::Contexts, Toolset::Search]));
        assert!(!default.read_only);

        let narrowed = Policy::from_parts(&parts(vec![Scope::Admin], &[("x-mcp-readonly", "true")])).expect("p");
        assert!(narrowed.read_only);

        let widened = Policy::from_parts(&parts(vec![Scope::Read], &[("x-mcp-readonly", "false")])).expect("p");
        assert!(widened.read_only, "a read key stays read-only");

        let chosen =
            Policy::from_parts(&parts(vec![Scope::Write], &[("x-mcp-toolsets", "search, nonsense,repos")])).expect("p");
        assert_eq!(chosen.toolsets, BTreeSet::from([Toolset::Core, Toolset::Repos, Toolset::Search]));
    }
}
