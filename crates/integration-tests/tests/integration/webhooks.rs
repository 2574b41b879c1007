//! Webhook intake over a real socket: signatures checked before anything
//! is queued, events for registered repositories only, delivery ids as
//! idempotency keys.

use devops_models::{EventEnvelope, Scope, TenantId};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::rest::TestApi;

const REPO: &str = "https://github.com/acme/api.git";

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push(branch: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": "0".repeat(40), "after": "a".repeat(40), "deleted": false,
        "repository": {"full_name": "acme/api", "clone_url": REPO, "ssh_url": "git@github.com:acme/api.git",
                       "html_url": "https://github.com/acme/api", "default_branch": "main"},
    })
}

fn pull_request(action: &str) -> Value {
    json!({
        "action": action, "number": 7,
        "pull_request": {"number": 7, "title": "Fix", "head": {"sha": "b".repeat(40), "ref": "fix"}, "base": {"ref": "main"}},
        "repository": {"clone_url": REPO, "default_branch": "main"},
    })
}

struct Hook<'a> {
    api: &'a TestApi,
    tenant: TenantId,
    secret: String,
}

impl Hook<'_> {
    async fn github(
        &self,
        event: &str,
        delivery: &str,
        body: &Value,
        signature: Option<String>,
    ) -> (StatusCode, Value) {
        let raw = serde_json::to_vec(body).expect("json");
        let signature = signature.unwrap_or_else(|| sign(&self.secret, &raw));
        let response = self
            .api
            .client
            .post(format!("{}/webhooks/github/{}", self.api.base, self.tenant))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signature)
            .body(raw)
            .send()
            .await
            .expect("send");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// What deliveries queued for this tenant (not its `tenant.created`).
    async fn queued(&self) -> Vec<EventEnvelope> {
        let pending = self.api.store.pending_outbox(100).await.expect("outbox");
        pending
            .into_iter()
            .map(|r| r.envelope)
            .filter(|e| e.tenant_id == self.tenant && e.event_type != "tenant.created")
            .collect()
    }
}

async fn hook<'a>(api: &'a TestApi, provider: &str) -> Hook<'a> {
    let tenant = api.store.create_tenant(&devops_integration_tests::unique("hooks")).await.expect("tenant").id;
    api.store.register_repository(tenant, REPO, "acme/api").await.expect("register");
    let admin = api.key(tenant, vec![Scope::Admin]).await;
    let (status, body) =
        api.call(reqwest::Method::POST, &format!("/api/v1/webhooks/{provider}/secret"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["path"], format!("/webhooks/{provider}/{tenant}"));
    Hook { api, tenant, secret: body["secret"].as_str().expect("secret").to_owned() }
}

#[tokio::test]
async fn signed_github_deliveries_queue_events_and_bad_ones_queue_nothing() {
    let api = TestApi::start().await;
    let hook = hook(&api, "github").await;

    let (status, body) = hook.github("push", "d-1", &push("main"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["event_type"], "repo.push");
    let (status, body) = hook.github("pull_request", "d-2", &pull_request("opened"), None).await;
    assert_eq!((status, body["event_type"].as_str()), (StatusCode::ACCEPTED, Some("pull_request.opened")), "{body}");
    let queued = hook.queued().await;
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].idempotency_key, "github:d-1", "the delivery id is the idempotency key");
    assert_eq!(queued[0].payload["repository_url"], REPO);
    assert_eq!(queued[1].payload["number"], 7);

    // Ignored, with the reason: nothing queued.
    for (event, body) in [
        ("push", push("feature")),
        ("pull_request", pull_request("labeled")),
        ("issues", json!({"action": "opened"})),
        ("ping", json!({"zen": "Design for failure."})),
    ] {
        let (status, answer) = hook.github(event, "d-x", &body, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{event}: {answer}");
        assert!(answer["ignored"].is_string(), "{event}: {answer}");
    }
    let mut unregistered = push("main");
    unregistered["repository"]["clone_url"] = json!("https://github.com/acme/other.git");
    unregistered["repository"]["ssh_url"] = json!("git@github.com:acme/other.git");
    unregistered["repository"]["html_url"] = json!("https://github.com/acme/other");
    let (_, answer) = hook.github("push", "d-y", &unregistered, None).await;
    assert!(answer["ignored"].as_str().is_some_and(|r| r.contains("not registered")), "{answer}");

    // Refused before anything is read or queued.
    let forged = sign("not-the-secret", &serde_json::to_vec(&push("main")).expect("json"));
    for signature in [forged, "sha256=00".into(), "md5=abc".into(), String::new()] {
        let (status, body) = hook.github("push", "d-3", &push("main"), Some(signature)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "invalid_signature");
    }
    let stranger = Hook { api: &api, tenant: TenantId::new(), secret: hook.secret.clone() };
    let (status, body) = stranger.github("push", "d-4", &push("main"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_signature")));
    assert_eq!(hook.queued().await.len(), 2, "nothing more was queued");

    // Signed but broken: a clear error, still nothing queued.
    let raw = b"{not json".to_vec();
    let response = api
        .client
        .post(format!("{}/webhooks/github/{}", api.base, hook.tenant))
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-5")
        .header("x-hub-signature-256", sign(&hook.secret, &raw))
        .body(raw)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "malformed_json");
    assert_eq!(hook.queued().await.len(), 2);

    // Rotating the secret retires the old one at once.
    let admin = api.key(hook.tenant, vec![Scope::Admin]).await;
    api.call(reqwest::Method::POST, "/api/v1/webhooks/github/secret", Some(&admin), None).await;
    let (status, _) = hook.github("push", "d-6", &push("main"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let writer = api.key(hook.tenant, vec![Scope::Write]).await;
    let (status, _) = api.call(reqwest::Method::POST, "/api/v1/webhooks/github/secret", Some(&writer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "rotating needs admin");
}

#[tokio::test]
async fn gitlab_deliveries_check_the_token() {
    let api = TestApi::start().await;
    let hook = hook(&api, "gitlab").await;
    let merge_request = json!({
        "object_kind": "merge_request",
        "project": {"git_http_url": REPO, "git_ssh_url": "git@github.com:acme/api.git", "default_branch": "main"},
        "object_attributes": {"iid": 4, "action": "open", "title": "Fix", "source_branch": "fix",
                              "target_branch": "main", "last_commit": {"id": "c".repeat(40)}},
    });
    let send = |token: &str| {
        api.client
            .post(format!("{}/webhooks/gitlab/{}", api.base, hook.tenant))
            .header("x-gitlab-event", "Merge Request Hook")
            .header("x-gitlab-event-uuid", "g-1")
            .header("x-gitlab-token", token.to_owned())
            .json(&merge_request)
            .send()
    };
    let refused = send("wrong").await.expect("send");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(hook.queued().await.is_empty());
    let accepted = send(&hook.secret).await.expect("send");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let queued = hook.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].event_type.as_str(), queued[0].idempotency_key.as_str()),
        ("pull_request.opened", "gitlab:g-1")
    );
    assert_eq!(queued[0].payload["number"], 4);
}
