//! Authentication of API keys, for every HTTP surface but the operational
//! endpoints. The resolved [`Principal`] rides in the request extensions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use devops_adapters::cache::Cache;
use devops_errors::{ApiError, ErrorCode};
use devops_models::{ParsedApiKey, Principal, Scope};
use devops_store::{ApiKeyCredential, Store};

use crate::jwt::JwtVerifier;

/// Last-use timestamps are written at most this often per key, so
/// authentication stays a single indexed read.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a looked-up key is served from the cache. Revocation through the
/// REST API evicts at once; through the CLI with an in-process cache it takes
/// effect within this time.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// The cache entry of the key with this public prefix.
pub fn cache_key(prefix: &str) -> String {
    format!("api-key:{prefix}")
}

/// Held for [`TOUCH_INTERVAL`] by whoever records the key's last use.
fn touch_key(key_id: &uuid::Uuid) -> String {
    format!("api-key-touched:{key_id}")
}

/// Name of the tenant `devops-mcp up` creates on first run; with
/// `auth.disabled` (only allowed with `--dev`) anonymous requests act as its
/// platform administrator.
pub const DEV_TENANT: &str = "default";

/// Where RFC 9728 protected-resource metadata is served.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    anonymous_is_dev_admin: bool,
    jwt: Option<Arc<JwtVerifier>>,
    /// Set on resources that publish RFC 9728 metadata: the configured public
    /// base URL, or empty to derive it from the request's Host.
    resource_metadata: Option<String>,
    decoded: Arc<DecodedCredentials>,
    touches: Arc<TouchClaims>,
}

/// Each key's cached record as last decoded. The cache stays the source of
/// truth: a record that changed (revoked, rotated, expired from the cache)
/// is read again; only bytes seen before skip the JSON.
#[derive(Default)]
struct DecodedCredentials(std::sync::Mutex<HashMap<String, Decoded>>);

/// A cached record's bytes and what they decode to.
type Decoded = (Vec<u8>, Arc<ApiKeyCredential>);

/// Bounds the memory a flood of distinct keys can take; past it a table
/// starts again.
const MAX_DECODED: usize = 10_000;

impl DecodedCredentials {
    fn decode(&self, cache_key: &str, bytes: Vec<u8>) -> Option<Arc<ApiKeyCredential>> {
        let mut decoded = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((seen, credential)) = decoded.get(cache_key)
            && *seen == bytes
        {
            return Some(credential.clone());
        }
        let credential: Arc<ApiKeyCredential> = Arc::new(serde_json::from_slice(&bytes).ok()?);
        if decoded.len() >= MAX_DECODED {
            decoded.clear();
        }
        decoded.insert(cache_key.to_owned(), (bytes, credential.clone()));
        Some(credential)
    }
}

/// When this process last went for each key's last-use write. While a
/// key's cached record still shows it unused (a new key, or within the
/// cache's lag) the write's lock is then sought once per interval, not on
/// every request, which with Redis is a round trip each.
#[derive(Default)]
struct TouchClaims(std::sync::Mutex<HashMap<uuid::Uuid, Instant>>);

impl TouchClaims {
    /// Whether this process should go for the key's write now.
    fn claim(&self, key: uuid::Uuid, now: Instant) -> bool {
        let mut claims = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if claims.get(&key).is_some_and(|at| now.duration_since(*at) < TOUCH_INTERVAL) {
            return false;
        }
        if claims.len() >= MAX_DECODED {
            claims.clear();
        }
        claims.insert(key, now);
        true
    }
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, cache: Arc<dyn Cache>, auth: &devops_config::AuthConfig) -> Self {
        let jwt = (!auth.jwt.jwks_url.is_empty()).then(|| Arc::new(JwtVerifier::new(auth.jwt.clone())));
        Self {
            store,
            cache,
            anonymous_is_dev_admin: auth.disabled,
            jwt,
            resource_metadata: None,
            decoded: Arc::default(),
            touches: Arc::default(),
        }
    }

    /// Points 401 challenges at this resource's RFC 9728 metadata.
    pub fn with_resource_metadata(mut self, auth: &devops_config::AuthConfig) -> Self {
        self.resource_metadata = Some(auth.public_url.trim_end_matches('/').to_owned());
        self
    }

    /// The metadata URL for a request to this resource, if it publishes one.
    pub fn metadata_url(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let base = self.resource_metadata.as_ref()?;
        Some(format!("{}{RESOURCE_METADATA_PATH}", public_base_url(base, headers)))
    }

    /// The principal of a valid JWT: its tenant (by id or name) and the
    /// scopes it grants that we know.
    async fn jwt_principal(&self, jwt: &JwtVerifier, token: &str) -> Result<Principal, ApiError> {
        let claims = jwt.verify(token).await?;
        let tenant = match claims.tenant.parse() {
            Ok(id) => self.store.get_tenant(devops_models::TenantId(id)).await.ok(),
            Err(_) => self.store.find_tenant_by_name(&claims.tenant).await.map_err(|e| ApiError::from_coded(&e))?,
        };
        let tenant =
            tenant.ok_or_else(|| ApiError::new(ErrorCode::UnknownTenant, "the token names an unknown tenant"))?;
        let scopes = claims.scopes.iter().filter_map(|s| s.parse::<Scope>().ok()).collect();
        // A stable actor id per subject, for the audit log.
        let key_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("jwt:{}", claims.subject).as_bytes());
        Ok(Principal { tenant_id: tenant.id, key_id, scopes })
    }

    /// The key's record, from the cache or the store. A cache failure only
    /// costs a store read.
    async fn credential(&self, parsed: &ParsedApiKey) -> Result<Option<Arc<ApiKeyCredential>>, ApiError> {
        let cache_key = cache_key(&parsed.prefix());
        match self.cache.get(&cache_key).await {
            Ok(Some(bytes)) => {
                if let Some(credential) = self.decoded.decode(&cache_key, bytes) {
                    return Ok(Some(credential));
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "auth cache unavailable; reading the store"),
        }
        let credential = self.store.find_api_key_for_auth(&parsed.key_id).await.map_err(|err| {
            tracing::error!(error = %err, "api key lookup failed");
            ApiError::from_coded(&err)
        })?;
        if let Some(bytes) = credential.as_ref().and_then(|found| serde_json::to_vec(found).ok())
            && let Err(err) = self.cache.set(&cache_key, &bytes, CACHE_TTL).await
        {
            tracing::warn!(error = %err, "cannot cache api key");
        }
        Ok(credential.map(Arc::new))
    }

    async fn dev_principal(&self) -> Result<Principal, ApiError> {
        let tenant = self.store.find_tenant_by_name(DEV_TENANT).await.map_err(|err| ApiError::from_coded(&err))?;
        let tenant = tenant.ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTenant,
                format!("auth is disabled but tenant '{DEV_TENANT}' does not exist"),
            )
        })?;
        Ok(Principal { tenant_id: tenant.id, key_id: uuid::Uuid::nil(), scopes: vec![Scope::PlatformAdmin] })
    }

    /// Resolves a bearer token to its principal. The messages say what is
    /// wrong without saying whether a key id exists.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, ApiError> {
        if token.is_none() && self.anonymous_is_dev_admin {
            return self.dev_principal().await;
        }
        let token = token.ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "missing credentials: send 'Authorization: Bearer <api key>'")
        })?;
        let invalid = || ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid");
        let Some(parsed) = ParsedApiKey::parse(token) else {
            return match &self.jwt {
                Some(jwt) if token.split('.').count() == 3 => self.jwt_principal(jwt, token).await,
                _ => Err(invalid()),
            };
        };
        let credential = self.credential(&parsed).await?;
        let credential = credential.filter(|c| parsed.matches_hash(&c.hash)).ok_or_else(invalid)?;
        let key = &credential.key;
        let now = Utc::now();
        if key.is_revoked() {
            return Err(ApiError::new(ErrorCode::RevokedApiKey, "the API key has been revoked"));
        }
        if key.is_expired(now) {
            return Err(ApiError::new(ErrorCode::ExpiredApiKey, "the API key has expired"));
        }
        let stale = key.last_used_at.is_none_or(|at| (now - at).to_std().unwrap_or_default() >= TOUCH_INTERVAL);
        // The cached record's `last_used_at` lags the store by up to the cache
        // TTL, so a lock held for the interval makes it one write per interval
        // across every replica, not one per request.
        if stale
            && self.touches.claim(key.id, Instant::now())
            && let Ok(Some(_)) = self.cache.try_lock(&touch_key(&key.id), TOUCH_INTERVAL).await
        {
            let (store, tenant_id, key_id) = (self.store.clone(), key.tenant_id, key.id);
            tokio::spawn(async move {
                if let Err(err) = store.touch_api_key(tenant_id, key_id, now).await {
                    tracing::warn!(error = %err, "cannot record api key use");
                }
            });
        }
        Ok(Principal { tenant_id: key.tenant_id, key_id: key.id, scopes: key.scopes.clone() })
    }
}

/// The configured public base URL, or `http://<Host>` when none is set.
pub fn public_base_url(configured: &str, headers: &axum::http::HeaderMap) -> String {
    if configured.is_empty() {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    } else {
        configured.trim_end_matches('/').to_owned()
    }
}

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Middleware: authenticates the request or answers 401 with a JSON error
/// and a `WWW-Authenticate` challenge.
pub async fn require_auth(State(auth): State<Authenticator>, mut request: Request, next: Next) -> Response {
    match admit(&auth, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// Authenticates a request and adds its principal, or gives the refusal to
/// answer with: [`require_auth`] for middleware that does more.
pub async fn admit(auth: &Authenticator, request: &mut Request) -> Result<(), Response> {
    match auth.authenticate(bearer_token(request.headers())).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            Ok(())
        }
        Err(err) => Err(unauthorized(err, auth.metadata_url(request.headers()).as_deref())),
    }
}

/// A 401 (or the error's own status) with a JSON body and a Bearer challenge
/// that names the resource metadata when there is one.
pub fn unauthorized(err: ApiError, resource_metadata: Option<&str>) -> Response {
    let challenge = if err.code == ErrorCode::Unavailable {
        None
    } else {
        let metadata = resource_metadata.map(|url| format!(", resource_metadata=\"{url}\"")).unwrap_or_default();
        let error = if err.code == ErrorCode::Unauthenticated {
            String::new()
        } else {
            format!(", error=\"invalid_token\", error_description=\"{}\"", err.code)
        };
        Some(format!("Bearer realm=\"devops-mcp\"{metadata}{error}"))
    };
    let mut response = err.into_response();
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Fails with 403 unless the principal holds `needed`.
pub fn require_scope(principal: &Principal, needed: Scope) -> Result<(), ApiError> {
    if principal.has(needed) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, format!("this operation needs the '{needed}' scope")))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    #[test]
    fn bearer_tokens_are_extracted() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn a_key_s_use_is_claimed_once_per_interval() {
        let claims = TouchClaims::default();
        let key = uuid::Uuid::now_v7();
        let start = Instant::now();
        assert!(claims.claim(key, start));
        assert!(!claims.claim(key, start + Duration::from_secs(1)), "claimed within the interval");
        assert!(claims.claim(uuid::Uuid::now_v7(), start), "another key is claimed on its own");
        assert!(claims.claim(key, start + TOUCH_INTERVAL), "claimed again once the interval is over");
    }

    #[test]
    fn a_cached_record_is_decoded_again_once_it_changes() {
        let key = devops_models::ApiKey {
            id: uuid::Uuid::now_v7(),
            tenant_id: devops_models::TenantId::new(),
            name: "k".into(),
            prefix: "dmcp_abc".into(),
            scopes: vec![Scope::Write],
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        let live = ApiKeyCredential { key: key.clone(), hash: "h".into() };
        let revoked =
            ApiKeyCredential { key: devops_models::ApiKey { revoked_at: Some(Utc::now()), ..key }, hash: "h".into() };
        let bytes = |credential: &ApiKeyCredential| serde_json::to_vec(credential).expect("json");
        let decoded = DecodedCredentials::default();
        for _ in 0..2 {
            let seen = decoded.decode("api-key:dmcp_abc", bytes(&live)).expect("decoded");
            assert!(!seen.key.is_revoked());
        }
        let seen = decoded.decode("api-key:dmcp_abc", bytes(&revoked)).expect("decoded");
        assert!(seen.key.is_revoked(), "new bytes are read, not the old decoding");
        assert!(decoded.decode("api-key:dmcp_abc", b"{not json".to_vec()).is_none());
    }
}
