//! One suite for both blob stores: a local directory, and S3 on moto.

use std::sync::Arc;

use bytes::Bytes;
use devops_adapters::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use devops_integration_tests::{moto_sdk_config, unique};
use devops_models::TenantId;

pub async fn s3_blob_store(endpoint: &str) -> Arc<dyn BlobStore> {
    let sdk = moto_sdk_config(endpoint).await;
    let config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
    Arc::new(S3BlobStore::open(aws_sdk_s3::Client::from_conf(config), unique("blobs-")).await.expect("open s3"))
}

macro_rules! blob_suite {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = devops_adapters::blob::LocalBlobStore::open(dir.path()).await.expect("open");
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
                    super::$name(super::s3_blob_store(&endpoint).await).await;
                }
            )*
        }
    };
}

blob_suite!(blobs_round_trip_per_tenant, bad_keys_are_refused);

async fn blobs_round_trip_per_tenant(store: Arc<dyn BlobStore>) {
    let (a, b) = (TenantId::new(), TenantId::new());
    let data = Bytes::from(vec![7u8; 300_000]);
    store.put(a, "contexts/c1/item-1.bin", data.clone()).await.expect("put");
    assert_eq!(store.get(a, "contexts/c1/item-1.bin").await.expect("get"), Some(data));
    assert_eq!(store.get(b, "contexts/c1/item-1.bin").await.expect("get"), None, "other tenant sees nothing");
    store.put(a, "contexts/c1/item-1.bin", Bytes::from_static(b"v2")).await.expect("overwrite");
    assert_eq!(store.get(a, "contexts/c1/item-1.bin").await.expect("get"), Some(Bytes::from_static(b"v2")));
    store.delete(a, "contexts/c1/item-1.bin").await.expect("delete");
    assert_eq!(store.get(a, "contexts/c1/item-1.bin").await.expect("get"), None);
    store.delete(a, "contexts/c1/item-1.bin").await.expect("deleting twice is fine");
    store.ping().await.expect("ping");
}

async fn bad_keys_are_refused(store: Arc<dyn BlobStore>) {
    let tenant = TenantId::new();
    for key in ["../escape", "a//b", "/abs"] {
        let err = store.put(tenant, key, Bytes::from_static(b"x")).await.expect_err(key);
        assert!(err.to_string().contains("invalid blob key"), "{err}");
    }
}

#[tokio::test]
async fn local_blobs_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::new();
    LocalBlobStore::open(dir.path())
        .await
        .expect("open")
        .put(tenant, "k", Bytes::from_static(b"v"))
        .await
        .expect("put");
    let reopened = LocalBlobStore::open(dir.path()).await.expect("reopen");
    assert_eq!(reopened.get(tenant, "k").await.expect("get"), Some(Bytes::from_static(b"v")));
}
