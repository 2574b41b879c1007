use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::{SecretValue, Secrets, validate_name};
use crate::{Result, aws_error};

const BACKEND: &str = "secrets manager";

#[derive(Debug, Clone)]
pub struct AwsSecrets {
    client: Client,
    prefix: String,
}

impl AwsSecrets {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        validate_name(name)?;
        match self.client.get_secret_value().secret_id(self.id(name)).send().await {
            Ok(out) => Ok(out.secret_string.map(SecretValue::new)),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(err) => Err(aws_error(BACKEND, err)),
        }
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<()> {
        validate_name(name)?;
        let id = self.id(name);
        let updated = self.client.put_secret_value().secret_id(&id).secret_string(value.expose()).send().await;
        match updated {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                self.client
                    .create_secret()
                    .name(&id)
                    .secret_string(value.expose())
                    .send()
                    .await
                    .map_err(|e| aws_error(BACKEND, e))?;
                Ok(())
            }
            Err(err) => Err(aws_error(BACKEND, err)),
        }
    }

    async fn create(&self, name: &str, value: &SecretValue) -> Result<bool> {
        validate_name(name)?;
        let created = self.client.create_secret().name(self.id(name)).secret_string(value.expose()).send().await;
        match created {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => Ok(false),
            Err(err) => Err(aws_error(BACKEND, err)),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.client.list_secrets().max_results(1).send().await.map_err(|e| aws_error(BACKEND, e))?;
        Ok(())
    }
}
