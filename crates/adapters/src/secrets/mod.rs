//! Secrets: AWS Secrets Manager in production; files (overlaid by
//! environment variables) embedded.

mod aws;
mod file;

use std::fmt;

use async_trait::async_trait;

pub use aws::AwsSecrets;
pub use file::FileSecrets;

use crate::{Error, Result};

/// A secret value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[async_trait]
pub trait Secrets: Send + Sync + 'static {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>>;
    /// Creates the secret or replaces its value.
    async fn put(&self, name: &str, value: &SecretValue) -> Result<()>;
    /// Creates the secret unless it exists; false when it did. Of two
    /// processes creating at once, exactly one wins.
    async fn create(&self, name: &str, value: &SecretValue) -> Result<bool>;
    async fn ping(&self) -> Result<()>;
}

/// Secret names are path-like (`providers/github/app-key`), never traversals.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok { Ok(()) } else { Err(Error::Invalid(format!("invalid secret name {name:?}"))) }
}
