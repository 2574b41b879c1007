//! A bare, shallow cache of one repository, driven by the git CLI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::policy::{CheckedUrl, RepoLocation};
use crate::{Error, Result};

/// The ref that records the last commit the caller finished with, so the
/// objects it needs for the next diff are never pruned.
const KEEP_REF: &str = "refs/devops-mcp/indexed";
const FETCHED_REF: &str = "refs/devops-mcp/fetched";

/// How fetches run: their limits, and the operator's ssh identity.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cache directory may not grow past this during a fetch.
    pub max_repo_bytes: u64,
    pub fetch_timeout: Duration,
    /// The private key ssh fetches authenticate with; `None` lets ssh use
    /// the process user's keys and agent.
    pub ssh_identity_file: Option<PathBuf>,
    /// Known host keys for ssh. When set, an unknown or changed host key is
    /// refused; when not, the user's file is used and a first-seen key is
    /// trusted and recorded.
    pub ssh_known_hosts_file: Option<PathBuf>,
    /// CA certificates for https hosts with a private CA (a self-hosted
    /// forge); `None` uses the system's.
    pub ca_file: Option<PathBuf>,
    /// Sent as `Authorization` on an https fetch (a provider connection's
    /// token). Only to the checked host: redirects are never followed.
    pub http_authorization: Option<HttpAuthorization>,
}

impl FetchOptions {
    pub fn new(max_repo_bytes: u64, fetch_timeout: Duration) -> Self {
        Self {
            max_repo_bytes,
            fetch_timeout,
            ssh_identity_file: None,
            ssh_known_hosts_file: None,
            ca_file: None,
            http_authorization: None,
        }
    }
}

/// An `Authorization` header value for git over https. It reaches git
/// through its environment, never its command line (which other local
/// users can read) nor a stored remote; it is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpAuthorization(String);

impl HttpAuthorization {
    /// HTTP Basic, as GitHub (`x-access-token`) and GitLab (`oauth2`) take
    /// tokens over git.
    pub fn basic(username: &str, password: &str) -> Self {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self(format!("Basic {encoded}"))
    }
}

impl std::fmt::Debug for HttpAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpAuthorization(<redacted>)")
    }
}

/// A file in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub oid: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Added or modified: the new content must be read.
    Upsert,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct Mirror {
    dir: PathBuf,
    /// Absent for a mirror opened only to read what an earlier fetch brought.
    source: Option<CheckedUrl>,
}

fn mirror_dir(root: &Path, namespace: &str, url: &str) -> PathBuf {
    let digest = hex::encode(&Sha256::digest(url.as_bytes())[..12]);
    root.join(namespace).join(format!("{digest}.git"))
}

impl Mirror {
    /// The cache directory for `source` under `root`, one per (namespace, URL).
    pub async fn open(root: &Path, namespace: &str, source: CheckedUrl) -> Result<Self> {
        let dir = mirror_dir(root, namespace, &source.url);
        if !dir.join("HEAD").exists() {
            tokio::fs::create_dir_all(&dir).await?;
            run(Command::new("git").arg("init").arg("--bare").arg("--quiet").arg(&dir), "init").await?;
        }
        Ok(Self { dir, source: Some(source) })
    }

    /// The cache of `url` as an earlier fetch left it, for reading only.
    pub fn existing(root: &Path, namespace: &str, url: &str) -> Result<Self> {
        let dir = mirror_dir(root, namespace, url);
        if dir.join("HEAD").exists() {
            Ok(Self { dir, source: None })
        } else {
            Err(Error::NotFound(format!("no fetched copy of {url}")))
        }
    }

    /// Fetches `git_ref` (a branch, tag or commit; empty for the remote's
    /// HEAD) at depth 1 and returns its commit id.
    pub async fn fetch(&self, git_ref: &str, options: &FetchOptions) -> Result<String> {
        if git_ref.starts_with('-') || git_ref.contains("..") || git_ref.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::InvalidUrl(format!("bad ref {git_ref:?}")));
        }
        let wanted = if git_ref.is_empty() { "HEAD" } else { git_ref };
        let source = self.source.as_ref().ok_or_else(|| Error::InvalidUrl("mirror opened read-only".into()))?;
        let mut cmd = self.git();
        if let RepoLocation::Remote { scheme, .. } = &source.location
            && scheme == "https"
        {
            // git's remote helper takes the CA file from its environment, not
            // from `-c http.sslCAInfo`.
            if let Some(ca_file) = &options.ca_file {
                cmd.env("GIT_SSL_CAINFO", ca_file);
            }
            if let Some(authorization) = &options.http_authorization {
                cmd.env("GIT_CONFIG_COUNT", "1")
                    .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                    .env("GIT_CONFIG_VALUE_0", format!("Authorization: {}", authorization.0));
            }
        }
        cmd.args(transport_config(source, options))
            .args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", "--force", "--"])
            .arg(&source.url)
            .arg(format!("+{wanted}:{FETCHED_REF}"));
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
        self.watch_fetch(child, options).await?;
        self.rev_parse(FETCHED_REF).await
    }

    /// Runs a fetch, killing it when the cache outgrows the limit or the
    /// deadline passes. Either way nothing half-fetched is referenced.
    async fn watch_fetch(&self, mut child: Child, limits: &FetchOptions) -> Result<()> {
        let mut stderr = child.stderr.take();
        let deadline = tokio::time::Instant::now() + limits.fetch_timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status?;
                    if status.success() {
                        // A fast fetch can finish between two ticks.
                        if dir_size(&self.dir).await > limits.max_repo_bytes {
                            let _ = run(self.git().args(["update-ref", "-d", FETCHED_REF]), "update-ref").await;
                            let _ = self.prune().await;
                            return Err(Error::TooLarge { limit: limits.max_repo_bytes });
                        }
                        return Ok(());
                    }
                    let mut message = String::new();
                    if let Some(stderr) = stderr.as_mut() {
                        let _ = stderr.read_to_string(&mut message).await;
                    }
                    return Err(Error::Git { operation: "fetch", message: redact(message.trim()) });
                }
                _ = tick.tick() => {
                    if dir_size(&self.dir).await > limits.max_repo_bytes {
                        let _ = child.kill().await;
                        let _ = self.prune().await;
                        return Err(Error::TooLarge { limit: limits.max_repo_bytes });
                    }
                    if tokio::time::Instant::now() > deadline {
                        let _ = child.kill().await;
                        return Err(Error::Timeout { operation: "fetch" });
                    }
                }
            }
        }
    }

    /// Drops objects nothing references (after an aborted fetch).
    async fn prune(&self) -> Result<()> {
        run(self.git().args(["prune", "--expire=now"]), "prune").await.map(drop)
    }

    /// Marks `commit` as the one to diff against next time.
    pub async fn keep(&self, commit: &str) -> Result<()> {
        run(self.git().args(["update-ref", KEEP_REF, commit]), "update-ref").await.map(drop)
    }

    /// Whether the cache still holds `commit` (it may have been wiped).
    pub async fn has_commit(&self, commit: &str) -> bool {
        run(self.git().args(["cat-file", "-e", &format!("{commit}^{{commit}}")]), "cat-file").await.is_ok()
    }

    pub async fn rev_parse(&self, rev: &str) -> Result<String> {
        let out = run(self.git().args(["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")]), "rev-parse")
            .await
            .map_err(|_| Error::NotFound(format!("revision {rev}")))?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Every regular file in `commit` (no symlinks, no submodules).
    pub async fn list_tree(&self, commit: &str) -> Result<Vec<TreeEntry>> {
        let out = run(self.git().args(["ls-tree", "-r", "-z", "--long", "--full-tree", commit]), "ls-tree").await?;
        let mut entries = Vec::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            // "<mode> SP <type> SP <oid> SP+ <size> TAB <path>"
            let Some((meta, path)) = record.split_once('\t') else { continue };
            let fields: Vec<&str> = meta.split_whitespace().collect();
            if let [mode, "blob", oid, size] = fields.as_slice()
                && (*mode == "100644" || *mode == "100755")
            {
                entries.push(TreeEntry {
                    path: path.to_owned(),
                    oid: (*oid).to_owned(),
                    size: size.parse().unwrap_or(u64::MAX),
                });
            }
        }
        Ok(entries)
    }

    /// Files that differ between two commits; renames are a delete plus an upsert.
    pub async fn diff(&self, from: &str, to: &str) -> Result<Vec<Change>> {
        let out =
            run(self.git().args(["diff-tree", "-r", "-z", "--no-renames", "--name-status", from, to]), "diff-tree")
                .await?;
        let mut fields = out.split(|b| *b == 0).filter(|r| !r.is_empty());
        let mut changes = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            let kind = if status.first() == Some(&b'D') { ChangeKind::Delete } else { ChangeKind::Upsert };
            changes.push(Change { kind, path: String::from_utf8_lossy(path).into_owned() });
        }
        Ok(changes)
    }

    /// One file of one commit, refused past `max_bytes`.
    pub async fn read_file(&self, commit: &str, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        if path.starts_with('-') {
            return Err(Error::NotFound(path.to_owned()));
        }
        let spec = format!("{commit}:{path}");
        let size = run(self.git().args(["cat-file", "-s", &spec]), "cat-file")
            .await
            .map_err(|_| Error::NotFound(format!("{path} at {commit}")))?;
        let size: u64 = String::from_utf8_lossy(&size).trim().parse().unwrap_or(u64::MAX);
        if size > max_bytes {
            return Err(Error::TooLarge { limit: max_bytes });
        }
        run(self.git().args(["cat-file", "blob", &spec]), "cat-file").await
    }

    /// A long-lived `git cat-file --batch` for reading many blobs.
    pub fn blob_reader(&self) -> Result<BlobReader> {
        let mut child = self
            .git()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin =
            child.stdin.take().ok_or_else(|| Error::Git { operation: "cat-file", message: "no stdin".into() })?;
        let stdout =
            child.stdout.take().ok_or_else(|| Error::Git { operation: "cat-file", message: "no stdout".into() })?;
        Ok(BlobReader { _child: child, stdin, stdout: BufReader::with_capacity(1 << 16, stdout) })
    }

    fn git(&self) -> Command {
        isolated_git(&self.dir)
    }
}

/// git on `git_dir`, deaf to the caller's configuration and environment:
/// no prompts, no system or global config, no injected config or transport.
pub(crate) fn isolated_git(git_dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir")
        .arg(git_dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        // These would override the pinned transport set on the command line.
        .env_remove("GIT_SSH")
        .env_remove("GIT_SSH_COMMAND")
        .env_remove("GIT_PROXY_COMMAND")
        .env_remove("GIT_CONFIG_PARAMETERS")
        .env_remove("GIT_CONFIG_COUNT")
        .env_remove("GIT_SSL_CAINFO")
        .env_remove("GIT_SSL_NO_VERIFY");
    cmd
}

/// Only the transport the policy approved, to the addresses it approved.
fn transport_config(source: &CheckedUrl, options: &FetchOptions) -> Vec<String> {
    let mut config = vec![
        "-c".into(),
        "protocol.allow=never".into(),
        "-c".into(),
        "http.followRedirects=false".into(),
        "-c".into(),
        "core.askPass=/bin/false".into(),
    ];
    match &source.location {
        RepoLocation::Local { .. } => {
            config.extend(["-c".into(), "protocol.file.allow=always".into()]);
        }
        RepoLocation::Remote { scheme, host, port, addrs } => {
            config.extend(["-c".into(), format!("protocol.{scheme}.allow=always")]);
            let Some(ip) = addrs.first() else { return config };
            if scheme == "https" {
                let ip = match ip {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    std::net::IpAddr::V4(v4) => v4.to_string(),
                };
                config.extend(["-c".into(), format!("http.curloptResolve={host}:{port}:{ip}")]);
            } else {
                config.extend(["-c".into(), format!("core.sshCommand={}", ssh_command(host, *ip, options))]);
            }
        }
    }
    config
}

/// The ssh command line git runs: pinned to the checked address, never
/// interactive, with the operator's identity and known hosts if configured.
fn ssh_command(host: &str, ip: std::net::IpAddr, options: &FetchOptions) -> String {
    let mut command = format!("ssh -F /dev/null -o BatchMode=yes -o HostName={ip} -o HostKeyAlias={host}");
    match &options.ssh_known_hosts_file {
        Some(file) => {
            command.push_str(&format!(" -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}", shell_quote(file)))
        }
        None => command.push_str(" -o StrictHostKeyChecking=accept-new"),
    }
    if let Some(key) = &options.ssh_identity_file {
        command.push_str(&format!(" -o IdentitiesOnly=yes -i {}", shell_quote(key)));
    }
    command
}

/// git runs `core.sshCommand` through the shell.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// Reads blobs by id over one `git cat-file --batch` process.
pub struct BlobReader {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl BlobReader {
    pub async fn read(&mut self, oid: &str) -> Result<Vec<u8>> {
        self.stdin.write_all(oid.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).await?;
        // "<oid> <type> <size>" or "<oid> missing"
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next(), parts.next(), parts.next());
        let size: usize = match (kind, size) {
            (Some("blob"), Some(size)) => size
                .parse()
                .map_err(|_| Error::Git { operation: "cat-file", message: format!("bad header {header:?}") })?,
            _ => return Err(Error::NotFound(format!("blob {oid}"))),
        };
        let mut content = vec![0; size + 1];
        self.stdout.read_exact(&mut content).await?;
        content.pop();
        Ok(content)
    }
}

pub(crate) async fn run(cmd: &mut Command, operation: &'static str) -> Result<Vec<u8>> {
    let out = cmd.stdin(Stdio::null()).output().await?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Git { operation, message: redact(String::from_utf8_lossy(&out.stderr).trim()) })
    }
}

/// git echoes URLs in errors; never let a credential in one reach a log.
fn redact(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match (word.find("://"), word.find('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &word[..scheme], &word[at..]),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else { continue };
        while let Ok(Some(entry)) = entries.next_entry().await {
            match entry.metadata().await {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UrlPolicy;

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }

    fn limits() -> FetchOptions {
        FetchOptions::new(50 << 20, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn fetches_lists_diffs_and_reads() {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("work");
        std::fs::create_dir(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        std::fs::write(work.join("a.txt"), "one\n").expect("write");
        std::fs::write(work.join("b.txt"), "two\n").expect("write");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "first"]);

        let policy = UrlPolicy { allowed_local_paths: vec![root.path().to_path_buf()], ..Default::default() };
        let source = policy.check(&work.to_string_lossy()).await.expect("policy");
        let mirror = Mirror::open(&root.path().join("cache"), "tenant", source).await.expect("open");
        let first = mirror.fetch("", &limits()).await.expect("fetch");
        let tree = mirror.list_tree(&first).await.expect("tree");
        assert_eq!(tree.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
        mirror.keep(&first).await.expect("keep");

        std::fs::write(work.join("a.txt"), "one changed\n").expect("write");
        std::fs::remove_file(work.join("b.txt")).expect("rm");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-qm", "second"]);
        let second = mirror.fetch("main", &limits()).await.expect("fetch again");
        assert_ne!(first, second);
        assert!(mirror.has_commit(&first).await, "kept commit survives a shallow fetch");
        let changes = mirror.diff(&first, &second).await.expect("diff");
        assert_eq!(
            changes,
            [
                Change { kind: ChangeKind::Upsert, path: "a.txt".into() },
                Change { kind: ChangeKind::Delete, path: "b.txt".into() },
            ]
        );
        let tree = mirror.list_tree(&second).await.expect("tree");
        let mut reader = mirror.blob_reader().expect("reader");
        assert_eq!(reader.read(&tree[0].oid).await.expect("blob"), b"one changed\n");
        assert!(matches!(reader.read("0000000000000000000000000000000000000000").await, Err(Error::NotFound(_))));
        assert_eq!(mirror.read_file(&second, "a.txt", 1024).await.expect("file"), b"one changed\n");
        assert!(matches!(mirror.read_file(&second, "a.txt", 3).await, Err(Error::TooLarge { .. })));
        assert!(matches!(mirror.read_file(&second, "b.txt", 1024).await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn a_fetch_past_the_size_limit_is_stopped() {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("big");
        std::fs::create_dir(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        // Incompressible content so the pack really is large.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(work.join("noise.bin"), noise).expect("write");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "big"]);
        let policy = UrlPolicy { allowed_local_paths: vec![root.path().to_path_buf()], ..Default::default() };
        let source = policy.check(&work.to_string_lossy()).await.expect("policy");
        let mirror = Mirror::open(&root.path().join("cache"), "t", source).await.expect("open");
        let small = FetchOptions::new(1 << 20, Duration::from_secs(60));
        let err = mirror.fetch("", &small).await.expect_err("too large");
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn credentials_are_redacted_from_git_errors() {
        assert_eq!(
            redact("fatal: unable to access 'https://user:tok@example.com/x.git/': 403"),
            "fatal: unable to access 'https://***@example.com/x.git/': 403"
        );
    }
}
