//! Webhooks: each host's signature scheme and payloads, turned into our
//! events. GitHub signs the raw body with HMAC-SHA256
//! (`X-Hub-Signature-256`); GitLab sends the shared token
//! (`X-Gitlab-Token`). Both are compared in constant time, before the body
//! is parsed.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// What a delivery asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A push to a branch (not a deletion).
    Push {
        /// The repository's URLs as the payload gives them (clone, ssh, web).
        repository_urls: Vec<String>,
        branch: String,
        default_branch: String,
        after: String,
    },
    PullRequest {
        repository_urls: Vec<String>,
        action: PullRequestAction,
        number: u64,
        head_sha: String,
        head_ref: String,
        base_ref: String,
        title: String,
    },
    /// A delivery we need not act on, and why.
    Ignored(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestAction {
    Opened,
    /// New commits on the source branch.
    Synchronize,
    Reopened,
}

impl PullRequestAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PullRequestAction::Opened => "opened",
            PullRequestAction::Synchronize => "synchronize",
            PullRequestAction::Reopened => "reopened",
        }
    }
}

/// One host's webhook signature and payload format.
pub trait WebhookFormat: Send + Sync {
    fn provider(&self) -> &'static str;
    /// Checks the delivery against the tenant's secret, in constant time.
    fn verify(&self, headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<()>;
    /// The host's delivery id: our idempotency key.
    fn delivery_id(&self, headers: &HeaderMap) -> Result<String>;
    /// The event a (verified) delivery carries.
    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent>;
}

pub struct GitHubWebhooks;
pub struct GitLabWebhooks;

pub static GITHUB: GitHubWebhooks = GitHubWebhooks;
pub static GITLAB: GitLabWebhooks = GitLabWebhooks;

/// The format of `provider` (`github`, `gitlab`).
pub fn format(provider: &str) -> Option<&'static dyn WebhookFormat> {
    match provider {
        "github" => Some(&GITHUB),
        "gitlab" => Some(&GITLAB),
        _ => None,
    }
}

fn bad_signature() -> Error {
    Error::InvalidSignature("the webhook signature does not verify".into())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A delivery id: the host's, bounded, printable.
fn delivery_id(headers: &HeaderMap, names: &[&str]) -> Result<String> {
    names
        .iter()
        .find_map(|name| header(headers, name))
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid(format!("a delivery id header ({}) is required", names.join(" or "))))
}

fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|err| Error::MalformedPayload(format!("webhook body: {err}")))
}

fn text<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn owned(value: &Value, pointer: &str) -> String {
    text(value, pointer).unwrap_or_default().to_owned()
}

fn urls(payload: &Value, pointers: &[&str]) -> Vec<String> {
    pointers.iter().filter_map(|p| text(payload, p).map(str::to_owned)).collect()
}

impl WebhookFormat for GitHubWebhooks {
    fn provider(&self) -> &'static str {
        "github"
    }

    /// `X-Hub-Signature-256: sha256=<hex>` over the raw body.
    fn verify(&self, headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<()> {
        let signature =
            header(headers, "x-hub-signature-256").and_then(|v| v.strip_prefix("sha256=")).ok_or_else(bad_signature)?;
        let signature = hex::decode(signature).map_err(|_| bad_signature())?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| bad_signature())?;
        mac.update(body);
        mac.verify_slice(&signature).map_err(|_| bad_signature())
    }

    fn delivery_id(&self, headers: &HeaderMap) -> Result<String> {
        delivery_id(headers, &["x-github-delivery"])
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent> {
        let event = header(headers, "x-github-event").unwrap_or_default();
        let payload = parse_json(body)?;
        let repository_urls = urls(&payload, &["/repository/clone_url", "/repository/ssh_url", "/repository/html_url"]);
        match event {
            "ping" => Ok(WebhookEvent::Ignored("ping".into())),
            "push" => {
                if payload.get("deleted").and_then(Value::as_bool) == Some(true) {
                    return Ok(WebhookEvent::Ignored("a branch deletion".into()));
                }
                let Some(branch) = text(&payload, "/ref").and_then(|r| r.strip_prefix("refs/heads/")) else {
                    return Ok(WebhookEvent::Ignored("a push that is not to a branch (a tag)".into()));
                };
                Ok(WebhookEvent::Push {
                    repository_urls,
                    branch: branch.to_owned(),
                    default_branch: owned(&payload, "/repository/default_branch"),
                    after: owned(&payload, "/after"),
                })
            }
            "pull_request" => {
                let action = match text(&payload, "/action") {
                    Some("opened") => PullRequestAction::Opened,
                    Some("synchronize") => PullRequestAction::Synchronize,
                    Some("reopened") => PullRequestAction::Reopened,
                    other => {
                        return Ok(WebhookEvent::Ignored(format!(
                            "pull_request action {:?}",
                            other.unwrap_or_default()
                        )));
                    }
                };
                Ok(WebhookEvent::PullRequest {
                    repository_urls,
                    action,
                    number: payload
                        .pointer("/pull_request/number")
                        .or_else(|| payload.get("number"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    head_sha: owned(&payload, "/pull_request/head/sha"),
                    head_ref: owned(&payload, "/pull_request/head/ref"),
                    base_ref: owned(&payload, "/pull_request/base/ref"),
                    title: owned(&payload, "/pull_request/title"),
                })
            }
            other => Ok(WebhookEvent::Ignored(format!("{other:?} events"))),
        }
    }
}

impl WebhookFormat for GitLabWebhooks {
    fn provider(&self) -> &'static str {
        "gitlab"
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8], secret: &[u8]) -> Result<()> {
        let token = header(headers, "x-gitlab-token").ok_or_else(bad_signature)?;
        if bool::from(token.as_bytes().ct_eq(secret)) { Ok(()) } else { Err(bad_signature()) }
    }

    fn delivery_id(&self, headers: &HeaderMap) -> Result<String> {
        delivery_id(headers, &["x-gitlab-event-uuid", "idempotency-key"])
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent> {
        let event = header(headers, "x-gitlab-event").unwrap_or_default();
        let payload = parse_json(body)?;
        let repository_urls = urls(&payload, &["/project/git_http_url", "/project/git_ssh_url", "/project/web_url"]);
        match event {
            "Push Hook" => {
                let after = text(&payload, "/after").unwrap_or_default();
                if after.is_empty() || after.bytes().all(|b| b == b'0') {
                    return Ok(WebhookEvent::Ignored("a branch deletion".into()));
                }
                let Some(branch) = text(&payload, "/ref").and_then(|r| r.strip_prefix("refs/heads/")) else {
                    return Ok(WebhookEvent::Ignored("a push that is not to a branch (a tag)".into()));
                };
                Ok(WebhookEvent::Push {
                    repository_urls,
                    branch: branch.to_owned(),
                    default_branch: owned(&payload, "/project/default_branch"),
                    after: after.to_owned(),
                })
            }
            "Merge Request Hook" => {
                let attributes = payload.get("object_attributes").cloned().unwrap_or(Value::Null);
                // An update without `oldrev` edited the title or labels, not the code.
                let action = match text(&attributes, "/action") {
                    Some("open") => PullRequestAction::Opened,
                    Some("reopen") => PullRequestAction::Reopened,
                    Some("update") if attributes.get("oldrev").is_some_and(|v| !v.is_null()) => {
                        PullRequestAction::Synchronize
                    }
                    other => {
                        return Ok(WebhookEvent::Ignored(format!(
                            "merge request action {:?}",
                            other.unwrap_or_default()
                        )));
                    }
                };
                Ok(WebhookEvent::PullRequest {
                    repository_urls,
                    action,
                    number: attributes.get("iid").and_then(Value::as_u64).unwrap_or(0),
                    head_sha: owned(&attributes, "/last_commit/id"),
                    head_ref: owned(&attributes, "/source_branch"),
                    base_ref: owned(&attributes, "/target_branch"),
                    title: owned(&attributes, "/title"),
                })
            }
            other => Ok(WebhookEvent::Ignored(format!("{other:?} events"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        let mut headers = HeaderMap::new();
        let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.insert("x-hub-signature-256", value.parse().expect("header"));
        headers
    }

    #[test]
    fn github_signatures_verify_only_with_the_right_secret_and_body() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        assert!(GITHUB.verify(&signed("s3cret", body), body, b"s3cret").is_ok());
        assert!(GITHUB.verify(&signed("other", body), body, b"s3cret").is_err());
        assert!(GITHUB.verify(&signed("s3cret", body), b"{}", b"s3cret").is_err());
        assert!(GITHUB.verify(&HeaderMap::new(), body, b"s3cret").is_err());
        let mut bad = HeaderMap::new();
        bad.insert("x-hub-signature-256", "sha256=zz".parse().expect("header"));
        assert!(matches!(GITHUB.verify(&bad, body, b"s3cret"), Err(Error::InvalidSignature(_))));
    }

    #[test]
    fn gitlab_merge_request_updates_count_only_with_new_commits() {
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-event", "Merge Request Hook".parse().expect("header"));
        let update = br#"{"object_attributes": {"action": "update", "iid": 3, "title": "t"}}"#;
        assert!(matches!(GITLAB.parse(&headers, update), Ok(WebhookEvent::Ignored(_))));
        let pushed = br#"{"object_attributes": {"action": "update", "iid": 3, "oldrev": "abc"}}"#;
        assert!(matches!(
            GITLAB.parse(&headers, pushed),
            Ok(WebhookEvent::PullRequest { action: PullRequestAction::Synchronize, number: 3, .. })
        ));
        headers.insert("x-gitlab-event", "Push Hook".parse().expect("header"));
        let deleted = br#"{"after": "0000000000000000000000000000000000000000"}"#;
        assert!(matches!(GITLAB.parse(&headers, deleted), Ok(WebhookEvent::Ignored(_))));
        assert!(matches!(GITLAB.parse(&headers, b"{not json"), Err(Error::MalformedPayload(_))));
    }
}
