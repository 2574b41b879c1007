use std::io::ErrorKind;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use devops_models::TenantId;
use uuid::Uuid;

use super::{BlobStore, object_path};
use crate::{Error, Result};

const BACKEND: &str = "local blob store";

/// Blobs as files under a directory. Writes go to a temporary file that is
/// renamed into place, so a reader never sees half a blob.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await.map_err(|e| Error::unavailable(BACKEND, e))?;
        Ok(Self { root })
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, tenant: TenantId, key: &str, data: Bytes) -> Result<()> {
        let path = self.root.join(object_path(tenant, key)?);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| Error::backend(BACKEND, e))?;
        }
        let tmp = path.with_extension(format!("tmp-{}", Uuid::new_v4()));
        tokio::fs::write(&tmp, &data).await.map_err(|e| Error::backend(BACKEND, e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| Error::backend(BACKEND, e))
    }

    async fn get(&self, tenant: TenantId, key: &str) -> Result<Option<Bytes>> {
        match tokio::fs::read(self.root.join(object_path(tenant, key)?)).await {
            Ok(data) => Ok(Some(data.into())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::backend(BACKEND, err)),
        }
    }

    async fn delete(&self, tenant: TenantId, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.root.join(object_path(tenant, key)?)).await {
            Err(err) if err.kind() != ErrorKind::NotFound => Err(Error::backend(BACKEND, err)),
            _ => Ok(()),
        }
    }

    async fn ping(&self) -> Result<()> {
        tokio::fs::metadata(&self.root).await.map(|_| ()).map_err(|e| Error::unavailable(BACKEND, e))
    }
}
