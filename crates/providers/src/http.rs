//! The HTTP client every hosted provider uses: timeouts, the SSRF guard on
//! every connection, redirects only within the same host, rate limits
//! honoured with bounded waits, retries of idempotent calls on 502-504 and
//! transport errors, and one mapping from HTTP statuses to our codes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use devops_errors::ErrorCode;
use devops_git::{UrlPolicy, is_public};
use devops_models::sanitize::sanitize;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::{Error, Result};

/// Larger answers are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Longest error message kept from a provider's answer.
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Whole request, first byte to last.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt, for rate limits and (idempotent
    /// calls only) 502-504 and transport errors.
    pub max_retries: u32,
    /// A rate limit that resets later than this is returned as
    /// `rate_limited` with its `retry_after` instead of waited out.
    pub max_rate_limit_wait: Duration,
    /// First backoff; doubled per retry, capped at 8 s.
    pub backoff: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            max_rate_limit_wait: Duration::from_secs(60),
            backoff: Duration::from_millis(250),
        }
    }
}

/// Refuses private, loopback and link-local addresses at connect time (so a
/// host cannot rebind to one after the check), unless the operator
/// allow-listed the host.
struct GuardedResolver {
    allowed_hosts: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed_hosts = self.allowed_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allow_private = allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                let message = format!("{host} resolves to {}, which is not a public address", bad.ip());
                return Err(message.into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Checks a connection's API base URL: https (or http for an allow-listed
/// host, e.g. a test server or a forge inside the VPC), and not an address
/// the policy refuses.
pub fn check_base_url(policy: &UrlPolicy, raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim()).map_err(|err| Error::Invalid(format!("base URL {raw:?}: {err}")))?;
    let host = url.host_str().ok_or_else(|| Error::Invalid(format!("base URL {raw:?} has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let allowed = policy.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
    match url.scheme() {
        "https" => {}
        "http" if allowed => {}
        other => {
            return Err(Error::Invalid(format!(
                "base URL scheme {other:?} is not allowed; use https (http only for allow-listed hosts)"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Invalid("a base URL must not carry credentials; use the connection's credentials".into()));
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && !allowed
        && !is_public(ip)
    {
        return Err(Error::Invalid(format!("base URL host {ip} is not a public address")));
    }
    Ok(url)
}

/// One answer, read whole.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json<T: DeserializeOwned>(&self, provider: &'static str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::Decode { provider, reason: err.to_string() })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// GitHub's `Link: <…>; rel="next"`, as the next page's URL.
    pub fn next_link(&self) -> Option<String> {
        let link = self.header("link")?;
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
                .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        })
    }

    /// GitLab's `X-Next-Page`, empty on the last page.
    pub fn next_page(&self) -> Option<String> {
        self.header("x-next-page").map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned)
    }
}

/// A provider's REST API at one base URL.
#[derive(Clone)]
pub struct ApiClient {
    provider: &'static str,
    base: Url,
    client: reqwest::Client,
    settings: ClientSettings,
    default_headers: HeaderMap,
}

impl ApiClient {
    pub fn new(
        provider: &'static str,
        base: Url,
        policy: &UrlPolicy,
        settings: ClientSettings,
        default_headers: HeaderMap,
    ) -> Result<Self> {
        let resolver = GuardedResolver { allowed_hosts: Arc::new(policy.allowed_hosts.clone()) };
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("devops-mcp/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_host =
                    attempt.previous().first().map(|first| first.host_str()) == Some(attempt.url().host_str());
                if same_host && attempt.previous().len() < 5 { attempt.follow() } else { attempt.stop() }
            }))
            .build()
            .map_err(|err| Error::Invalid(format!("HTTP client: {err}")))?;
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { provider, base, client, settings, default_headers })
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `path` (relative, may carry a query) against the base URL; an
    /// absolute URL (a `Link` header's) must stay on the base's origin.
    pub fn url(&self, path: &str) -> Result<Url> {
        if path.starts_with("http://") || path.starts_with("https://") {
            let url =
                Url::parse(path).map_err(|err| Error::Decode { provider: self.provider, reason: err.to_string() })?;
            if url.origin() != self.base.origin() {
                return Err(Error::Decode {
                    provider: self.provider,
                    reason: format!(
                        "a link to another origin ({}) was not followed",
                        url.origin().ascii_serialization()
                    ),
                });
            }
            return Ok(url);
        }
        self.base.join(path.trim_start_matches('/')).map_err(|err| Error::Invalid(format!("{path}: {err}")))
    }

    /// Sends one call, retrying what is safe to retry, and maps an error
    /// status to [`Error::Http`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &HeaderMap,
        body: Option<&serde_json::Value>,
    ) -> Result<ApiResponse> {
        let url = self.url(path)?;
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).expect("a JSON value serialises")));
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE);
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(self.default_headers.clone())
                .headers(auth.clone());
            if let Some(body) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    if idempotent && attempt < self.settings.max_retries {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::Transport {
                        provider: self.provider,
                        reason: describe(&err),
                        timed_out: err.is_timeout(),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            if let Some(wait) = rate_limit_wait(status, &headers, SystemTime::now()) {
                if wait <= self.settings.max_rate_limit_wait && attempt < self.settings.max_retries {
                    tracing::info!(
                        provider = self.provider,
                        wait_ms = wait.as_millis() as u64,
                        "rate limited; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                let body = read_body(self.provider, response).await.unwrap_or_default();
                return Err(Error::Http {
                    provider: self.provider,
                    status: status.as_u16(),
                    code: ErrorCode::RateLimited,
                    message: error_message(&body).unwrap_or_else(|| "rate limited".into()),
                    retry_after: Some(wait),
                });
            }
            if matches!(status.as_u16(), 502..=504) && idempotent && attempt < self.settings.max_retries {
                tokio::time::sleep(self.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            let body = read_body(self.provider, response).await?;
            if status.is_success() {
                return Ok(ApiResponse { status, headers, body });
            }
            return Err(Error::Http {
                provider: self.provider,
                status: status.as_u16(),
                code: status_code(status),
                message: error_message(&body).unwrap_or_else(|| status.to_string()),
                retry_after: None,
            });
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.settings.backoff.saturating_mul(1 << attempt.min(5)).min(Duration::from_secs(8))
    }
}

/// The error's chain, which says what failed (refused, timed out, the SSRF
/// guard). URLs carry no credentials: those go in headers.
fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

async fn read_body(provider: &'static str, mut response: reqwest::Response) -> Result<Bytes> {
    if response.content_length().is_some_and(|n| n as usize > MAX_RESPONSE_BYTES) {
        return Err(Error::Decode { provider, reason: format!("answer larger than {MAX_RESPONSE_BYTES} bytes") });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| Error::Transport {
        provider,
        reason: describe(&err),
        timed_out: err.is_timeout(),
    })? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Error::Decode { provider, reason: format!("answer larger than {MAX_RESPONSE_BYTES} bytes") });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// How long a rate-limited answer says to wait, or `None` when the answer
/// is not a rate limit. GitHub: 429, or 403 with `x-ratelimit-remaining: 0`
/// or `retry-after` (secondary limits); GitLab: 429 with `Retry-After` or
/// `RateLimit-Reset`. Without a hint, one minute (GitHub's advice).
pub fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (header("x-ratelimit-remaining") == Some("0") || header("retry-after").is_some()));
    if !limited {
        return None;
    }
    if let Some(retry_after) = header("retry-after") {
        if let Ok(seconds) = retry_after.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = httpdate::parse_http_date(retry_after) {
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    let reset = header("x-ratelimit-reset").or_else(|| header("ratelimit-reset"));
    if let Some(reset) = reset.and_then(|r| r.parse::<u64>().ok()) {
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now_secs)));
    }
    Some(Duration::from_secs(60))
}

fn status_code(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 | 422 => ErrorCode::InvalidArgument,
        // The host refused the connection's credentials, not the caller's.
        401 | 403 => ErrorCode::Forbidden,
        404 | 410 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        429 => ErrorCode::RateLimited,
        502..=504 => ErrorCode::Unavailable,
        _ => ErrorCode::Upstream,
    }
}

/// GitHub's `message` (+ `errors`), GitLab's `message` or `error` (which may
/// be an object of field errors): short, and stripped of hidden characters.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut message = value.get("message").or_else(|| value.get("error")).map(text)?;
    if let Some(errors) = value.get("errors").filter(|e| !e.is_null()) {
        message.push_str(": ");
        message.push_str(&text(errors));
    }
    let message: String = sanitize(&message).chars().take(MAX_MESSAGE_CHARS).collect();
    Some(message)
}

/// `name: value` for a secret header value, marked sensitive so it is never
/// printed by reqwest or our logs.
pub fn secret_header(name: HeaderName, value: &str) -> Result<HeaderMap> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| Error::Credentials("a token with invalid characters".into()))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Ok(headers)
}

/// Percent-encodes one path segment (GitLab project paths, file paths).
pub fn segment(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).expect("test value"))).collect()
    }

    #[test]
    fn rate_limits_are_read_from_each_hosts_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let ok = headers(&[("x-ratelimit-remaining", "10")]);
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &ok, now), None, "a plain 403 is a permission error");
        assert_eq!(rate_limit_wait(StatusCode::OK, &ok, now), None);
        let primary = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1012")]);
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &primary, now), Some(Duration::from_secs(12)));
        let secondary = headers(&[("retry-after", "3")]);
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &secondary, now), Some(Duration::from_secs(3)));
        let gitlab = headers(&[("ratelimit-reset", "1005")]);
        assert_eq!(rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &gitlab, now), Some(Duration::from_secs(5)));
        let date = headers(&[("retry-after", &httpdate::fmt_http_date(now + Duration::from_secs(7)))]);
        assert_eq!(rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &date, now), Some(Duration::from_secs(7)));
        let past = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]);
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &past, now), Some(Duration::ZERO));
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn next_pages_come_from_link_and_x_next_page() {
        let response = |pairs: &[(&'static str, &str)]| ApiResponse {
            status: StatusCode::OK,
            headers: headers(pairs),
            body: Bytes::new(),
        };
        let link = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            response(&[("link", link)]).next_link().as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert_eq!(response(&[("link", last)]).next_link(), None);
        assert_eq!(response(&[("x-next-page", "3")]).next_page().as_deref(), Some("3"));
        assert_eq!(response(&[("x-next-page", "")]).next_page(), None);
    }

    #[test]
    fn error_messages_are_short_and_clean() {
        let github = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom"}]}"#;
        assert!(error_message(github).expect("test value").starts_with("Validation Failed: [{"));
        let gitlab = br#"{"message":{"title":["can't be blank"]}}"#;
        assert_eq!(error_message(gitlab).expect("test value"), r#"{"title":["can't be blank"]}"#);
        let hidden = "{\"message\":\"Not\u{202E} Found\"}";
        assert_eq!(error_message(hidden.as_bytes()).expect("test value"), "Not Found");
        assert_eq!(error_message(b"<html>"), None);
    }

    #[test]
    fn base_urls_are_checked_against_ssrf() {
        let strict = UrlPolicy::default();
        assert!(check_base_url(&strict, "https://api.github.com").is_ok());
        assert!(check_base_url(&strict, "http://api.github.com").is_err(), "plain http only for allow-listed hosts");
        assert!(check_base_url(&strict, "https://169.254.169.254/latest").is_err(), "cloud metadata");
        assert!(check_base_url(&strict, "https://127.0.0.1:8443").is_err());
        assert!(check_base_url(&strict, "https://user:pw@gitlab.com/api/v4").is_err());
        assert!(check_base_url(&strict, "file:///etc/passwd").is_err());
        let local = UrlPolicy { allowed_hosts: vec!["127.0.0.1".into()], ..UrlPolicy::default() };
        assert!(check_base_url(&local, "http://127.0.0.1:4010").is_ok());
    }

    #[test]
    fn segments_are_encoded_whole() {
        assert_eq!(segment("group/sub project/app"), "group%2Fsub%20project%2Fapp");
        assert_eq!(segment("src/a+b.rs"), "src%2Fa%2Bb.rs");
    }
}
