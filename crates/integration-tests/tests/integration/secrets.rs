//! One suite for both secret stores: files, and Secrets Manager on moto.

use std::sync::Arc;

use devops_adapters::secrets::{AwsSecrets, FileSecrets, SecretValue, Secrets};
use devops_integration_tests::{moto_sdk_config, unique};

pub async fn aws_secrets(endpoint: &str) -> Arc<dyn Secrets> {
    let client = aws_sdk_secretsmanager::Client::new(&moto_sdk_config(endpoint).await);
    Arc::new(AwsSecrets::new(client, unique("test-") + "/"))
}

macro_rules! secrets_suite {
    ($($name:ident),* $(,)?) => {
        mod file {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let secrets = devops_adapters::secrets::FileSecrets::open(dir.path(), Vec::new()).await.expect("open");
                    super::$name(std::sync::Arc::new(secrets)).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = devops_integration_tests::aws_endpoint() else { return };
                    super::$name(super::aws_secrets(&endpoint).await).await;
                }
            )*
        }
    };
}

secrets_suite!(secrets_are_created_replaced_and_redacted, concurrent_creates_have_one_winner);

async fn secrets_are_created_replaced_and_redacted(secrets: Arc<dyn Secrets>) {
    assert_eq!(secrets.get("providers/github/token").await.expect("get"), None);
    secrets.put("providers/github/token", &SecretValue::new("ghp_first")).await.expect("create");
    secrets.put("providers/github/token", &SecretValue::new("ghp_second")).await.expect("replace");
    let value = secrets.get("providers/github/token").await.expect("get").expect("present");
    assert_eq!(value.expose(), "ghp_second");
    assert!(!format!("{value:?}").contains("ghp_second"), "Debug redacts");
    assert!(secrets.get("../etc/passwd").await.is_err(), "traversal refused");
    secrets.ping().await.expect("ping");
}

/// Processes starting together each create the data key: exactly one
/// value is kept, and every one of them reads it.
async fn concurrent_creates_have_one_winner(secrets: Arc<dyn Secrets>) {
    let name = format!("devops-mcp/data-key-{}", uuid::Uuid::new_v4().simple());
    let attempts = (0..8).map(|i| {
        let secrets = secrets.clone();
        let name = name.clone();
        tokio::spawn(async move { secrets.create(&name, &SecretValue::new(format!("key-{i}"))).await.expect("create") })
    });
    let mut created = 0;
    for attempt in attempts {
        created += usize::from(attempt.await.expect("task"));
    }
    assert_eq!(created, 1, "exactly one create wins");
    let kept = secrets.get(&name).await.expect("get").expect("present");
    assert!(kept.expose().starts_with("key-"));
    assert!(!secrets.create(&name, &SecretValue::new("later")).await.expect("create"), "an existing secret stays");
    assert_eq!(secrets.get(&name).await.expect("get").expect("present").expose(), kept.expose());
}

#[tokio::test]
async fn environment_overrides_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![("DEVOPS_MCP_SECRET_DATA_KEY".to_string(), "from-env".to_string())];
    let secrets = FileSecrets::open(dir.path(), env).await.expect("open");
    secrets.put("data-key", &SecretValue::new("from-file")).await.expect("put");
    assert_eq!(secrets.get("data-key").await.expect("get").expect("present").expose(), "from-env");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data-key")).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret files are private");
    }
}
