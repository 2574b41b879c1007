//! Bearer JWTs from an identity provider, validated against its JWKS: the
//! signature (by `kid`), `iss`, `aud`, `exp` and `nbf`. Keys are cached and
//! fetched again when a token names a `kid` the cache does not hold, at most
//! once per [`REFRESH_FLOOR`], so a flood of bogus `kid`s cannot hammer the
//! provider.

use std::time::{Duration, Instant};

use devops_config::JwtConfig;
use devops_errors::{ApiError, ErrorCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use tokio::sync::RwLock;

const MAX_AGE: Duration = Duration::from_secs(300);
const REFRESH_FLOOR: Duration = Duration::from_secs(10);

pub struct JwtVerifier {
    config: JwtConfig,
    client: reqwest::Client,
    keys: RwLock<Option<(JwkSet, Instant)>>,
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub subject: String,
    pub tenant: String,
    pub scopes: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, message)
}

impl JwtVerifier {
    pub fn new(config: JwtConfig) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self { config, client, keys: RwLock::new(None) }
    }

    async fn fetch(&self) -> Result<JwkSet, ApiError> {
        let unavailable = |e: reqwest::Error| {
            tracing::warn!(error = %e, "cannot fetch the JWKS");
            ApiError::new(ErrorCode::Unavailable, "the identity provider's keys are unavailable")
        };
        let response = self.client.get(&self.config.jwks_url).send().await.map_err(unavailable)?;
        response.error_for_status().map_err(unavailable)?.json::<JwkSet>().await.map_err(unavailable)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, ApiError> {
        let fresh = |at: &Instant, floor: Duration| at.elapsed() < floor;
        {
            let cached = self.keys.read().await;
            if let Some((set, at)) = cached.as_ref()
                && fresh(at, MAX_AGE)
                && let Some(jwk) = set.find(kid)
            {
                return DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("unusable key: {e}")));
            }
        }
        let mut cached = self.keys.write().await;
        let recently = cached.as_ref().is_some_and(|(_, at)| fresh(at, REFRESH_FLOOR));
        if !recently {
            *cached = Some((self.fetch().await?, Instant::now()));
        }
        let jwk = cached.as_ref().and_then(|(set, _)| set.find(kid)).ok_or_else(|| invalid("unknown signing key"))?;
        DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("unusable key: {e}")))
    }

    /// Validates `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<TokenClaims, ApiError> {
        let header = decode_header(token).map_err(|_| invalid("the token is not a JWT"))?;
        let kid = header.kid.ok_or_else(|| invalid("the token names no signing key (kid)"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        let data = decode::<serde_json::Value>(token, &key, &validation).map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::new(ErrorCode::ExpiredToken, "the token has expired")
            }
            _ => invalid(format!("the token is not valid: {err}")),
        })?;
        let claims = data.claims;
        let tenant = claims
            .get(&self.config.tenant_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(format!("the token has no '{}' claim", self.config.tenant_claim)))?
            .to_owned();
        let scopes = match claims.get(&self.config.scopes_claim) {
            Some(serde_json::Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        let subject = claims.get("sub").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        Ok(TokenClaims { subject, tenant, scopes })
    }
}
