//! The REST API served in-process on a real socket: authentication, scopes,
//! tenant isolation and bad input.

use std::sync::Arc;

use chrono::{Duration, Utc};
use devops_models::{ApiKeySecret, Scope, TenantId};
use devops_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct TestApi {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestApi {
    pub async fn start() -> TestApi {
        Self::start_with(devops_config::Config {
            limits: devops_config::LimitsConfig { max_request_body_bytes: 64 * 1024 },
            ..devops_config::Config::default()
        })
        .await
    }

    pub async fn start_with(config: devops_config::Config) -> TestApi {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = devops_integration_tests::sqlite_store(dir.path()).await;
        let secrets =
            devops_adapters::secrets::FileSecrets::open(dir.path().join("secrets"), []).await.expect("secrets");
        let router = devops_rest_api::app(
            devops_rest_api::AppState::new(
                store.clone(),
                std::sync::Arc::new(devops_adapters::cache::MemoryCache::new()),
                std::sync::Arc::new(secrets),
                std::sync::Arc::new(
                    devops_adapters::queue::SqliteQueue::open(
                        &dir.path().join("queue.db"),
                        devops_adapters::queue::QueueSettings {
                            name: "rest".into(),
                            max_receives: 5,
                            visibility_timeout: std::time::Duration::from_secs(30),
                        },
                    )
                    .await
                    .expect("queue"),
                ),
                &config,
            )
            .await
            .expect("state"),
            devops_runtime::ops::Readiness::default(),
            &config,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        TestApi { base, store, client: reqwest::Client::new(), _dir: dir }
    }

    pub async fn key(&self, tenant: TenantId, scopes: Vec<Scope>) -> String {
        let (secret, record) = ApiKeySecret::generate("test", scopes, None);
        self.store.create_api_key(tenant, &record).await.expect("create key");
        secret.expose().to_owned()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn every_bad_credential_gets_401_with_a_stable_code() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("acme").await.expect("tenant");

    let response = api.client.get(format!("{}/api/v1/tenants/current", api.base)).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer")));
    assert_eq!(code(&response.json().await.expect("json")), "unauthenticated");

    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some("garbage"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    let (forged, _) = ApiKeySecret::generate("forged", vec![Scope::Read], None);
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(forged.expose()), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    let (expired, record) = ApiKeySecret::generate("old", vec![Scope::Read], Some(Utc::now() - Duration::minutes(1)));
    api.store.create_api_key(tenant.id, &record).await.expect("create");
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(expired.expose()), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "expired_api_key"));

    let valid = api.key(tenant.id, vec![Scope::Read]).await;
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&valid), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "acme");
}

#[tokio::test]
async fn keys_are_created_once_used_and_revoked() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("acme").await.expect("tenant");
    let admin = api.key(tenant.id, vec![Scope::Admin]).await;

    let (status, created) = api
        .call(reqwest::Method::POST, "/api/v1/keys", Some(&admin), Some(json!({ "name": "ci", "scopes": ["read"] })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let key_id = created["key"]["id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with(created["key"]["prefix"].as_str().expect("prefix")));

    let (status, listed) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.to_string().find(&secret).is_none(), "secrets are never listed");

    let (status, _) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&secret), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "read cannot list keys");

    let (status, revoked) =
        api.call(reqwest::Method::POST, &format!("/api/v1/keys/{key_id}/revoke"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&secret), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "revoked_api_key"));

    let (_, admin_keys) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&admin), None).await;
    let admin_id = admin_keys["items"][0]["id"].as_str().expect("admin key id").to_owned();
    let (status, body) =
        api.call(reqwest::Method::POST, &format!("/api/v1/keys/{admin_id}/revoke"), Some(&admin), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"), "a key cannot lock its tenant out");

    let (_, audit) = api.call(reqwest::Method::GET, "/api/v1/audit", Some(&admin), None).await;
    let actions: Vec<&str> =
        audit["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
}

/// A key's last use is recorded once per interval, not on every request
/// (the cached key record lags the store, so it cannot tell by itself).
#[tokio::test]
async fn a_keys_last_use_is_written_once_per_interval() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("acme").await.expect("tenant");
    let secret = api.key(tenant.id, vec![Scope::Read]).await;
    let key_id = api.store.list_api_keys(tenant.id, devops_store::Page::first(1)).await.expect("keys")[0].id;
    let last_used = || async { api.store.get_api_key(tenant.id, key_id).await.expect("key").last_used_at };

    let (status, _) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut first = None;
    for _ in 0..100 {
        first = last_used().await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(first.is_some(), "the first use is recorded");
    for _ in 0..5 {
        api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&secret), None).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(last_used().await, first, "later uses within the interval write nothing");
}

#[tokio::test]
async fn scopes_cannot_be_escalated() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("acme").await.expect("tenant");
    let admin = api.key(tenant.id, vec![Scope::Admin]).await;
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(&admin),
            Some(json!({ "name": "x", "scopes": ["platform:admin"] })),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) =
        api.call(reqwest::Method::POST, "/api/v1/tenants", Some(&admin), Some(json!({ "name": "other" }))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "tenants need platform:admin");
}

#[tokio::test]
async fn tenants_cannot_see_each_other() {
    let api = TestApi::start().await;
    let a = api.store.create_tenant("tenant-a").await.expect("a");
    let b = api.store.create_tenant("tenant-b").await.expect("b");
    let a_admin = api.key(a.id, vec![Scope::Admin]).await;
    let b_admin = api.key(b.id, vec![Scope::Admin]).await;
    let (_, b_keys) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&b_admin), None).await;
    let b_key_id = b_keys["items"][0]["id"].as_str().expect("b key").to_owned();

    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/keys/{b_key_id}")),
        (reqwest::Method::POST, format!("/api/v1/keys/{b_key_id}/revoke")),
        (reqwest::Method::GET, format!("/api/v1/tenants/{}", b.id)),
    ] {
        let (status, body) = api.call(method.clone(), &path, Some(&a_admin), None).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{method} {path}");
    }
    let (_, a_keys) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&a_admin), None).await;
    assert_eq!(a_keys["items"].as_array().expect("items").len(), 1);
    let (status, _) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&b_admin), None).await;
    assert_eq!(status, StatusCode::OK, "b's key still works: a's revoke did nothing");

    let platform = api.key(a.id, vec![Scope::PlatformAdmin]).await;
    let (status, body) =
        api.call(reqwest::Method::GET, &format!("/api/v1/tenants/{}", b.id), Some(&platform), None).await;
    assert_eq!((status, body["name"].as_str()), (StatusCode::OK, Some("tenant-b")));
}

/// A tenant's admins switch tools off for all its keys; each change bumps
/// the version MCP servers poll.
#[tokio::test]
async fn tenants_switch_tools_off_with_a_versioned_setting() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("tools").await.expect("tenant");
    let admin = api.key(tenant.id, vec![Scope::Admin]).await;
    let reader = api.key(tenant.id, vec![Scope::Read]).await;
    let path = "/api/v1/tenants/current/tools";
    let (status, initial) = api.call(reqwest::Method::GET, path, Some(&reader), None).await;
    assert_eq!((status, initial), (StatusCode::OK, json!({ "disabled_tools": [], "version": 0 })));
    let body = json!({ "disabled_tools": ["merge_pull_request", "delete_context", "merge_pull_request"] });
    let (status, _) = api.call(reqwest::Method::PUT, path, Some(&reader), Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "needs admin");
    let (status, saved) = api.call(reqwest::Method::PUT, path, Some(&admin), Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(saved, json!({ "disabled_tools": ["delete_context", "merge_pull_request"], "version": 1 }));
    for bad in [json!({ "disabled_tools": ["Drop Table"] }), json!({ "disabled_tools": "x" }), json!([])] {
        let (status, answer) = api.call(reqwest::Method::PUT, path, Some(&admin), Some(bad.clone())).await;
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "invalid_argument"), "{bad}");
    }
    let (_, cleared) = api.call(reqwest::Method::PUT, path, Some(&admin), Some(json!({ "disabled_tools": [] }))).await;
    assert_eq!(cleared, json!({ "disabled_tools": [], "version": 2 }));
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let api = TestApi::start().await;
    let tenant = api.store.create_tenant("acme").await.expect("tenant");
    let platform = api.key(tenant.id, vec![Scope::PlatformAdmin]).await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        api.client
            .post(format!("{}/api/v1/tenants", api.base))
            .bearer_auth(&platform)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: [(reqwest::Body, &str, StatusCode, &str); 5] = [
        ("{not json".into(), "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
        (r#"{"name": 5}"#.into(), "application/json", StatusCode::BAD_REQUEST, "invalid_argument"),
        (r#"{"name": "Bad Name"}"#.into(), "application/json", StatusCode::BAD_REQUEST, "invalid_argument"),
        (r#"{"name": "x"}"#.into(), "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (
            format!(r#"{{"name": "{}"}}"#, "a".repeat(100_000)).into(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (body, content_type, expected_status, expected_code) in cases {
        let response = post(body, content_type).await.expect("send");
        let status = response.status();
        let body: Value = response.json().await.expect("json error body");
        assert_eq!((status, code(&body)), (expected_status, expected_code), "{body}");
    }
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/keys/not-a-uuid", Some(&platform), None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_argument"));
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/keys?limit=0", Some(&platform), None).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_argument"));
    let (status, body) = api.call(reqwest::Method::GET, "/api/v1/nothing-here", Some(&platform), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = api.call(reqwest::Method::PUT, "/api/v1/keys", Some(&platform), None).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let (status, body) =
        api.call(reqwest::Method::POST, "/api/v1/tenants", Some(&platform), Some(json!({ "name": "acme" }))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(
        api.store.list_tenants(devops_store::Page::first(10)).await.expect("list").len(),
        1,
        "nothing half-made"
    );
}

#[tokio::test]
async fn docs_and_health_are_open_and_the_api_is_described() {
    let api = TestApi::start().await;
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let response = api.client.get(format!("{}{path}", api.base)).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let (_, doc) = api.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in ["/api/v1/tenants", "/api/v1/keys", "/api/v1/keys/{key_id}", "/api/v1/audit"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    // Each route, method and status is its own series, counted per request.
    let count = |metrics: &str, status: &str| -> u64 {
        let series = format!("route=\"/api/v1/openapi.json\",status=\"{status}\"");
        metrics
            .lines()
            .find(|line| line.starts_with("http_requests_total{") && line.contains(&series))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let scrape = || async {
        api.client.get(format!("{}/metrics", api.base)).send().await.expect("send").text().await.expect("text")
    };
    let before = scrape().await;
    assert!(count(&before, "200") >= 1, "requests are counted: {before}");
    api.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    api.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    api.call(reqwest::Method::POST, "/api/v1/openapi.json", None, None).await;
    let after = scrape().await;
    assert_eq!(count(&after, "200"), count(&before, "200") + 2, "{after}");
    assert_eq!(count(&after, "405"), count(&before, "405") + 1, "another status, another series: {after}");
}

mod jwt {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    use super::*;

    /// A P-256 key made for this test only.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgA2lBdvpO9Tkc/8W8
5rfj1gvDRystrCIHZCH4ISlIAoqhRANCAAQnHdLdMFH1vcUEgBVvOW+OCUSk/H6N
oUvSWkt9dTCW1rLMmOHJU9r5RyO5HbktlH+Q71D61Zj7+StCsJCTZN9K
-----END PRIVATE KEY-----";
    const TEST_X: &str = "Jx3S3TBR9b3FBIAVbzlvjglEpPx-jaFL0lpLfXUwltY";
    const TEST_Y: &str = "ssyY4clT2vlHI7kduS2Uf5DvUPrVmPv5K0KwkJNk30o";

    async fn serve_jwks() -> String {
        let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "test-key", "alg": "ES256", "use": "sig",
            "x": TEST_X, "y": TEST_Y }] });
        let router =
            axum::Router::new().route("/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    fn token(kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        encode(&header, &claims, &EncodingKey::from_ec_pem(TEST_KEY.as_bytes()).expect("key")).expect("sign")
    }

    fn claims(tenant: &str, audience: &str, expires_in: i64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({ "iss": "https://idp.test", "aud": audience, "sub": "user-1", "exp": now + expires_in, "iat": now,
                "tenant": tenant, "scope": "read write" })
    }

    #[tokio::test]
    async fn tokens_from_the_identity_provider_authenticate_and_are_checked() {
        let mut config = devops_config::Config::default();
        config.auth.jwt.jwks_url = serve_jwks().await;
        config.auth.jwt.issuer = "https://idp.test".into();
        config.auth.jwt.audience = "devops-mcp".into();
        config.auth.jwt.leeway_secs = 0;
        let api = TestApi::start_with(config).await;
        let tenant = api.store.create_tenant("acme").await.expect("tenant");

        for tenant_claim in ["acme".to_string(), tenant.id.to_string()] {
            let good = token("test-key", claims(&tenant_claim, "devops-mcp", 300));
            let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&good), None).await;
            assert_eq!((status, body["name"].as_str()), (StatusCode::OK, Some("acme")), "{body}");
        }
        let reader = token("test-key", claims("acme", "devops-mcp", 300));
        let (status, body) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&reader), None).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "scopes come from the token");

        let cases = [
            (token("test-key", claims("acme", "devops-mcp", -120)), "expired_token"),
            (token("test-key", claims("acme", "someone-else", 300)), "invalid_token"),
            (token("other-key", claims("acme", "devops-mcp", 300)), "invalid_token"),
            (token("test-key", claims("nobody", "devops-mcp", 300)), "unknown_tenant"),
        ];
        for (bad, expected) in cases {
            let (status, body) = api.call(reqwest::Method::GET, "/api/v1/tenants/current", Some(&bad), None).await;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, expected), "{body}");
        }
        let good = token("test-key", claims("acme", "devops-mcp", 300));
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_payload = claims("acme", "devops-mcp", 300).to_string().replace("read write", "read write admin");
        let forged = base64_url(forged_payload.as_bytes());
        parts[1] = &forged;
        let (status, body) = api.call(reqwest::Method::GET, "/api/v1/keys", Some(&parts.join(".")), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "a changed payload breaks the signature"
        );
    }

    fn base64_url(bytes: &[u8]) -> String {
        const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        bytes
            .chunks(3)
            .flat_map(|chunk| {
                let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
                (0..=chunk.len()).map(move |i| TABLE[(n >> (18 - 6 * i) & 63) as usize] as char)
            })
            .collect()
    }
}
