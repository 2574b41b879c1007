//! Large payloads (context items, clone archives, review bodies), stored
//! under a tenant-scoped key.

mod local;
mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use devops_models::TenantId;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

use crate::{Error, Result};

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn put(&self, tenant: TenantId, key: &str, data: Bytes) -> Result<()>;
    async fn get(&self, tenant: TenantId, key: &str) -> Result<Option<Bytes>>;
    /// Deleting a missing blob is not an error.
    async fn delete(&self, tenant: TenantId, key: &str) -> Result<()>;
    async fn ping(&self) -> Result<()>;
}

/// Keys are relative paths of safe segments, so no key escapes its tenant's
/// prefix on either back end.
pub(crate) fn object_path(tenant: TenantId, key: &str) -> Result<String> {
    let valid_segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if key.len() > 512 || !key.split('/').all(valid_segment) {
        return Err(Error::Invalid(format!(
            "invalid blob key {key:?}: use '/'-separated segments of letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(format!("tenants/{tenant}/{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_tenant() {
        let tenant = TenantId::new();
        assert!(object_path(tenant, "contexts/a/item-1.json").is_ok());
        for bad in ["", "../x", "a/../../b", "/abs", "a//b", "a b", "a/./b"] {
            assert!(object_path(tenant, bad).is_err(), "{bad}");
        }
    }
}
