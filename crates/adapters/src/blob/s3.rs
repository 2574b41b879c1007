use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use devops_models::TenantId;

use super::{BlobStore, object_path};
use crate::{Error, Result, aws_error};

const BACKEND: &str = "s3";

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// Uses `bucket`, creating it if it does not exist (Terraform normally has).
    pub async fn open(client: Client, bucket: impl Into<String>) -> Result<Self> {
        let bucket = bucket.into();
        if client.head_bucket().bucket(&bucket).send().await.is_err() {
            client.create_bucket().bucket(&bucket).send().await.map_err(|e| aws_error(BACKEND, e))?;
        }
        Ok(Self { client, bucket })
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    #[tracing::instrument(name = "blob.s3.put", skip_all, fields(bytes = data.len()))]
    async fn put(&self, tenant: TenantId, key: &str, data: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object_path(tenant, key)?)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }

    async fn get(&self, tenant: TenantId, key: &str) -> Result<Option<Bytes>> {
        let result = self.client.get_object().bucket(&self.bucket).key(object_path(tenant, key)?).send().await;
        match result {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| Error::unavailable(BACKEND, e))?;
                Ok(Some(data.into_bytes()))
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(aws_error(BACKEND, err)),
        }
    }

    async fn delete(&self, tenant: TenantId, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(object_path(tenant, key)?)
            .send()
            .await
            .map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }
}
