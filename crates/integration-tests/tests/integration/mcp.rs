//! The MCP server in-process on a real socket, spoken to over Streamable
//! HTTP as a client would: policy, contexts, isolation, output caps and bad
//! input.

use std::sync::Arc;

use devops_adapters::cache::{Cache, MemoryCache};
use devops_config::Config;
use devops_models::{ApiKeySecret, Scope, TenantId};
use devops_runtime::Backends;
use devops_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct TestMcp {
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl TestMcp {
    pub async fn start(config: Config) -> TestMcp {
        Self::start_with_cache(config, Arc::new(MemoryCache::new())).await
    }

    pub async fn start_with_cache(config: Config, cache: Arc<dyn Cache>) -> TestMcp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = devops_integration_tests::sqlite_store(dir.path()).await;
        let url = serve_replica(&config, store.clone(), cache, dir.path()).await;
        TestMcp { url, store, _dir: dir }
    }

    pub async fn key(&self, tenant: TenantId, scopes: Vec<Scope>) -> String {
        let (secret, record) = ApiKeySecret::generate("mcp-test", scopes, None);
        self.store.create_api_key(tenant, &record).await.expect("key");
        secret.expose().to_owned()
    }

    pub async fn session(&self, key: &str, headers: &[(&str, &str)]) -> McpSession {
        McpSession::open(&self.url, key, headers).await
    }
}

impl McpSession {
    /// Initializes a session with the server at `url`.
    pub async fn open(url: &str, key: &str, headers: &[(&str, &str)]) -> McpSession {
        let mut session = McpSession {
            url: url.to_owned(),
            key: key.to_owned(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            session_id: None,
            next_id: 1,
            client: reqwest::Client::new(),
        };
        let init = session
            .request("initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "it", "version": "0" } }))
            .await;
        assert_eq!(init["result"]["serverInfo"]["name"], "devops-mcp", "{init}");
        session.notify("notifications/initialized").await;
        session
    }
}

/// A tenant's admins switch a tool off: it leaves every session of that
/// tenant (which hears `notifications/tools/list_changed`), and no other.
#[tokio::test]
async fn tools_a_tenant_switches_off_leave_its_sessions_with_a_notification() {
    let (mcp, tenant) = fixture(Config::default()).await;
    let other = mcp.store.create_tenant("other").await.expect("tenant").id;
    let key = mcp.key(tenant, vec![Scope::Write]).await;
    let other_key = mcp.key(other, vec![Scope::Write]).await;
    let toolsets = [("x-mcp-toolsets", "pull_requests")];
    let mut session = mcp.session(&key, &toolsets).await;
    let mut theirs = mcp.session(&other_key, &toolsets).await;
    assert!(session.tool_names().await.contains(&"merge_pull_request".to_owned()));

    let watcher = {
        let listener = session.listener();
        tokio::spawn(async move {
            listener.expect_notification("notifications/tools/list_changed", std::time::Duration::from_secs(10)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let saved = mcp
        .store
        .tool_settings()
        .put_tool_settings(tenant, &["merge_pull_request".to_owned()])
        .await
        .expect("settings");
    assert_eq!(saved.version, 1);
    let notified = watcher.await.expect("watcher");
    assert_eq!(notified["method"], "notifications/tools/list_changed");

    assert!(!session.tool_names().await.contains(&"merge_pull_request".to_owned()), "gone from the list");
    let refused = session
        .request(
            "tools/call",
            json!({ "name": "merge_pull_request", "arguments": { "repository_url": "/x", "number": 1 } }),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "and cannot be called: {refused}");
    assert!(theirs.tool_names().await.contains(&"merge_pull_request".to_owned()), "another tenant keeps it");
    let fresh = mcp.session(&key, &toolsets).await.tool_names().await;
    assert!(!fresh.contains(&"merge_pull_request".to_owned()) && fresh.contains(&"get_pull_request".to_owned()));
}

/// The repos, issues and pull request tools reach a GitHub connection's
/// host (Prism with GitHub's description) with the sealed token.
#[tokio::test]
async fn repos_and_issues_tools_reach_the_host_through_the_connection() {
    let Some(prism) = devops_integration_tests::service("DEVOPS_MCP_TEST_PRISM_GITHUB") else { return };
    let mut config = Config::default();
    config.indexer.allowed_hosts = vec!["127.0.0.1".into()];
    let mcp = TestMcp::start(config.clone()).await;
    let tenant = mcp.store.create_tenant("hosted").await.expect("tenant").id;
    let secrets = devops_adapters::secrets::FileSecrets::open(mcp._dir.path().join("secrets"), Vec::new())
        .await
        .expect("secrets");
    let connections =
        devops_runtime::providers::connections(&config, &mcp.store, &secrets).await.expect("same data key");
    let connection = devops_providers::NewConnection {
        name: "github".into(),
        provider: devops_providers::ProviderKind::Github,
        base_url: Some(prism),
        web_url: Some("https://github.com".into()),
        credentials: devops_providers::ConnectionCredentials::Token { token: "ghp_mcp".into() },
    };
    connections.create(tenant, &connection).await.expect("connection");
    let key = mcp.key(tenant, vec![Scope::Write]).await;
    let mut session = mcp.session(&key, &[("x-mcp-toolsets", "repos,issues,pull_requests")]).await;
    let repo = json!({ "repository_url": "https://github.com/octocat/hello-world" });
    let with = |extra: Value| {
        let mut args = repo.clone();
        args.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        args
    };

    let (is_error, found, _) = session.call("get_repository", repo.clone()).await;
    assert!(!is_error, "{found}");
    assert_eq!(found["full_name"], "octocat/Hello-World");
    let (is_error, branches, _) = session.call("list_branches", with(json!({ "limit": 10 }))).await;
    assert!(!is_error && !branches["branches"].as_array().expect("branches").is_empty(), "{branches}");
    let (is_error, tree, _) = session.call("get_repository_tree", with(json!({ "ref": "main" }))).await;
    assert!(!is_error && !tree["entries"].as_array().expect("entries").is_empty(), "{tree}");
    let (is_error, files, _) = session.call("list_pull_request_files", with(json!({ "number": 1 }))).await;
    assert!(!is_error && files["files"][0]["path"].is_string(), "{files}");
    let (is_error, issue, _) =
        session.call("create_issue", with(json!({ "title": "Broken", "labels": ["bug"] }))).await;
    assert!(!is_error && issue["number"].as_u64().is_some(), "{issue}");
    let (is_error, issues, _) = session.call("list_issues", with(json!({ "state": "open" }))).await;
    assert!(!is_error && issues["issues"].is_array(), "{issues}");
    let (is_error, comment, _) = session.call("comment_on_issue", with(json!({ "number": 1, "body": "Thanks" }))).await;
    assert!(!is_error && comment["comment_id"].is_string(), "{comment}");

    let elsewhere = json!({ "repository_url": "https://gitlab.example.com/acme/api" });
    let (is_error, error, _) = session.call("get_repository", elsewhere).await;
    assert!(is_error);
    assert_eq!(error["code"], "not_found", "no connection serves it: {error}");
    let other = mcp.store.create_tenant("other").await.expect("tenant").id;
    let stranger = mcp.key(other, vec![Scope::Write]).await;
    let mut theirs = mcp.session(&stranger, &[("x-mcp-toolsets", "repos")]).await;
    let (is_error, error, _) = theirs.call("get_repository", repo.clone()).await;
    assert!(is_error && error["code"] == "not_found", "another tenant's connection is not used: {error}");
}

/// Serves one mcp-server on `store` and `cache` and returns its `/mcp` URL.
async fn serve_replica(config: &Config, store: Arc<dyn Store>, cache: Arc<dyn Cache>, dir: &std::path::Path) -> String {
    let backends = Backends {
        store: Some(store),
        blob: Some(Arc::new(devops_adapters::blob::LocalBlobStore::open(dir.join("blobs")).await.expect("blobs"))),
        cache: Some(cache),
        secrets: Some(Arc::new(
            devops_adapters::secrets::FileSecrets::open(dir.join("secrets"), Vec::new()).await.expect("secrets"),
        )),
        ..Backends::default()
    };
    let shared =
        devops_mcp_server::shared(&backends, devops_mcp_server::registry(config), config).await.expect("shared");
    let router =
        devops_mcp_server::app(shared, backends.readiness(), config, tokio_util::sync::CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

pub struct McpSession {
    url: String,
    key: String,
    headers: Vec<(String, String)>,
    session_id: Option<String>,
    next_id: u64,
    client: reqwest::Client,
}

impl McpSession {
    fn post(&self, body: String) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        request
    }

    /// Sends raw text and returns the HTTP status and the JSON-RPC messages of the answer.
    pub async fn raw(&mut self, body: String) -> (StatusCode, Vec<Value>) {
        let response = self.post(body).send().await.expect("send");
        if let Some(id) = response.headers().get("mcp-session-id") {
            self.session_id = Some(id.to_str().expect("ascii").to_owned());
        }
        let status = response.status();
        let text = response.text().await.expect("body");
        let messages = if text.trim_start().starts_with(['{', '[']) {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => items,
                Ok(value) => vec![value],
                Err(_) => Vec::new(),
            }
        } else {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        (status, messages)
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let (status, messages) =
            self.raw(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{method}: {messages:?}");
        messages.into_iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no answer to {method}"))
    }

    /// Opens the session's standalone SSE stream and waits for a message with `method`.
    pub async fn expect_notification(&self, method: &str, within: std::time::Duration) -> Value {
        use futures::StreamExt;
        let mut request = self
            .client
            .get(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        let response = request.send().await.expect("GET stream");
        assert!(response.status().is_success(), "{}", response.status());
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        let found = tokio::time::timeout(within, async {
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                for line in buffer.lines() {
                    if let Some(data) = line.strip_prefix("data:")
                        && let Ok(message) = serde_json::from_str::<Value>(data.trim())
                        && message["method"] == method
                    {
                        return Some(message);
                    }
                }
            }
            None
        })
        .await;
        found.ok().flatten().unwrap_or_else(|| panic!("no {method} within {within:?}"))
    }

    pub async fn notify(&mut self, method: &str) {
        let (status, _) = self.raw(json!({ "jsonrpc": "2.0", "method": method }).to_string()).await;
        assert!(status.is_success(), "{method}: {status}");
    }

    pub async fn tool_names(&mut self) -> Vec<String> {
        let list = self.request("tools/list", json!({})).await;
        list["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().expect("name").to_owned())
            .collect()
    }

    /// The same session, for a second stream (notifications) beside this one.
    pub fn listener(&self) -> McpSession {
        McpSession {
            url: self.url.clone(),
            key: self.key.clone(),
            headers: Vec::new(),
            session_id: self.session_id.clone(),
            next_id: 1000,
            client: reqwest::Client::new(),
        }
    }

    /// Calls a tool; returns (is_error, structured or parsed text, whole result).
    pub async fn call(&mut self, name: &str, arguments: Value) -> (bool, Value, Value) {
        let answer = self.request("tools/call", json!({ "name": name, "arguments": arguments })).await;
        let result = answer["result"].clone();
        assert!(result.is_object(), "{name}: {answer}");
        let is_error = result["isError"].as_bool().unwrap_or(false);
        // Error results carry their code in _meta: structured content must match the tool's output schema.
        let structured =
            if is_error { result["_meta"]["devops-mcp/error"].clone() } else { result["structuredContent"].clone() };
        (is_error, structured, result)
    }
}

async fn fixture(config: Config) -> (TestMcp, TenantId) {
    let mcp = TestMcp::start(config).await;
    let tenant = mcp.store.create_tenant("acme").await.expect("tenant").id;
    (mcp, tenant)
}

#[tokio::test]
async fn tools_follow_the_key_and_the_headers() {
    let (mcp, tenant) = fixture(Config::default()).await;
    let writer = mcp.key(tenant, vec![Scope::Write]).await;
    let reader = mcp.key(tenant, vec![Scope::Read]).await;

    let mut full = mcp.session(&writer, &[]).await;
    let names = full.tool_names().await;
    for name in ["whoami", "continue_output", "create_context", "append_to_context", "get_context", "delete_context"] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    let list = full.request("tools/list", json!({})).await;
    let delete = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "delete_context")
        .expect("delete");
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    assert_eq!(delete["annotations"]["readOnlyHint"], false);
    assert!(delete["outputSchema"].is_object() && delete["inputSchema"]["properties"]["context_id"].is_object());
    let index = list["result"]["tools"].as_array().expect("tools").iter().find(|t| t["name"] == "index_repository");
    let index = index.expect("index_repository is in the default set");
    assert_eq!(index["annotations"]["openWorldHint"], true, "it fetches from git hosts");
    assert_eq!(index["annotations"]["idempotentHint"], true);

    let read_only_tools =
        ["continue_output", "get_context", "list_contexts", "search_code", "search_context", "whoami"];
    let mut by_header = mcp.session(&writer, &[("x-mcp-readonly", "true")]).await;
    let mut names = by_header.tool_names().await;
    names.sort();
    assert_eq!(names, read_only_tools);
    let (is_error, _, _) = by_header.call("whoami", json!({})).await;
    assert!(!is_error);
    let refused =
        by_header.request("tools/call", json!({ "name": "create_context", "arguments": { "name": "x" } })).await;
    assert_eq!(refused["error"]["code"], -32602, "hidden tools cannot be called: {refused}");

    let mut by_key = mcp.session(&reader, &[("x-mcp-readonly", "false")]).await;
    let mut names = by_key.tool_names().await;
    names.sort();
    assert_eq!(names, read_only_tools, "a header cannot widen a read key");

    let mut narrowed = mcp.session(&writer, &[("x-mcp-toolsets", "repos")]).await;
    let mut names = narrowed.tool_names().await;
    names.sort();
    let repos = [
        "continue_output",
        "create_branch",
        "get_file",
        "get_file_contents",
        "get_repository",
        "get_repository_tree",
        "list_branches",
        "list_repositories",
        "whoami",
    ];
    assert_eq!(names, repos, "core tools plus the named set");
    let mut unbuilt = mcp.session(&writer, &[("x-mcp-toolsets", "wiki")]).await;
    let mut names = unbuilt.tool_names().await;
    names.sort();
    assert_eq!(names, ["continue_output", "whoami"], "only the core tools are outside toolsets");
}

#[tokio::test]
async fn destructive_tools_can_be_switched_off() {
    let mut config = Config::default();
    config.mcp.destructive_tools = false;
    let (mcp, tenant) = fixture(config).await;
    let admin = mcp.key(tenant, vec![Scope::Admin]).await;
    let mut session = mcp.session(&admin, &[]).await;
    let names = session.tool_names().await;
    assert!(names.contains(&"create_context".to_string()));
    assert!(!names.contains(&"delete_context".to_string()));
}

#[tokio::test]
async fn contexts_round_trip_and_stay_within_their_tenant() {
    let (mcp, a) = fixture(Config::default()).await;
    let b = mcp.store.create_tenant("other").await.expect("b").id;
    let mut alice = mcp.session(&mcp.key(a, vec![Scope::Write]).await, &[]).await;
    let mut bob = mcp.session(&mcp.key(b, vec![Scope::Write]).await, &[]).await;

    let (is_error, created, _) =
        alice.call("create_context", json!({ "name": "incident-42", "max_tokens": 1000 })).await;
    assert!(!is_error, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let big = "log line\n".repeat(2000);
    let append = json!({ "context_id": id, "items": [
        { "role": "user", "content": "the deploy failed" },
        { "role": "tool", "content": big } ] });
    let (is_error, appended, _) = alice.call("append_to_context", append.clone()).await;
    assert!(is_error, "4000 tokens exceed the 1000 budget: {appended}");
    let (is_error, _, _) = alice.call("update_context", json!({ "context_id": id, "max_tokens": 100000 })).await;
    assert!(!is_error);
    let (is_error, appended, _) = alice.call("append_to_context", append).await;
    assert!(!is_error, "{appended}");
    assert_eq!(appended["appended"], json!([1, 2]));

    let (_, page, _) = alice.call("get_context", json!({ "context_id": id })).await;
    assert_eq!(page["items"][0]["content"], "the deploy failed");
    assert_eq!(page["items"][1]["preview"], true, "large items come as a preview");
    let (_, full, _) =
        alice.call("get_context", json!({ "context_id": id, "after_seq": 1, "full_content": true })).await;
    assert_eq!(full["items"][0]["content"].as_str().map(str::len), Some(big.len()), "whole, from the blob store");
    let (_, hits, _) = alice.call("search_context", json!({ "query": "DEPLOY FAILED" })).await;
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(1));

    let (is_error, denied, _) = bob.call("get_context", json!({ "context_id": id })).await;
    assert!(is_error);
    assert_eq!(denied["code"], "not_found");
    let (_, bob_hits, _) = bob.call("search_context", json!({ "query": "deploy" })).await;
    assert_eq!(bob_hits["hits"], json!([]));
    let (_, bob_list, _) = bob.call("list_contexts", json!({})).await;
    assert_eq!(bob_list["contexts"], json!([]));
    let (is_error, _, _) = bob.call("delete_context", json!({ "context_id": id })).await;
    assert!(is_error, "b cannot delete a's context");

    let (is_error, _, _) = alice.call("delete_context", json!({ "context_id": id })).await;
    assert!(!is_error);
    let (is_error, _, _) = alice.call("get_context", json!({ "context_id": id })).await;
    assert!(is_error, "deleted");

    // The audit log is written in batches, off the request path.
    let mut audit = Vec::new();
    for _ in 0..100 {
        audit = mcp.store.list_audit(a, 50).await.expect("audit");
        if audit.iter().any(|e| e.target.as_deref() == Some("delete_context")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let calls: Vec<&str> =
        audit.iter().filter(|e| e.action == "tool.call").filter_map(|e| e.target.as_deref()).collect();
    assert!(calls.contains(&"delete_context") && calls.contains(&"create_context"), "{calls:?}");
    assert!(audit.iter().all(|e| !e.detail.to_string().contains("deploy")), "no argument values in the audit log");
}

#[tokio::test]
async fn large_outputs_are_truncated_with_a_cursor_and_resumed() {
    let mut config = Config::default();
    config.mcp.max_output_bytes = 2048;
    let (mcp, tenant) = fixture(config).await;
    let mut session = mcp.session(&mcp.key(tenant, vec![Scope::Write]).await, &[]).await;
    let (_, created, _) = session.call("create_context", json!({ "name": "long" })).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let items: Vec<Value> =
        (0..40).map(|n| json!({ "role": "note", "content": format!("observation number {n}") })).collect();
    session.call("append_to_context", json!({ "context_id": id, "items": items })).await;

    let (_, _, result) = session.call("get_context", json!({ "context_id": id, "limit": 200 })).await;
    let mut text = result["content"][0]["text"].as_str().expect("text").to_owned();
    let truncation = result["_meta"]["devops-mcp/truncated"].clone();
    assert!(truncation["cursor"].is_string(), "{result}");
    assert!(text.contains("[output truncated"), "never silently");
    let mut whole = String::new();
    loop {
        let (body, marker) = match text.split_once("\n\n[output truncated") {
            Some((body, marker)) => (body.to_owned(), Some(marker.to_owned())),
            None => (text.clone(), None),
        };
        whole.push_str(&body);
        let Some(marker) = marker else { break };
        let cursor = marker.split('"').nth(1).expect("cursor in the marker").to_owned();
        let (is_error, next, _) = session.call("continue_output", json!({ "cursor": cursor })).await;
        assert!(!is_error, "{next}");
        text = next["text"].as_str().expect("text").to_owned();
    }
    let page: Value = serde_json::from_str(&whole).expect("the pieces make the whole JSON again");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(40));
}

#[tokio::test]
async fn bad_requests_get_json_rpc_errors_and_the_server_stays_up() {
    let (mcp, tenant) = fixture(Config::default()).await;
    let key = mcp.key(tenant, vec![Scope::Write]).await;
    let mut session = mcp.session(&key, &[]).await;

    let unknown = session.request("no/such/method", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let bad_args =
        session.request("tools/call", json!({ "name": "get_context", "arguments": { "context_id": 7 } })).await;
    assert!(bad_args["result"]["isError"] == true || bad_args["error"].is_object(), "{bad_args}");
    let missing_tool = session.request("tools/call", json!({ "name": "nope", "arguments": {} })).await;
    assert_eq!(missing_tool["error"]["code"], -32602);

    let (status, messages) = session.raw("{not json".into()).await;
    assert!(status.is_client_error(), "{status}");
    assert!(messages.is_empty() || messages[0]["error"]["code"] == -32700, "{messages:?}");
    let (status, _) = session.raw(json!([{ "jsonrpc": "2.0", "id": 90, "method": "ping" }]).to_string()).await;
    assert!(
        status.is_client_error() || status.is_success(),
        "batches are answered or refused, never a crash: {status}"
    );
    let (status, _) = session
        .raw(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":91,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(2 * 1024 * 1024)
        ))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let ping = session.request("ping", json!({})).await;
    assert!(ping["result"].is_object(), "still serving: {ping}");

    let anonymous = reqwest::Client::new().post(&mcp.url).json(&json!({})).send().await.expect("send");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge =
        anonymous.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthenticated");

    // RFC 9728: the challenge points at open metadata naming this resource.
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge:?}"))
        .to_owned();
    let metadata: Value = reqwest::get(&metadata_url).await.expect("metadata").json().await.expect("json");
    assert_eq!(metadata["resource"], mcp.url.as_str());
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
}

/// A live session's plain request is answered by the server's own POST path,
/// one with a weighted `Accept` by rmcp's: the two answers read the same.
#[tokio::test]
async fn both_post_paths_answer_a_session_alike() {
    let (mcp, tenant) = fixture(Config::default()).await;
    let key = mcp.key(tenant, vec![Scope::Write]).await;
    let session = mcp.session(&key, &[]).await;
    let session_id = session.session_id.clone().expect("a session");
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for accept in ["application/json, text/event-stream", "application/json;q=0.9, text/event-stream"] {
        let response = client
            .post(&mcp.url)
            .bearer_auth(&key)
            .header("accept", accept)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .header("mcp-session-id", &session_id)
            .body(
                json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": { "name": "list_contexts", "arguments": {} } })
                .to_string(),
            )
            .send()
            .await
            .expect("send");
        let head: Vec<_> = ["content-type", "cache-control", "x-accel-buffering"]
            .into_iter()
            .map(|name| response.headers().get(name).map(|value| value.to_str().expect("ascii").to_owned()))
            .collect();
        let status = response.status();
        let body = response.text().await.expect("body");
        // Event ids name the POST's stream, which differs between the two.
        let body: Vec<String> = body
            .lines()
            .map(|line| match line.strip_prefix("id: ") {
                Some(id) => format!("id: {}", id.split('/').next().unwrap_or_default()),
                None => line.to_owned(),
            })
            .collect();
        answers.push((status, head, body));
    }
    assert_eq!(answers[0].0, StatusCode::OK);
    assert!(answers[0].2.iter().any(|line| line.contains("\"structuredContent\"")), "{:?}", answers[0].2);
    assert_eq!(answers[0], answers[1]);
}

mod websocket {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;

    type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn connect(mcp: &TestMcp, query: &str, protocols: &str, bearer: Option<&str>) -> Result<Socket, String> {
        let url = format!("{}{query}", mcp.url.replace("http://", "ws://").replace("/mcp", "/ws"));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().expect("header"));
        if let Some(key) = bearer {
            request.headers_mut().insert("authorization", format!("Bearer {key}").parse().expect("header"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, response)) => {
                assert_eq!(
                    response.headers().get("sec-websocket-protocol").map(|v| v.to_str().ok()),
                    Some(Some("mcp"))
                );
                Ok(socket)
            }
            Err(err) => Err(err.to_string()),
        }
    }

    async fn rpc(socket: &mut Socket, message: Value) -> Value {
        socket.send(Message::Text(message.to_string().into())).await.expect("send");
        next_json(socket).await
    }

    async fn next_json(socket: &mut Socket) -> Value {
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.expect("answer in time")
            {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("json"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("unexpected frame: {other:?}"),
            }
        }
    }

    async fn initialize(socket: &mut Socket) {
        let init = rpc(
            socket,
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "ws", "version": "0" } } }),
        )
        .await;
        assert_eq!(init["result"]["serverInfo"]["name"], "devops-mcp", "{init}");
        socket
            .send(Message::Text(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string().into()))
            .await
            .expect("initialized");
    }

    #[tokio::test]
    async fn every_way_of_passing_the_key_works_and_bad_keys_are_refused() {
        let (mcp, tenant) = fixture(Config::default()).await;
        let key = mcp.key(tenant, vec![Scope::Write]).await;
        for (query, protocols, bearer) in [
            (String::new(), "mcp".to_string(), Some(key.as_str())),
            (format!("?api_key={key}"), "mcp".to_string(), None),
            (String::new(), format!("mcp, {key}"), None),
        ] {
            let mut socket = connect(&mcp, &query, &protocols, bearer).await.expect("connects");
            initialize(&mut socket).await;
            let whoami = rpc(&mut socket, json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } })).await;
            assert_eq!(whoami["result"]["structuredContent"]["tenant_name"], "acme", "{whoami}");
        }
        let refused = connect(&mcp, "?api_key=dmcp_nope", "mcp", None).await.expect_err("bad key");
        assert!(refused.contains("401"), "{refused}");
        let no_protocol = connect(&mcp, "", "graphql-ws", Some(&key)).await.expect_err("mcp subprotocol required");
        assert!(no_protocol.contains("400"), "{no_protocol}");
    }

    #[tokio::test]
    async fn bad_frames_get_json_rpc_errors_and_oversized_frames_close_cleanly() {
        let mut config = Config::default();
        config.limits.max_request_body_bytes = 64 * 1024;
        let (mcp, tenant) = fixture(config).await;
        let key = mcp.key(tenant, vec![Scope::Write]).await;
        let mut socket = connect(&mcp, "", "mcp", Some(&key)).await.expect("connect");
        initialize(&mut socket).await;

        socket.send(Message::Text("{not json".into())).await.expect("send");
        assert_eq!(next_json(&mut socket).await["error"]["code"], -32700);
        socket
            .send(Message::Text(json!([{ "jsonrpc": "2.0", "id": 5, "method": "ping" }]).to_string().into()))
            .await
            .expect("send");
        assert_eq!(next_json(&mut socket).await["error"]["code"], -32600);
        socket
            .send(Message::Text(json!({ "jsonrpc": "2.0", "id": 6, "nonsense": true }).to_string().into()))
            .await
            .expect("send");
        let invalid = next_json(&mut socket).await;
        assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
        let unknown = rpc(&mut socket, json!({ "jsonrpc": "2.0", "id": 7, "method": "no/such" })).await;
        assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
        let ping = rpc(&mut socket, json!({ "jsonrpc": "2.0", "id": 8, "method": "ping" })).await;
        assert!(ping["result"].is_object(), "still serving: {ping}");
        // Larger than one socket read (8 KiB), within the frame limit.
        let padded = json!({ "jsonrpc": "2.0", "id": 10, "method": "ping",
            "params": { "_meta": { "padding": "x".repeat(40_000) } } });
        let answered = rpc(&mut socket, padded).await;
        assert!(answered["result"].is_object(), "a frame over several reads: {answered}");

        let huge = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{{\"p\":\"{}\"}}}}",
            "x".repeat(200_000)
        );
        let _ = socket.send(Message::Text(huge.into())).await;
        let closed = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.expect("close in time")
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(closed.map(|f| f.code), Some(CloseCode::Size));
    }

    /// DNS rebinding and cross-origin pages: a Host or an Origin not listed
    /// is refused on both transports, before the key is even looked at; a
    /// listed browser origin and a client sending none are served.
    #[tokio::test]
    async fn rebound_hosts_and_foreign_origins_are_refused_on_both_transports() {
        let (mcp, tenant) = fixture(Config::default()).await;
        let key = mcp.key(tenant, vec![Scope::Write]).await;
        let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "page", "version": "0" } } });
        let post = |headers: &[(&str, &str)]| {
            let mut request = reqwest::Client::new()
                .post(&mcp.url)
                .bearer_auth(&key)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send()
        };
        let upgrade = |headers: &[(&str, &str)]| {
            let url = mcp.url.replace("http://", "ws://").replace("/mcp", "/ws");
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert("sec-websocket-protocol", "mcp".parse().expect("header"));
            request.headers_mut().insert("authorization", format!("Bearer {key}").parse().expect("header"));
            for (name, value) in headers {
                let name: reqwest::header::HeaderName = name.parse().expect("name");
                request.headers_mut().insert(name, value.parse().expect("header"));
            }
            tokio_tungstenite::connect_async(request)
        };
        for refused in [
            [("origin", "http://evil.example.com")],
            [("origin", "http://localhost.evil.com:6274")],
            [("host", "evil.example.com")],
        ] {
            let answer = post(&refused).await.expect("send");
            assert_eq!(answer.status(), StatusCode::FORBIDDEN, "/mcp with {refused:?}");
            match upgrade(&refused).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), StatusCode::FORBIDDEN, "/ws with {refused:?}")
                }
                other => panic!("/ws with {refused:?}: {:?}", other.map(|_| "upgraded")),
            }
        }
        for served in [&[("origin", "http://localhost:6274")][..], &[]] {
            let answer = post(served).await.expect("send");
            assert_eq!(answer.status(), StatusCode::OK, "/mcp with {served:?}");
            assert!(upgrade(served).await.is_ok(), "/ws with {served:?}");
        }
    }

    #[tokio::test]
    async fn tenants_are_isolated_over_websocket_too() {
        let (mcp, a) = fixture(Config::default()).await;
        let b = mcp.store.create_tenant("other").await.expect("b").id;
        let mut http = mcp.session(&mcp.key(a, vec![Scope::Write]).await, &[]).await;
        let (_, created, _) = http.call("create_context", json!({ "name": "private" })).await;
        let mut socket = connect(&mcp, "", "mcp", Some(&mcp.key(b, vec![Scope::Write]).await)).await.expect("connect");
        initialize(&mut socket).await;
        let denied = rpc(
            &mut socket,
            json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": { "name": "get_context", "arguments": { "context_id": created["id"] } } }),
        )
        .await;
        assert_eq!(denied["result"]["isError"], true);
        assert!(denied["result"].get("structuredContent").is_none(), "errors carry no structured content");
        assert_eq!(denied["result"]["_meta"]["devops-mcp/error"]["code"], "not_found");
    }
}

/// `devops-mcp stdio` carries a desktop client's stdio session to the server.
#[tokio::test]
async fn the_stdio_bridge_relays_a_whole_session() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (mcp, tenant) = fixture(Config::default()).await;
    let key = mcp.key(tenant, vec![Scope::Write]).await;
    let mut child = tokio::process::Command::new(devops_integration_tests::fleet::binary("devops-mcp"))
        .args(["stdio", "--url", &mcp.url])
        .env("DEVOPS_MCP_KEY", &key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdio bridge");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = |message: Value| format!("{message}\n");
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "stdio-test", "version": "0" } } });
    stdin.write_all(line(init).as_bytes()).await.expect("write");
    async fn next(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .expect("an answer in time")
            .expect("read")
            .expect("a line");
        serde_json::from_str::<Value>(&line).expect("one JSON-RPC message per line")
    }
    let init = next(&mut stdout).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "devops-mcp", "{init}");
    for message in [
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } }),
    ] {
        stdin.write_all(line(message).as_bytes()).await.expect("write");
    }
    let whoami = next(&mut stdout).await;
    assert_eq!(whoami["id"], 2);
    assert_eq!(whoami["result"]["structuredContent"]["tenant_name"], "acme", "{whoami}");
    drop(stdin);
    let status =
        tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.expect("exits").expect("wait");
    assert!(status.success(), "{status}");

    // A bad key is reported in-band, as a JSON-RPC error for the request.
    let mut bad = tokio::process::Command::new(devops_integration_tests::fleet::binary("devops-mcp"))
        .args(["stdio", "--url", &mcp.url])
        .env("DEVOPS_MCP_KEY", "dmcp_wrong")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut bad_in = bad.stdin.take().expect("stdin");
    bad_in
        .write_all(format!("{}\n", json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" })).as_bytes())
        .await
        .expect("write");
    drop(bad_in);
    let output = bad.wait_with_output().await.expect("output");
    let answer: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(answer["id"], 7);
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("401")), "{answer}");
}

#[tokio::test]
async fn contexts_are_resources_prompts_and_completions() {
    let (mcp, a) = fixture(Config::default()).await;
    let b = mcp.store.create_tenant("other").await.expect("b").id;
    let mut alice = mcp.session(&mcp.key(a, vec![Scope::Write]).await, &[]).await;
    let mut bob = mcp.session(&mcp.key(b, vec![Scope::Write]).await, &[]).await;
    let (_, created, _) = alice.call("create_context", json!({ "name": "release-7" })).await;
    let id = created["id"].as_str().expect("id").to_owned();
    alice
        .call(
            "append_to_context",
            json!({ "context_id": id, "items": [{ "role": "note", "content": "ship on friday" }] }),
        )
        .await;
    let uri = format!("context://{id}");

    let listed = alice.request("resources/list", json!({})).await;
    assert!(listed["result"]["resources"].as_array().expect("resources").iter().any(|r| r["uri"] == uri.as_str()));
    let read = alice.request("resources/read", json!({ "uri": uri })).await;
    let document: Value =
        serde_json::from_str(read["result"]["contents"][0]["text"].as_str().expect("text")).expect("json");
    assert_eq!(document["items"][0]["content"], "ship on friday");
    let foreign = bob.request("resources/read", json!({ "uri": uri })).await;
    assert!(foreign["error"].is_object(), "another tenant's context is not readable: {foreign}");
    let bob_list = bob.request("resources/list", json!({})).await;
    assert_eq!(bob_list["result"]["resources"], json!([]));

    let prompt =
        alice.request("prompts/get", json!({ "name": "summarize_context", "arguments": { "context_id": id } })).await;
    let text = prompt["result"]["messages"][0]["content"]["text"].as_str().expect("prompt text");
    assert!(text.contains("ship on friday") && text.contains("#1"), "{text}");
    let completion = alice
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "summarize_context" }, "argument": { "name": "context_id", "value": &id[..8] } }),
        )
        .await;
    assert_eq!(completion["result"]["completion"]["values"], json!([id]));
    let none_for_bob = bob
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "summarize_context" }, "argument": { "name": "context_id", "value": "" } }),
        )
        .await;
    assert_eq!(none_for_bob["result"]["completion"]["values"], json!([]));

    let refused = bob.request("resources/subscribe", json!({ "uri": uri })).await;
    assert!(refused["error"].is_object(), "cannot watch another tenant's context");
    let subscribed = alice.request("resources/subscribe", json!({ "uri": uri })).await;
    assert!(subscribed["result"].is_object(), "{subscribed}");
    let watcher = {
        let session = alice.listener();
        tokio::spawn(async move {
            session.expect_notification("notifications/resources/updated", std::time::Duration::from_secs(10)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    alice
        .call(
            "append_to_context",
            json!({ "context_id": id, "items": [{ "role": "note", "content": "moved to monday" }] }),
        )
        .await;
    let updated = watcher.await.expect("watcher");
    assert_eq!(updated["params"]["uri"], uri.as_str());
}

/// In stateless mode any replica answers any request: no session to stick to.
#[tokio::test]
async fn stateless_replicas_serve_each_others_clients() {
    let mut config = Config::default();
    config.mcp.stateless = true;
    let first = TestMcp::start(config.clone()).await;
    let tenant = first.store.create_tenant("acme").await.expect("tenant").id;
    let key = first.key(tenant, vec![Scope::Write]).await;
    // A second replica on the same store.
    let second_url = serve_replica(&config, first.store.clone(), Arc::new(MemoryCache::new()), first._dir.path()).await;

    let mut session = first.session(&key, &[]).await;
    assert!(session.session_id.is_none(), "stateless mode hands out no session");
    let (_, created, _) = session.call("create_context", json!({ "name": "shared" })).await;
    session.url = second_url;
    let (is_error, page, _) = session.call("get_context", json!({ "context_id": created["id"] })).await;
    assert!(!is_error, "the other replica serves the same client: {page}");
    assert_eq!(page["context"]["name"], "shared");
}

#[tokio::test]
async fn sessions_move_between_replicas_through_redis() {
    let Some(redis) = devops_integration_tests::redis_url() else { return };
    sessions_move_between_replicas(crate::cache::redis_cache(&redis).await).await;
}

#[tokio::test]
async fn sessions_move_between_replicas_through_the_in_process_cache() {
    sessions_move_between_replicas(Arc::new(MemoryCache::new())).await;
}

/// Two replicas on one cache, no sticky routing: a session opened on one is
/// served by the other, only ever to its own tenant, and closing it on
/// either closes it on both.
async fn sessions_move_between_replicas(cache: Arc<dyn Cache>) {
    let config = Config::default();
    let first = TestMcp::start_with_cache(config.clone(), cache.clone()).await;
    let second_url = serve_replica(&config, first.store.clone(), cache.clone(), first._dir.path()).await;
    let acme = first.store.create_tenant("acme").await.expect("tenant").id;
    let globex = first.store.create_tenant("globex").await.expect("tenant").id;
    let key = first.key(acme, vec![Scope::Write]).await;
    let intruder_key = first.key(globex, vec![Scope::Write]).await;

    let mut session = first.session(&key, &[]).await;
    let session_id = session.session_id.clone().expect("a stateful session");
    let (_, created, _) = session.call("create_context", json!({ "name": "travels" })).await;
    session.url = second_url.clone();
    let (is_error, page, _) = session.call("get_context", json!({ "context_id": created["id"] })).await;
    assert!(!is_error, "the second replica restores the session: {page}");
    assert_eq!(page["context"]["name"], "travels");
    assert!(session.tool_names().await.contains(&"get_context".to_owned()));
    assert_eq!(session.session_id.as_deref(), Some(session_id.as_str()), "the same session throughout");

    // Another tenant holding the id gets what an unknown session gets, on both replicas.
    for url in [&first.url, &second_url] {
        let mut intruder = session.listener();
        intruder.url = url.clone();
        intruder.key = intruder_key.clone();
        let (status, _) = intruder.raw(json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
    }

    // Closed on the second replica, the session is gone from the first too.
    let closed = reqwest::Client::new()
        .delete(&second_url)
        .bearer_auth(&key)
        .header("mcp-session-id", &session_id)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .expect("DELETE");
    assert!(closed.status().is_success(), "{}", closed.status());
    session.url = first.url.clone();
    let (status, _) = session.raw(json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list" }).to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Closing the audit writer writes every entry still queued: more than one
/// batch, for several tenants.
#[tokio::test]
async fn the_audit_writer_writes_everything_queued_before_it_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let mut tenants = Vec::new();
    for name in ["audit-a", "audit-b", "audit-c"] {
        tenants.push(store.create_tenant(name).await.expect("tenant").id);
    }
    let writer = devops_mcp_server::audit::AuditWriter::start(store.clone());
    for call in 0..600 {
        let entry = devops_models::NewAuditEntry {
            actor_key_id: None,
            action: "tool.call".into(),
            target: Some(format!("tool-{call}")),
            outcome: devops_models::AuditOutcome::Success,
            duration_ms: 1,
            detail: json!({}),
        };
        writer.record(tenants[call % 3], entry).await;
    }
    writer.close().await;
    for tenant in tenants {
        assert_eq!(store.list_audit(tenant, 200).await.expect("list").len(), 200);
    }
}

/// `notifications/cancelled` stops a running tool; the session keeps working.
#[tokio::test]
async fn a_cancelled_tool_call_stops_and_the_session_carries_on() {
    // The conformance fixtures' progress tool runs long enough to cancel.
    let mut config = Config { dev: true, ..Config::default() };
    config.mcp.conformance_fixtures = true;
    let (mcp, tenant) = fixture(config).await;
    let mut session = mcp.session(&mcp.key(tenant, vec![Scope::Write]).await, &[]).await;
    let mut caller = McpSession {
        url: session.url.clone(),
        key: session.key.clone(),
        headers: Vec::new(),
        session_id: session.session_id.clone(),
        next_id: 500,
        client: reqwest::Client::new(),
    };
    let running = tokio::spawn(async move {
        let call = json!({ "jsonrpc": "2.0", "id": 50, "method": "tools/call",
            "params": { "name": "test_tool_with_progress", "arguments": {}, "_meta": { "progressToken": "p" } } });
        caller.raw(call.to_string()).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    let (status, _) = session
        .raw(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 50, "reason": "test" } }).to_string())
        .await;
    assert!(status.is_success(), "{status}");
    let (_, messages) =
        tokio::time::timeout(std::time::Duration::from_secs(10), running).await.expect("ends").expect("task");
    let completed = messages
        .iter()
        .any(|m| m["id"] == 50 && m["result"]["content"][0]["text"] == "Tool with progress executed successfully");
    assert!(!completed, "the tool ran to completion despite the cancellation: {messages:?}");
    assert!(
        messages.iter().any(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "p"),
        "the call's progress rides its own stream: {messages:?}"
    );
    let ping = session.request("ping", json!({})).await;
    assert!(ping["result"].is_object(), "the session carries on: {ping}");
}
