//! A fleet of real processes on loopback ports: the six service binaries,
//! or `devops-mcp up`, on embedded or production back ends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{free_port, fresh_postgres_database, unique};

pub const SERVICES: [&str; 6] = ["mcp-server", "rest-api", "worker", "indexer", "pr-manager", "reviewer"];

/// Where the fleet keeps its state.
#[derive(Debug, Clone)]
pub enum BackendKind {
    Embedded,
    Production { postgres_url: String, redis_url: String, aws_endpoint: String },
}

pub struct Fleet {
    pub data_dir: tempfile::TempDir,
    /// Port of each service, in [`SERVICES`] order.
    pub ports: [u16; 6],
    pub api_key: String,
    overrides: Vec<String>,
    children: Vec<(String, Child)>,
}

/// A workspace binary, built next to the test executable's directory.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

impl Fleet {
    pub async fn new(backends: BackendKind) -> Fleet {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let ports = [(); 6].map(|()| free_port());
        let mut overrides = vec![
            format!("data_dir={}", data_dir.path().display()),
            "queue.visibility_timeout_secs=5".into(),
            "worker.receive_wait_secs=1".into(),
        ];
        let keys = ["mcp_server", "rest_api", "worker", "indexer", "pr_manager", "reviewer"];
        for (key, port) in keys.iter().zip(ports) {
            overrides.push(format!("services.{key}.listen=127.0.0.1:{port}"));
        }
        if let BackendKind::Production { postgres_url, redis_url, aws_endpoint } = &backends {
            overrides.extend([
                format!("store.url={}", fresh_postgres_database(postgres_url).await),
                "queue.kind=sqs".into(),
                format!("queue.name={}", unique("fleet-")),
                "blob.kind=s3".into(),
                format!("blob.bucket={}", unique("fleet-")),
                "cache.kind=redis".into(),
                format!("cache.url={redis_url}"),
                "secrets.kind=aws".into(),
                format!("secrets.prefix={}/", unique("fleet-")),
                format!("aws.endpoint_url={aws_endpoint}"),
            ]);
        }
        Fleet { data_dir, ports, api_key: String::new(), overrides, children: Vec::new() }
    }

    /// Adds a `--set` override for every process started after this.
    pub fn set(&mut self, item: impl Into<String>) {
        self.overrides.push(item.into());
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(binary(program));
        for item in &self.overrides {
            command.arg("--set").arg(item);
        }
        command
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        command
    }

    /// Runs a `devops-mcp` admin command to completion and returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> String {
        let output = self.command("devops-mcp").args(args).output().await.expect("run devops-mcp");
        assert!(output.status.success(), "devops-mcp {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Migrates, creates a tenant and a key with the CLI, then starts the six
    /// binaries as separate processes.
    pub async fn start_separate(&mut self) {
        self.admin(&["migrate"]).await;
        self.admin(&["tenant", "create", "--name", "acme"]).await;
        self.api_key = self
            .admin(&["key", "create", "--tenant", "acme", "--name", "e2e", "--scope", "platform:admin"])
            .await
            .trim()
            .to_owned();
        for service in SERVICES {
            let child =
                self.command(service).stdout(self.log(service)).stderr(Stdio::inherit()).spawn().expect("spawn");
            self.children.push((service.to_owned(), child));
        }
    }

    /// Starts `devops-mcp up` and reads the bootstrap key it prints.
    pub async fn start_up(&mut self) {
        let mut child = self.command("devops-mcp").arg("up").stdout(Stdio::piped()).spawn().expect("spawn up");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.api_key.is_empty() {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .expect("bootstrap key within 60s")
                .expect("read stdout")
                .expect("up exited before printing a key");
            if let Some(key) = line.trim().strip_prefix("dmcp_") {
                self.api_key = format!("dmcp_{key}");
            }
        }
        let mut log = self.log("devops-mcp-up");
        tokio::spawn(async move {
            use std::io::Write;
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log, "{line}");
            }
        });
        self.children.push(("devops-mcp up".into(), child));
    }

    /// Kills a separately started service at once (SIGKILL: no drain, no
    /// acknowledgements), as a crash would.
    pub async fn kill(&mut self, service: &str) {
        let index = self.children.iter().position(|(name, _)| name == service).expect("a running service");
        let (_, mut child) = self.children.remove(index);
        child.kill().await.expect("kill");
    }

    /// Starts a service again after [`Fleet::kill`] and waits until it is ready.
    pub async fn restart(&mut self, service: &str) {
        let child = self.command(service).stdout(self.log(service)).stderr(Stdio::inherit()).spawn().expect("spawn");
        self.children.push((service.to_owned(), child));
        self.wait_ready().await;
    }

    /// The service's log file (its stdout, appended across restarts), kept
    /// in the data directory and shown if the test fails.
    fn log(&self, service: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join(format!("{service}.log")))
            .expect("log file")
    }

    pub fn http(&self, service: &str) -> String {
        let index = SERVICES.iter().position(|s| *s == service).expect("known service");
        format!("http://127.0.0.1:{}", self.ports[index])
    }

    /// Waits until every service answers `/readyz` with 200.
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for service in SERVICES {
            let url = format!("{}/readyz", self.http(service));
            loop {
                match client.get(&url).timeout(Duration::from_secs(3)).send().await {
                    Ok(response) if response.status().is_success() => break,
                    other => {
                        assert!(Instant::now() < deadline, "{service} not ready within 60s: {other:?}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }

    /// Sends SIGTERM to every process and asserts each exits 0 within 10 s.
    pub async fn terminate(&mut self) {
        for (name, child) in &mut self.children {
            let pid = child.id().expect("running").to_string();
            let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
            assert!(status.success(), "kill {name}");
        }
        for (name, child) in &mut self.children {
            let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .unwrap_or_else(|_| panic!("{name} did not exit within 10s of SIGTERM"))
                .expect("wait");
            assert!(exit.success(), "{name} exited with {exit}");
        }
        self.children.clear();
    }
}

impl Drop for Fleet {
    /// A failing test shows the end of every process's log: the fleet's
    /// processes log what went wrong, and the assertion only says what did not happen.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.data_dir.path()) else { return };
        for path in
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log"))
        {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- {} (last {} lines) ---", path.display(), lines.len().min(LOG_LINES_SHOWN));
            for line in &lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Lines shown of each process's log when a fleet test fails.
const LOG_LINES_SHOWN: usize = 40;
