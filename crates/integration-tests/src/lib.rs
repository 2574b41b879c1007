//! Helpers for the integration tests: where the real back ends are, a fresh
//! database per test, AWS clients for moto, and fleets of real processes.
//!
//! Back ends are found through `DEVOPS_MCP_TEST_*` variables that
//! `scripts/test-services.sh` writes. Without them a test is skipped, unless
//! `DEVOPS_MCP_REQUIRE_SERVICES=1` (as under `make test`), where it fails.

pub mod fleet;

use std::net::TcpListener;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use devops_store::{ConnectOptions, PostgresStore, SqliteStore, Store};

/// The value of a `DEVOPS_MCP_TEST_*` variable, or `None` to skip the test.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("DEVOPS_MCP_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!(
                "{var} is not set but DEVOPS_MCP_REQUIRE_SERVICES=1: start the services with scripts/test-services.sh"
            )
        }
        _ => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

pub fn postgres_url() -> Option<String> {
    service("DEVOPS_MCP_TEST_POSTGRES_URL")
}

pub fn redis_url() -> Option<String> {
    service("DEVOPS_MCP_TEST_REDIS_URL")
}

pub fn aws_endpoint() -> Option<String> {
    service("DEVOPS_MCP_TEST_AWS_ENDPOINT")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A unique suffix for databases, queues, buckets and key namespaces.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_database(server_url: &str) -> String {
    use sqlx::Connection;
    let name = unique("t_");
    let mut admin = sqlx::PgConnection::connect(server_url).await.expect("connect to test postgres");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    let mut url = url::Url::parse(server_url).expect("postgres url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn options(url: String) -> ConnectOptions {
    ConnectOptions { url, max_connections: 5, connect_timeout: std::time::Duration::from_secs(5) }
}

/// A migrated PostgreSQL store in a database of its own.
pub async fn postgres_store(server_url: &str) -> Arc<dyn Store> {
    let url = fresh_postgres_database(server_url).await;
    let store = PostgresStore::connect(&options(url)).await.expect("connect store");
    store.migrate().await.expect("migrate postgres");
    Arc::new(store)
}

/// A migrated SQLite store in `dir`.
pub async fn sqlite_store(dir: &std::path::Path) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = SqliteStore::connect(&options(url)).await.expect("connect store");
    store.migrate().await.expect("migrate sqlite");
    Arc::new(store)
}

/// SDK configuration for moto, with static test credentials.
pub async fn moto_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// A TCP proxy in front of a real server that a test can cut and restore,
/// to watch services lose and regain a dependency without a restart.
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    state: Arc<std::sync::Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    connections: Vec<tokio::task::JoinHandle<()>>,
}

impl CuttableProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = accept_state.lock().expect("proxy state");
                if state.cut {
                    continue; // dropping `inbound` refuses the connection
                }
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        CuttableProxy { addr, state }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("proxy state");
        state.cut = true;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.state.lock().expect("proxy state").cut = false;
    }
}

/// The `host:port` of a URL, resolved to a socket address.
pub fn socket_addr(url: &str) -> std::net::SocketAddr {
    let parsed = url::Url::parse(url).expect("url");
    let host = parsed.host_str().expect("host");
    let port = parsed.port_or_known_default().expect("port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).expect("resolve").next().expect("an address")
}
