//! API keys: `dmcp_<key id>_<secret>`. The key id is public and indexes the
//! key; only a SHA-256 of the whole token is stored, and it is compared in
//! constant time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::TenantId;

const TOKEN_PREFIX: &str = "dmcp";
const KEY_ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;

/// What a key may do. Each scope includes the ones below it, so the
/// comparison is an ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    /// Manage the tenant's own keys and settings.
    #[serde(rename = "admin")]
    Admin,
    /// Operate the platform: create and list tenants.
    #[serde(rename = "platform:admin")]
    PlatformAdmin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Admin, Scope::PlatformAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::PlatformAdmin => "platform:admin",
        }
    }

    /// Whether holding `self` is enough for an operation that needs `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}; expected one of read, write, admin, platform:admin"))
    }
}

/// A stored key, without its hash. Safe to return over the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    pub name: String,
    /// The public part of the token (`dmcp_<key id>`), to recognise a key.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Everything the store needs to persist a freshly generated key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub key_id: String,
    pub prefix: String,
    pub hash: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The plain-text token, shown to its owner exactly once. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Generates a new token and the record that stores its hash.
    pub fn generate(
        name: impl Into<String>,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
    ) -> (ApiKeySecret, NewApiKey) {
        let mut rng = rand::rng();
        let key_id: String =
            (&mut rng).sample_iter(Alphanumeric).take(KEY_ID_LEN).map(|b| char::from(b).to_ascii_lowercase()).collect();
        let secret: String = (&mut rng).sample_iter(Alphanumeric).take(SECRET_LEN).map(char::from).collect();
        let prefix = format!("{TOKEN_PREFIX}_{key_id}");
        let token = format!("{prefix}_{secret}");
        let record = NewApiKey {
            id: Uuid::now_v7(),
            hash: hash_token(&token),
            key_id,
            prefix,
            name: name.into(),
            scopes,
            expires_at,
        };
        (ApiKeySecret(token), record)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// A token presented by a caller, split into its public key id and kept whole
/// for hashing.
#[derive(Clone)]
pub struct ParsedApiKey {
    pub key_id: String,
    token: String,
}

impl ParsedApiKey {
    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?.strip_prefix('_')?;
        let (key_id, secret) = rest.split_once('_')?;
        let well_formed = key_id.len() == KEY_ID_LEN
            && secret.len() == SECRET_LEN
            && key_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && secret.bytes().all(|b| b.is_ascii_alphanumeric());
        well_formed.then(|| ParsedApiKey { key_id: key_id.to_owned(), token: token.to_owned() })
    }

    /// The public part of the token, `dmcp_<key id>`.
    pub fn prefix(&self) -> String {
        format!("{TOKEN_PREFIX}_{}", self.key_id)
    }

    /// Constant-time comparison against a stored hash.
    pub fn matches_hash(&self, stored_hash: &str) -> bool {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(self.token.as_bytes()), &mut hex)
            .expect("a SHA-256 digest is 64 hex digits");
        hex.as_slice().ct_eq(stored_hash.as_bytes()).into()
    }
}

impl fmt::Debug for ParsedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedApiKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who is calling: the authenticated key, its tenant and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: Uuid,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn has(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|held| held.grants(needed))
    }

    /// The highest scope held, the ceiling for keys this principal may mint.
    pub fn max_scope(&self) -> Option<Scope> {
        self.scopes.iter().copied().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match_only_their_hash() {
        let (secret, record) = ApiKeySecret::generate("ci", vec![Scope::Read], None);
        let parsed = ParsedApiKey::parse(secret.expose()).expect("well-formed");
        assert_eq!(parsed.key_id, record.key_id);
        assert!(parsed.matches_hash(&record.hash));
        let (_, other) = ApiKeySecret::generate("ci", vec![Scope::Read], None);
        assert!(!parsed.matches_hash(&other.hash));
        assert!(secret.expose().starts_with(&record.prefix));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "dmcp_", "dmcp_abc_def", "xyz_abcdefghijkl_0123456789012345678901234567890123456789"] {
            assert!(ParsedApiKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin.grants(Scope::Read));
        assert!(!Scope::Read.grants(Scope::Write));
        assert!(Scope::PlatformAdmin.grants(Scope::Admin));
        assert_eq!("platform:admin".parse::<Scope>(), Ok(Scope::PlatformAdmin));
        assert!("root".parse::<Scope>().is_err());
    }
}
