use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{SecretValue, Secrets, validate_name};
use crate::{Error, Result};

const BACKEND: &str = "file secrets";
pub const ENV_PREFIX: &str = "DEVOPS_MCP_SECRET_";

/// Secrets as files under a directory (mode 0600), overlaid by
/// `DEVOPS_MCP_SECRET_<NAME>` variables, with the name upper-cased and `/`,
/// `-` and `.` turned into `_`. The environment is passed in, not read here.
#[derive(Debug, Clone)]
pub struct FileSecrets {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl FileSecrets {
    pub async fn open(dir: impl Into<PathBuf>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let dir = dir.into();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| Error::unavailable(BACKEND, e))?;
        let env = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Ok(Self { dir, env })
    }

    fn env_key(name: &str) -> String {
        let suffix: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("{ENV_PREFIX}{suffix}")
    }
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        validate_name(name)?;
        if let Some(value) = self.env.get(&Self::env_key(name)) {
            return Ok(Some(SecretValue::new(value.clone())));
        }
        match tokio::fs::read_to_string(self.dir.join(name)).await {
            Ok(value) => Ok(Some(SecretValue::new(value.trim_end_matches('\n')))),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::backend(BACKEND, err)),
        }
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<()> {
        validate_name(name)?;
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| Error::backend(BACKEND, e))?;
        }
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, value.expose()).await.map_err(|e| Error::backend(BACKEND, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(|e| Error::backend(BACKEND, e))?;
        }
        tokio::fs::rename(&tmp, &path).await.map_err(|e| Error::backend(BACKEND, e))
    }

    async fn create(&self, name: &str, value: &SecretValue) -> Result<bool> {
        validate_name(name)?;
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| Error::backend(BACKEND, e))?;
        }
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, value.expose()).await.map_err(|e| Error::backend(BACKEND, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(|e| Error::backend(BACKEND, e))?;
        }
        // A hard link fails if the name exists: create-if-absent, atomically.
        let linked = tokio::fs::hard_link(&tmp, &path).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(Error::backend(BACKEND, err)),
        }
    }

    async fn ping(&self) -> Result<()> {
        tokio::fs::metadata(&self.dir).await.map(|_| ()).map_err(|e| Error::unavailable(BACKEND, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys_are_upper_snake() {
        assert_eq!(FileSecrets::env_key("providers/github-app.key"), "DEVOPS_MCP_SECRET_PROVIDERS_GITHUB_APP_KEY");
    }
}
