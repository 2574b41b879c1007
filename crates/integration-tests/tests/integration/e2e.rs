//! End to end: whole fleets of real processes on loopback, on the real back
//! ends and on the embedded defaults.

use std::time::{Duration, Instant};

use devops_integration_tests::fleet::{BackendKind, Fleet, SERVICES, binary};
use devops_integration_tests::{CuttableProxy, aws_endpoint, free_port, postgres_url, redis_url, socket_addr};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::code_index::{Repo, seed};
use crate::mcp::McpSession;
use crate::reviews::{Remote, risky_change};

fn production() -> Option<BackendKind> {
    Some(BackendKind::Production {
        postgres_url: postgres_url()?,
        redis_url: redis_url()?,
        aws_endpoint: aws_endpoint()?,
    })
}

/// The checks every fleet must pass, however it was started.
async fn exercise(fleet: &Fleet) {
    fleet.wait_ready().await;
    let client = reqwest::Client::new();
    for service in SERVICES {
        let health = client.get(format!("{}/healthz", fleet.http(service))).send().await.expect("healthz");
        assert_eq!(health.status(), StatusCode::OK, "{service} /healthz");
        let ready: Value = client
            .get(format!("{}/readyz", fleet.http(service)))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["ready"], true, "{service} /readyz: {ready}");
    }
    for (service, grpc_name) in [
        ("indexer", "devops_mcp.indexer.v1.Indexer"),
        ("pr-manager", "devops_mcp.pull_requests.v1.PullRequests"),
        ("reviewer", "devops_mcp.reviewer.v1.Reviewer"),
    ] {
        let channel = tonic::transport::Endpoint::from_shared(fleet.http(service))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest { service: grpc_name.into() })
            .await
            .unwrap_or_else(|err| panic!("{service} gRPC health: {err}"))
            .into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service}");
    }
    grpc_edges(fleet).await;

    // One authenticated request through rest-api.
    let rest = fleet.http("rest-api");
    let me: Value = client
        .get(format!("{rest}/api/v1/tenants/current"))
        .bearer_auth(&fleet.api_key)
        .send()
        .await
        .expect("rest")
        .json()
        .await
        .expect("json");
    assert!(me["id"].is_string(), "{me}");
    let anonymous = client.get(format!("{rest}/api/v1/tenants/current")).send().await.expect("rest");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // One authenticated request through mcp-server.
    let identity = mcp_whoami(fleet).await;
    assert_eq!(identity["tenant_id"], me["id"], "MCP and REST agree on the tenant");

    // A tenant created over REST is provisioned by the worker, via outbox and queue.
    let tenant: Value = client
        .post(format!("{rest}/api/v1/tenants"))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "name": "provisioned" }))
        .send()
        .await
        .expect("create tenant")
        .json()
        .await
        .expect("json");
    let created: Value = client
        .post(format!("{rest}/api/v1/tenants/{}/keys", tenant["id"].as_str().expect("id")))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "name": "owner", "scopes": ["admin"] }))
        .send()
        .await
        .expect("create key")
        .json()
        .await
        .expect("json");
    let owner_key = created["secret"].as_str().expect("secret");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit: Value = client
            .get(format!("{rest}/api/v1/audit"))
            .bearer_auth(owner_key)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let actions: Vec<&str> =
            audit["items"].as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
        if actions.contains(&"tenant.provisioned") {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never provisioned the tenant: {audit}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Reflection lists the service, and a malformed request is refused at the
/// edge with our error code.
async fn grpc_edges(fleet: &Fleet) {
    use devops_proto::indexer::v1::SearchRequest;
    use devops_proto::indexer::v1::indexer_client::IndexerClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let channel = tonic::transport::Endpoint::from_shared(fleet.http("indexer"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("reflection answer").expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "devops_mcp.indexer.v1.Indexer"), "{names:?}");
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("Reviewer")), "only what this server answers: {names:?}");

    let refused = IndexerClient::new(channel)
        .search(SearchRequest { tenant_id: "not-a-uuid".into(), query: "x".into(), ..Default::default() })
        .await
        .expect_err("bad tenant id");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(devops_errors::ApiError::from(&refused).code, devops_errors::ErrorCode::InvalidArgument);
}

/// Initializes an MCP session over Streamable HTTP and calls `whoami`.
async fn mcp_whoami(fleet: &Fleet) -> Value {
    let url = format!("{}/mcp", fleet.http("mcp-server"));
    let client = reqwest::Client::new();
    let post = |body: Value, session: Option<String>| {
        let mut request = client
            .post(&url)
            .bearer_auth(&fleet.api_key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let unauthenticated = client.post(&url).json(&json!({})).send().await.expect("post");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    let init = post(
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "0" } } }),
        None,
    )
    .await
    .expect("initialize");
    assert_eq!(init.status(), StatusCode::OK);
    let session = init.headers().get("mcp-session-id").map(|v| v.to_str().expect("ascii").to_owned());
    let init = jsonrpc_result(&init.text().await.expect("body"));
    assert_eq!(init["serverInfo"]["name"], "devops-mcp");
    post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }), session.clone())
        .await
        .expect("initialized");
    let call = post(
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } }),
        session,
    )
    .await
    .expect("tools/call");
    let result = jsonrpc_result(&call.text().await.expect("body"));
    let text = result["content"][0]["text"].as_str().expect("text content");
    serde_json::from_str(text).expect("identity json")
}

/// The `result` of a JSON-RPC response sent as plain JSON or as SSE events.
fn jsonrpc_result(body: &str) -> Value {
    let messages: Vec<Value> = if body.trim_start().starts_with('{') {
        vec![serde_json::from_str(body).expect("json")]
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    };
    messages.into_iter().find_map(|m| m.get("result").cloned()).unwrap_or_else(|| panic!("no result in {body}"))
}

/// Index and search across the fleet: an agent indexes over MCP with
/// progress, searches and reads; a program asks over REST for a re-index,
/// which travels the queue to the worker and the indexer.
async fn code_flow(fleet: &Fleet, repo: &Repo) {
    let mut mcp = McpSession::open(
        &format!("{}/mcp", fleet.http("mcp-server")),
        &fleet.api_key,
        &[("x-mcp-toolsets", "search,repos")],
    )
    .await;
    let call = json!({
        "jsonrpc": "2.0", "id": 100, "method": "tools/call",
        "params": { "name": "index_repository", "arguments": { "repository_url": repo.url() }, "_meta": { "progressToken": "idx" } },
    });
    // A second agent asks for the same repository at the same time: it joins
    // the run under way instead of starting one (which would read nothing).
    let mut other =
        McpSession::open(&format!("{}/mcp", fleet.http("mcp-server")), &fleet.api_key, &[("x-mcp-toolsets", "search")])
            .await;
    let ((status, messages), (_, joined, _)) = tokio::join!(
        mcp.raw(call.to_string()),
        other.call("index_repository", json!({ "repository_url": repo.url() })),
    );
    assert_eq!(joined["files_read"], 410, "the second request shares the first one's run: {joined}");
    assert_eq!(status, StatusCode::OK);
    let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(!progress.is_empty(), "progress is reported: {messages:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "idx"));
    let result = messages.iter().find(|m| m["id"] == 100).expect("result");
    assert_ne!(result["result"]["isError"], true, "{result}");
    let indexed = &result["result"]["structuredContent"];
    assert_eq!(indexed["commit"], repo.head());
    assert_eq!((indexed["files_read"].as_u64(), indexed["files_skipped"].as_u64()), (Some(410), Some(3)), "{indexed}");

    let (is_error, found, _) =
        mcp.call("search_code", json!({ "query": "where do we verify webhook signatures?" })).await;
    assert!(!is_error, "{found}");
    assert_eq!(found["hits"][0]["path"], "src/webhooks.rs", "{found}");
    assert_eq!(found["hits"][0]["symbol"], "verify_webhook_signature");
    let (is_error, file, _) = mcp.call("get_file", json!({ "repository": repo.url(), "path": "src/render.rs" })).await;
    assert!(!is_error, "{file}");
    assert!(file["content"].as_str().expect("content").contains("render_markdown_table"));
    let (_, repos, _) = mcp.call("list_repositories", json!({})).await;
    assert_eq!(repos["repositories"][0]["state"], "ready", "{repos}");
    let repository_id = repos["repositories"][0]["id"].as_str().expect("id").to_owned();
    let (is_error, refused, _) =
        mcp.call("index_repository", json!({ "repository_url": "https://169.254.169.254/x" })).await;
    assert!(is_error);
    assert_eq!(refused["code"], "url_not_allowed", "{refused}");

    // A new commit, re-indexed through REST → outbox → queue → worker → indexer.
    repo.write("src/limits.rs", "pub fn clamp_page_size(n: u32) -> u32 {\n    n.clamp(1, 200)\n}\n");
    repo.commit("limits");
    let rest = fleet.http("rest-api");
    let client = reqwest::Client::new();
    let queued = client
        .post(format!("{rest}/api/v1/repositories/{repository_id}/index"))
        .bearer_auth(&fleet.api_key)
        .json(&json!({}))
        .send()
        .await
        .expect("index request");
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current: Value = client
            .get(format!("{rest}/api/v1/repositories/{repository_id}"))
            .bearer_auth(&fleet.api_key)
            .send()
            .await
            .expect("get repository")
            .json()
            .await
            .expect("json");
        if current["last_indexed_commit"] == repo.head() {
            assert_eq!(current["state"], "ready", "{current}");
            break;
        }
        assert!(Instant::now() < deadline, "the push was not indexed within 60s: {current}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hits: Value = client
        .post(format!("{rest}/api/v1/search"))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "query": "clamp_page_size", "limit": 3 }))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(hits["hits"][0]["path"], "src/limits.rs", "{hits}");
    let ssrf = client
        .post(format!("{rest}/api/v1/repositories"))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "url": "https://127.0.0.1:8443/internal.git" }))
        .send()
        .await
        .expect("register");
    assert_eq!(ssrf.status(), StatusCode::FORBIDDEN);
    assert_eq!(ssrf.json::<Value>().await.expect("json")["error"]["code"], "url_not_allowed");

    // The indexer's own status, over gRPC.
    let tenant: Value = client
        .get(format!("{rest}/api/v1/tenants/current"))
        .bearer_auth(&fleet.api_key)
        .send()
        .await
        .expect("tenant")
        .json()
        .await
        .expect("json");
    let tenant_id = tenant["id"].as_str().expect("tenant id").to_owned();
    let mut indexer = devops_proto::indexer::v1::indexer_client::IndexerClient::connect(fleet.http("indexer"))
        .await
        .expect("connect indexer");
    let status = indexer
        .get_index_status(devops_proto::indexer::v1::GetIndexStatusRequest {
            tenant_id: tenant_id.clone(),
            repository_url: repo.url(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!((status.status.as_str(), status.last_indexed_commit.clone()), ("ready", repo.head()));
    assert_eq!(status.repository_id.as_str(), repository_id);
    assert!(status.chunks > 0 && status.files == 410, "{status:?}");

    // And from a terminal.
    let tenant_name = tenant["name"].as_str().expect("tenant name");
    let indexed = fleet.admin(&["index", &repo.url(), "--tenant", tenant_name]).await;
    assert!(indexed.contains(": 0 files read"), "nothing changed since the last run: {indexed}");
    let found = fleet.admin(&["search", "clamp page size", "--tenant", tenant_name, "--limit", "1"]).await;
    assert!(found.starts_with("1. src/limits.rs:1-3  clamp_page_size"), "{found}");
}

/// A counter of the worker's `/metrics`, 0 until it appears.
async fn worker_count(fleet: &Fleet, event_type: &str, outcome: &str) -> u64 {
    let wanted = [format!("event_type=\"{event_type}\""), format!("outcome=\"{outcome}\"")];
    worker_events(fleet)
        .await
        .iter()
        .filter(|l| wanted.iter().all(|w| l.contains(w.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The worker's `worker_events_total` lines from its `/metrics`.
async fn worker_events(fleet: &Fleet) -> Vec<String> {
    let text =
        reqwest::get(format!("{}/metrics", fleet.http("worker"))).await.expect("metrics").text().await.expect("text");
    text.lines().filter(|l| l.starts_with("worker_events_total{")).map(str::to_owned).collect()
}

/// Polls `check` until it yields, for up to 60 s.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    eventually_or_explain(what, check, || async { String::new() }).await
}

/// [`eventually`], with what `explain` finds added to the failure.
async fn eventually_or_explain<T, F: Future<Output = Option<T>>, E: Future<Output = String>>(
    what: &str,
    mut check: impl FnMut() -> F,
    explain: impl FnOnce() -> E,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        if Instant::now() >= deadline {
            panic!("{what} did not happen within 60 s{}", explain().await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Change to review, across the fleet: an agent opens a pull request over
/// MCP that plants an AWS key and SQL built by concatenation; the opened
/// event travels outbox → queue → worker → reviewer, which posts a review
/// with both findings at the right lines and the key redacted. A webhook
/// delivered twice reviews once; a poison delivery dead-letters, is
/// redriven, and then succeeds.
async fn review_flow(fleet: &Fleet, remote: &Remote) -> String {
    let rest = fleet.http("rest-api");
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{rest}/api/v1/repositories"))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "url": remote.url(), "index": false }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let repository_id = registered["id"].as_str().expect("id").to_owned();
    let canonical = registered["url"].as_str().expect("url").to_owned();
    let mut mcp = McpSession::open(
        &format!("{}/mcp", fleet.http("mcp-server")),
        &fleet.api_key,
        &[("x-mcp-toolsets", "pull_requests,reviews")],
    )
    .await;
    let change = risky_change();
    let files: Vec<Value> = change
        .files
        .iter()
        .map(|f| json!({ "path": f.path, "action": "modify", "content": String::from_utf8_lossy(&f.content) }))
        .collect();
    let (is_error, opened, _) = mcp
        .call(
            "create_pull_request",
            json!({ "repository_url": remote.url(), "title": "Find users by name", "files": files }),
        )
        .await;
    assert!(!is_error, "{opened}");
    assert_eq!((opened["number"].as_u64(), opened["state"].as_str()), (Some(1), Some("open")), "{opened}");

    let latest = format!("{rest}/api/v1/repositories/{repository_id}/pull-requests/1/reviews/latest");
    let review: Value = eventually("the review of the opened pull request", || async {
        let response = client.get(&latest).bearer_auth(&fleet.api_key).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        (body["status"] == "posted").then_some(body)
    })
    .await;
    let findings = review["findings"].as_array().expect("findings");
    let at = |rule: &str| findings.iter().find(|f| f["rule"] == rule).map(|f| (f["file"].clone(), f["line"].clone()));
    assert_eq!(at("aws-access-key-id"), Some((json!("app/db.py"), json!(3))), "{review}");
    assert_eq!(at("sql-string-building"), Some((json!("app/db.py"), json!(11))), "{review}");
    assert!(!review.to_string().contains("AKIAQ3EGUVWXF4ZN7KPD"), "the key is redacted everywhere: {review}");
    let (_, by_tool, _) = mcp.call("get_review", json!({ "review_id": review["id"] })).await;
    assert_eq!(by_tool["findings"].as_array().map(Vec::len), Some(findings.len()), "{by_tool}");
    let tenant: Value = client
        .get(format!("{rest}/api/v1/tenants/current"))
        .bearer_auth(&fleet.api_key)
        .send()
        .await
        .expect("tenant")
        .json()
        .await
        .expect("json");
    let tenant_name = tenant["name"].as_str().expect("name");
    let printed = fleet.admin(&["review", &remote.url(), "1", "--tenant", tenant_name, "--no-post", "--json"]).await;
    let from_cli: Value = serde_json::from_str(printed.trim()).expect("review json");
    assert_eq!(from_cli["status"], "computed", "{from_cli}");
    assert!(from_cli["findings"].as_array().is_some_and(|f| f.iter().any(|f| f["rule"] == "aws-access-key-id")));

    // The same webhook delivery twice: one review.
    let admin = fleet.api_key.clone();
    let secret: Value = client
        .post(format!("{rest}/api/v1/webhooks/github/secret"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("secret")
        .json()
        .await
        .expect("json");
    let hook_url = format!("{rest}{}", secret["path"].as_str().expect("path"));
    let secret = secret["secret"].as_str().expect("secret").to_owned();
    let deliver = |delivery: &'static str, number: u64| {
        let payload = json!({
            "action": "synchronize", "number": number,
            "pull_request": {"number": number, "title": "t", "head": {"sha": "0", "ref": "x"}, "base": {"ref": "main"}},
            "repository": {"clone_url": canonical, "default_branch": "main"},
        });
        let raw = serde_json::to_vec(&payload).expect("json");
        let signature = crate::webhooks::sign(&secret, &raw);
        let url = hook_url.clone();
        let client = client.clone();
        async move {
            let response = client
                .post(url)
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", delivery)
                .header("x-hub-signature-256", signature)
                .body(raw)
                .send()
                .await
                .expect("deliver");
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let answer: Value = response.json().await.expect("json");
            assert_eq!(answer["event_type"], "pull_request.synchronize", "{answer}");
        }
    };
    let before = worker_count(fleet, "pull_request.synchronize", "processed").await;
    let duplicates_before = worker_count(fleet, "pull_request.synchronize", "duplicate").await;
    deliver("dup-1", 1).await;
    deliver("dup-1", 1).await;
    // The duplicate can be absorbed while the first delivery still runs.
    let processed = eventually("the first delivery processed and the duplicate absorbed", || async {
        let processed = worker_count(fleet, "pull_request.synchronize", "processed").await;
        let duplicates = worker_count(fleet, "pull_request.synchronize", "duplicate").await;
        (processed > before && duplicates > duplicates_before).then_some(processed)
    })
    .await;
    assert_eq!(processed, before + 1, "two deliveries of one id review once");

    // Poison: a delivery for a pull request that does not exist yet.
    deliver("poison-1", 2).await;
    let dead: Value = eventually("the poison delivery in the dead-letter queue", || async {
        let body: Value = client
            .get(format!("{rest}/api/v1/dead-letters"))
            .bearer_auth(&admin)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|d| d["event"]["idempotency_key"] == "github:poison-1"))
            .then_some(body)
    })
    .await;
    assert!(dead.to_string().contains("pull_request.synchronize"), "{dead}");
    let listed = fleet.admin(&["dlq", "list"]).await;
    assert!(listed.contains("poison-1"), "{listed}");
    let (is_error, second, _) = mcp
        .call(
            "create_pull_request",
            json!({ "repository_url": remote.url(), "title": "Second", "files": [
            { "path": "docs/notes.md", "action": "add", "content": "notes\n" }
        ] }),
        )
        .await;
    assert!(!is_error && second["number"] == 2, "{second}");
    let done_before = worker_count(fleet, "pull_request.synchronize", "processed").await;
    let moved: Value = client
        .post(format!("{rest}/api/v1/dead-letters/redrive"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("redrive")
        .json()
        .await
        .expect("json");
    assert!(moved["moved"].as_u64().is_some_and(|n| n >= 1), "{moved}");
    eventually("the redriven delivery to succeed", || async {
        (worker_count(fleet, "pull_request.synchronize", "processed").await > done_before).then_some(())
    })
    .await;
    repository_id
}

/// Opens a pull request over REST and returns its number.
async fn open_pull_request(fleet: &Fleet, repository_id: &str, path: &str, content: &str) -> u64 {
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/repositories/{repository_id}/pull-requests", fleet.http("rest-api")))
        .bearer_auth(&fleet.api_key)
        .json(&json!({ "title": format!("Change {path}"), "files": [{ "path": path, "action": "add", "content": content }] }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["number"].as_u64().unwrap_or_else(|| panic!("no pull request: {created}"))
}

/// The id of the newest posted review of a pull request, once there is one.
async fn posted_review(fleet: &Fleet, repository_id: &str, number: u64) -> Option<String> {
    let url =
        format!("{}/api/v1/repositories/{repository_id}/pull-requests/{number}/reviews/latest", fleet.http("rest-api"));
    let body: Value =
        reqwest::Client::new().get(url).bearer_auth(&fleet.api_key).send().await.ok()?.json().await.ok()?;
    (body["status"] == "posted").then(|| body["id"].as_str().map(str::to_owned)).flatten()
}

/// Failures of separate processes: the reviewer down (its circuit opens,
/// the event waits on the queue and is reviewed once it is back), and the
/// worker killed in the middle of an event (it is redelivered to the
/// restarted worker and handled once).
async fn failure_flow(fleet: &mut Fleet, repository_id: &str) {
    fleet.kill("reviewer").await;
    let number = open_pull_request(fleet, repository_id, "docs/outage.md", "written during an outage\n").await;
    eventually("the reviewer's circuit to open", || async {
        (worker_count(fleet, "pull_request.opened", "deferred").await >= 1).then_some(())
    })
    .await;
    assert!(posted_review(fleet, repository_id, number).await.is_none());
    fleet.restart("reviewer").await;
    eventually("the held event to be reviewed once the reviewer is back", || {
        posted_review(fleet, repository_id, number)
    })
    .await;
    // Pull requests are numbered from 1 and each opens one event: every
    // event opened so far, including any held with this one, is done
    // before the worker is killed.
    eventually_or_explain(
        "the worker to finish every held event",
        || async { (worker_count(fleet, "pull_request.opened", "processed").await >= number).then_some(()) },
        || async {
            let dead = fleet.admin(&["dlq", "list"]).await;
            format!(": {:#?}\ndead letters: {dead}", worker_events(fleet).await)
        },
    )
    .await;

    // The LLM stand-in holds reviews of this change for 3 s: the worker is
    // mid-event when it is killed.
    let number = open_pull_request(fleet, repository_id, "docs/slow-review.md", "SLOW_REVIEW\n").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fleet.kill("worker").await;
    fleet.restart("worker").await;
    let first =
        eventually("the redelivered event to be reviewed", || posted_review(fleet, repository_id, number)).await;
    eventually("the restarted worker to process the redelivered event", || async {
        (worker_count(fleet, "pull_request.opened", "processed").await >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(worker_count(fleet, "pull_request.opened", "processed").await, 1, "handled once after the crash");
    assert!(posted_review(fleet, repository_id, number).await.is_some_and(|latest| latest >= first));
}

/// An OpenAI-compatible chat stand-in for the reviewer's LLM pass: no
/// findings, after 3 s for diffs that ask for a slow review.
async fn slow_llm() -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
            if body["messages"][1]["content"].as_str().is_some_and(|d| d.contains("SLOW_REVIEW")) {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let answer = json!({"findings": []}).to_string();
            axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": answer}}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A seeded repository the fleet may index by path.
fn code_fleet_repo() -> Repo {
    let repo = Repo::new();
    // Enough files that a run lasts while a second request arrives.
    for n in 0..400 {
        repo.write(&format!("gen/module_{n:03}.rs"), format!("pub fn generated_{n}() -> u32 {{\n    {n}\n}}\n"));
    }
    seed(&repo);
    repo
}

/// The repositories a fleet works on, allowed by path.
fn fleet_repos(fleet: &mut Fleet) -> (Repo, Remote) {
    let repo = code_fleet_repo();
    let remote = Remote::new();
    fleet.set(format!(
        r#"indexer.allowed_local_paths=["{}","{}"]"#,
        repo.root.path().display(),
        remote.root.path().display()
    ));
    (repo, remote)
}

#[tokio::test]
async fn e2e_six_processes_on_production_backends() {
    let Some(backends) = production() else { return };
    let mut fleet = Fleet::new(backends).await;
    let (repo, remote) = fleet_repos(&mut fleet);
    for item in ["worker.breaker_threshold=2", "worker.breaker_cooldown_secs=2", "queue.max_receives=20"] {
        fleet.set(item);
    }
    fleet.set(format!("reviewer.llm_url={}", slow_llm().await));
    fleet.set("reviewer.llm_model=stand-in");
    fleet.start_separate().await;
    exercise(&fleet).await;
    code_flow(&fleet, &repo).await;
    let repository_id = review_flow(&fleet, &remote).await;
    failure_flow(&mut fleet, &repository_id).await;
    fleet.terminate().await;
}

#[tokio::test]
async fn e2e_up_on_embedded_defaults() {
    let mut fleet = Fleet::new(BackendKind::Embedded).await;
    let (repo, remote) = fleet_repos(&mut fleet);
    fleet.start_up().await;
    exercise(&fleet).await;
    code_flow(&fleet, &repo).await;
    review_flow(&fleet, &remote).await;
    fleet.terminate().await;
}

#[tokio::test]
async fn e2e_up_on_production_backends() {
    let Some(backends) = production() else { return };
    let mut fleet = Fleet::new(backends).await;
    fleet.start_up().await;
    exercise(&fleet).await;
    fleet.terminate().await;
}

/// Readiness follows PostgreSQL and Redis going away and coming back,
/// without a restart.
#[tokio::test]
async fn e2e_readiness_follows_dependencies() {
    let (Some(pg), Some(redis)) = (postgres_url(), redis_url()) else { return };
    let database = devops_integration_tests::fresh_postgres_database(&pg).await;
    let pg_proxy = CuttableProxy::start(socket_addr(&database)).await;
    let redis_proxy = CuttableProxy::start(socket_addr(&redis)).await;
    let mut proxied_db = url::Url::parse(&database).expect("url");
    proxied_db.set_port(Some(pg_proxy.addr.port())).expect("port");
    let port = free_port();
    let args = [
        format!("store.url={proxied_db}"),
        "store.connect_timeout_secs=1".into(),
        "cache.kind=redis".into(),
        format!("cache.url=redis://{}", redis_proxy.addr),
        format!("services.mcp_server.listen=127.0.0.1:{port}"),
    ];
    let run = |program: &str, extra: &[&str]| {
        let mut command = tokio::process::Command::new(binary(program));
        for arg in &args {
            command.arg("--set").arg(arg);
        }
        command.args(extra).env("RUST_LOG", "error").kill_on_drop(true);
        command
    };
    assert!(run("devops-mcp", &["migrate"]).status().await.expect("migrate").success());
    let mut server = run("mcp-server", &[]).spawn().expect("spawn");
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let client = reqwest::Client::new();
    let wait_for = |want: StatusCode| {
        let client = client.clone();
        let readyz = readyz.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = client.get(&readyz).timeout(Duration::from_secs(5)).send().await.map(|r| r.status());
                if got.as_ref().ok() == Some(&want) {
                    return;
                }
                assert!(Instant::now() < deadline, "readyz never became {want}: {got:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(StatusCode::OK).await;
    redis_proxy.cut();
    wait_for(StatusCode::SERVICE_UNAVAILABLE).await;
    redis_proxy.restore();
    wait_for(StatusCode::OK).await;
    pg_proxy.cut();
    wait_for(StatusCode::SERVICE_UNAVAILABLE).await;
    pg_proxy.restore();
    wait_for(StatusCode::OK).await;
    let health = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK, "liveness never depended on them");
    let pid = server.id().expect("pid").to_string();
    tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    let exit =
        tokio::time::timeout(Duration::from_secs(10), server.wait()).await.expect("exit within 10s").expect("wait");
    assert!(exit.success(), "{exit}");
}

/// Start-up failures are clear and use sysexits codes, with no panic.
#[tokio::test]
async fn e2e_bad_config_and_missing_dependencies_fail_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = format!("data_dir={}", dir.path().display());
    let cases: [(&str, Vec<&str>, i32, &str); 5] = [
        ("rest-api", vec!["--set", "queue.max_receives=0"], 64, "max_receives"),
        ("worker", vec!["--set", "auth.disabled=true"], 64, "--dev"),
        ("indexer", vec!["--config", "/nonexistent/devops-mcp.toml"], 64, "no such file"),
        (
            "mcp-server",
            vec!["--set", "cache.kind=redis", "--set", "cache.url=redis://127.0.0.1:9"],
            69,
            "redis unavailable",
        ),
        (
            "worker",
            vec!["--set", "queue.kind=sqs", "--set", "aws.endpoint_url=http://127.0.0.1:9"],
            69,
            "sqs unavailable",
        ),
    ];
    assert!(
        tokio::process::Command::new(binary("devops-mcp"))
            .args(["--set", &data, "migrate"])
            .status()
            .await
            .expect("migrate")
            .success()
    );
    for (program, args, code, needle) in cases {
        let output = tokio::process::Command::new(binary(program))
            .args(["--set", &data])
            .args(&args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "off")
            .output()
            .await
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{program} {args:?}: {stderr}");
        assert!(stderr.contains(needle), "{program} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{program} {args:?}: {stderr}");
    }
}
