//! Connects the back ends a service needs, production or embedded as the
//! configuration says, and exposes them as trait objects.

use std::sync::Arc;
use std::time::Duration;

use devops_adapters::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use devops_adapters::cache::{Cache, MemoryCache, RedisCache};
use devops_adapters::queue::{Queue, QueueSettings, SqliteQueue, SqsQueue};
use devops_adapters::secrets::{AwsSecrets, FileSecrets, Secrets};
use devops_config::{BlobKind, CacheKind, Config, QueueKind, SecretsKind};
use devops_store::{ConnectOptions, Store};

use crate::ops::Readiness;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Store,
    Queue,
    Blob,
    Cache,
    Secrets,
}

impl Backend {
    pub const ALL: [Backend; 5] = [Backend::Store, Backend::Queue, Backend::Blob, Backend::Cache, Backend::Secrets];
}

/// The connected back ends. A service holds only those it asked for, and
/// its readiness checks exactly those.
#[derive(Clone, Default)]
pub struct Backends {
    pub store: Option<Arc<dyn Store>>,
    pub queue: Option<Arc<dyn Queue>>,
    pub blob: Option<Arc<dyn BlobStore>>,
    pub cache: Option<Arc<dyn Cache>>,
    pub secrets: Option<Arc<dyn Secrets>>,
}

impl Backends {
    /// Connects each of `needs`. Fails with a clear error naming the back end
    /// that is unreachable; nothing is retried here, the orchestrator restarts us.
    pub async fn connect(config: &Config, needs: &[Backend], env: &[(String, String)]) -> Result<Self> {
        let mut backends = Backends::default();
        let needs_aws = (needs.contains(&Backend::Queue) && config.queue.kind == QueueKind::Sqs)
            || (needs.contains(&Backend::Blob) && config.blob.kind == BlobKind::S3)
            || (needs.contains(&Backend::Secrets) && config.secrets.kind == SecretsKind::Aws);
        let aws = if needs_aws {
            Some(devops_adapters::aws::sdk_config(&config.aws.region, Some(&config.aws.endpoint_url)).await)
        } else {
            None
        };
        for need in needs {
            match need {
                Backend::Store => {
                    let store = devops_store::connect(&ConnectOptions {
                        url: config.store_url(),
                        max_connections: config.store.max_connections,
                        connect_timeout: Duration::from_secs(config.store.connect_timeout_secs),
                    })
                    .await?;
                    backends.store = Some(store);
                }
                Backend::Queue => {
                    let settings = QueueSettings {
                        name: config.queue.name.clone(),
                        max_receives: config.queue.max_receives,
                        visibility_timeout: Duration::from_secs(config.queue.visibility_timeout_secs),
                    };
                    let queue: Arc<dyn Queue> = match (config.queue.kind, &aws) {
                        (QueueKind::Sqs, Some(aws)) => {
                            Arc::new(SqsQueue::open(aws_sdk_sqs::Client::new(aws), settings).await?)
                        }
                        _ => Arc::new(SqliteQueue::open(&config.queue_db_path(), settings).await?),
                    };
                    backends.queue = Some(queue);
                }
                Backend::Blob => {
                    let blob: Arc<dyn BlobStore> = match (config.blob.kind, &aws) {
                        (BlobKind::S3, Some(aws)) => {
                            let s3 = aws_sdk_s3::config::Builder::from(aws).force_path_style(true).build();
                            Arc::new(S3BlobStore::open(aws_sdk_s3::Client::from_conf(s3), &config.blob.bucket).await?)
                        }
                        _ => Arc::new(LocalBlobStore::open(config.blob_dir()).await?),
                    };
                    backends.blob = Some(blob);
                }
                Backend::Cache => {
                    let cache: Arc<dyn Cache> = match config.cache.kind {
                        CacheKind::Redis => Arc::new(
                            RedisCache::connect(&config.cache.url, config.cache.pool_size, "devops-mcp:").await?,
                        ),
                        CacheKind::Memory => Arc::new(MemoryCache::new()),
                    };
                    backends.cache = Some(cache);
                }
                Backend::Secrets => {
                    let secrets: Arc<dyn Secrets> = match (config.secrets.kind, &aws) {
                        (SecretsKind::Aws, Some(aws)) => Arc::new(AwsSecrets::new(
                            aws_sdk_secretsmanager::Client::new(aws),
                            config.secrets.prefix.clone(),
                        )),
                        _ => Arc::new(FileSecrets::open(config.secrets_dir(), env.iter().cloned()).await?),
                    };
                    backends.secrets = Some(secrets);
                }
            }
        }
        Ok(backends)
    }

    pub fn store(&self) -> Result<Arc<dyn Store>> {
        self.store.clone().ok_or(Error::MissingBackend("store"))
    }

    pub fn queue(&self) -> Result<Arc<dyn Queue>> {
        self.queue.clone().ok_or(Error::MissingBackend("queue"))
    }

    pub fn blob(&self) -> Result<Arc<dyn BlobStore>> {
        self.blob.clone().ok_or(Error::MissingBackend("blob"))
    }

    pub fn cache(&self) -> Result<Arc<dyn Cache>> {
        self.cache.clone().ok_or(Error::MissingBackend("cache"))
    }

    pub fn secrets(&self) -> Result<Arc<dyn Secrets>> {
        self.secrets.clone().ok_or(Error::MissingBackend("secrets"))
    }

    /// A view holding only `needs`, so a service in a shared process checks
    /// only its own dependencies.
    pub fn only(&self, needs: &[Backend]) -> Backends {
        let keep = |b: Backend| needs.contains(&b);
        Backends {
            store: self.store.clone().filter(|_| keep(Backend::Store)),
            queue: self.queue.clone().filter(|_| keep(Backend::Queue)),
            blob: self.blob.clone().filter(|_| keep(Backend::Blob)),
            cache: self.cache.clone().filter(|_| keep(Backend::Cache)),
            secrets: self.secrets.clone().filter(|_| keep(Backend::Secrets)),
        }
    }

    /// Readiness checks for every connected back end.
    pub fn readiness(&self) -> Readiness {
        let mut readiness = Readiness::default();
        macro_rules! probe {
            ($name:literal, $backend:expr) => {
                if let Some(backend) = $backend.clone() {
                    readiness.add($name, move || {
                        let backend = backend.clone();
                        async move { backend.ping().await.map_err(|e| e.to_string()) }
                    });
                }
            };
        }
        probe!("store", self.store);
        probe!("queue", self.queue);
        probe!("blob", self.blob);
        probe!("cache", self.cache);
        probe!("secrets", self.secrets);
        readiness
    }
}
