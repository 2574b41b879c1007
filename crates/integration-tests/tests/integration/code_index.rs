//! The code index on both stores: a real git repository is built, indexed,
//! searched, changed and re-indexed, through the indexer's library.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use devops_errors::{ErrorCode, HasErrorCode};
use devops_git::{FetchOptions, UrlPolicy};
use devops_indexer::chunk::ChunkLimits;
use devops_indexer::embed::{EmbedError, Embedder, HashEmbedder};
use devops_indexer::filter::SkipReason;
use devops_indexer::pipeline::{CodeIndex, Error, Progress, SearchParams, Settings};
use devops_models::{IndexState, SearchMode, TenantId};
use devops_store::Store;
use tokio_util::sync::CancellationToken;

macro_rules! code_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$name(devops_integration_tests::sqlite_store(dir.path()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = devops_integration_tests::postgres_url() else { return };
                    super::$name(devops_integration_tests::postgres_store(&url).await).await;
                }
            )*
        }
    };
}

code_suite!(
    indexes_and_searches_by_identifier_and_by_meaning,
    a_new_commit_re_embeds_only_what_changed,
    a_cancelled_run_leaves_every_file_whole,
    ssrf_urls_are_refused_and_tenants_see_only_their_own,
);

/// A work tree with commits, served to the indexer as a local repository.
pub struct Repo {
    pub root: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("work")).expect("mkdir");
        let repo = Self { root };
        repo.git(&["init", "-q"]);
        repo
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub fn url(&self) -> String {
        self.work().to_string_lossy().into_owned()
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let full = self.work().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.work().join(path)).expect("remove");
    }

    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A", "-f"]);
        self.git(&["commit", "-qm", message]);
    }

    pub fn head(&self) -> String {
        let out = std::process::Command::new("git")
            .current_dir(self.work())
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("git rev-parse");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn git(&self, args: &[&str]) {
        let status = std::process::Command::new("git")
            .current_dir(self.work())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
}

fn index_for(store: Arc<dyn Store>, cache: &Path, allowed: &Path, embedder: Arc<dyn Embedder>) -> CodeIndex {
    let policy = Arc::new(UrlPolicy { allowed_hosts: vec![], allowed_local_paths: vec![allowed.to_path_buf()] });
    CodeIndex {
        code: store.code(),
        hosts: devops_providers::Hosts::new(devops_providers::LocalGitHost::new(store.as_ref(), policy.clone())),
        store,
        embedder,
        policy,
        settings: Arc::new(Settings {
            cache_root: cache.to_path_buf(),
            mirror: FetchOptions::new(64 << 20, Duration::from_secs(60)),
            max_file_bytes: 64 * 1024,
            chunk: ChunkLimits::default(),
        }),
    }
}

async fn run(index: &CodeIndex, tenant: TenantId, url: &str) -> Result<Progress, Error> {
    let source = index.check_url(url).await?;
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = seen.clone();
    let report = move |p: &Progress| sink.lock().expect("lock").push(p.clone());
    let outcome = index.index(tenant, source, "", false, &report, &CancellationToken::new()).await;
    let seen = seen.lock().expect("lock");
    if outcome.is_ok() {
        assert!(seen.len() >= 3, "fetching, indexing and done are reported");
        assert!(seen.windows(2).all(|w| w[0].files_done <= w[1].files_done), "progress only grows");
    }
    outcome
}

async fn search(index: &CodeIndex, tenant: TenantId, query: &str) -> Vec<devops_models::CodeHit> {
    let params = SearchParams { query: query.into(), limit: 5, ..SearchParams::default() };
    index.search(tenant, &params).await.expect("search")
}

const WEBHOOKS_RS: &str = r#"use hmac::{Hmac, Mac};

/// Checks that the payload was signed with the shared secret (GitHub's
/// X-Hub-Signature-256 header).
pub fn verify_webhook_signature(secret: &[u8], payload: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
    mac.update(payload);
    let expected = hex::encode(mac.finalize().into_bytes());
    constant_time_eq(header.trim_start_matches("sha256="), &expected)
}

pub fn parse_event_name(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-github-event")?.to_str().ok()
}
"#;

const RENDER_RS: &str = r#"/// Renders rows as a Markdown table.
pub fn render_markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}
"#;

const HANDLER_PY: &str = r#"import json


class DeliveryQueue:
    """Buffers deliveries until the worker drains them."""

    def push(self, delivery):
        self.items.append(delivery)

    def drain(self):
        items, self.items = self.items, []
        return items
"#;

pub fn seed(repo: &Repo) {
    repo.write("src/webhooks.rs", WEBHOOKS_RS);
    repo.write("src/render.rs", RENDER_RS);
    repo.write("app/queue.py", HANDLER_PY);
    repo.write("web/client.ts", "export async function fetchRepositories(token: string) {\n  return fetch('/api/v1/repositories', { headers: { authorization: `Bearer ${token}` } });\n}\n");
    repo.write("cmd/main.go", "package main\n\nfunc retryWithBackoff(attempts int) error {\n\treturn nil\n}\n");
    repo.write("src/main/java/Billing.java", "class Billing {\n  int chargeCustomer(int cents) { return cents; }\n}\n");
    repo.write("README.md", "# Demo\n\nA demo service that receives webhooks.\n");
    repo.write("vendor/lib.js", "function vendored() {}\n");
    repo.write(".gitignore", "*.log\n");
    repo.write("debug.log", "tracked despite .gitignore\n");
    repo.write("assets/data.dat", [0u8, 159, 146, 150, 0, 1, 2]);
    repo.write("big/huge.txt", "x".repeat(100 * 1024));
    repo.commit("seed");
}

async fn indexes_and_searches_by_identifier_and_by_meaning(store: Arc<dyn Store>) {
    let repo = Repo::new();
    seed(&repo);
    let tenant = store.create_tenant(&devops_integration_tests::unique("code")).await.expect("tenant").id;
    let index = index_for(store.clone(), &repo.root.path().join("cache"), repo.root.path(), Arc::new(HashEmbedder));

    let progress = run(&index, tenant, &repo.url()).await.expect("index");
    let skipped: Vec<(&str, SkipReason)> = progress.skipped.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    for expected in [
        ("assets/data.dat", SkipReason::Binary),
        ("big/huge.txt", SkipReason::TooLarge),
        ("vendor/lib.js", SkipReason::Vendored),
        ("debug.log", SkipReason::Ignored),
    ] {
        assert!(skipped.contains(&expected), "{expected:?} in {skipped:?}");
    }
    assert_eq!(progress.embeddings_reused, 0);
    assert_eq!(progress.embeddings_computed, progress.chunks, "a first run embeds every distinct chunk");
    let stored = store.get_repository(tenant, progress.repository_id.expect("id")).await.expect("repository");
    assert_eq!(stored.state, IndexState::Ready);
    assert_eq!(stored.last_indexed_commit.as_deref(), Some(progress.commit.as_str()));
    assert_eq!(stored.chunk_count, progress.chunks);
    assert_eq!(stored.file_count, 8, "seven source files and .gitignore");

    let by_identifier = search(&index, tenant, "verify_webhook_signature").await;
    assert_eq!(by_identifier[0].symbol, "verify_webhook_signature", "{by_identifier:?}");
    assert_eq!(by_identifier[0].path, "src/webhooks.rs");
    assert_eq!((by_identifier[0].start_line, by_identifier[0].end_line), (3, 10), "cited with its doc comment");

    let by_meaning = search(&index, tenant, "where do we check webhook signatures?").await;
    assert_eq!(by_meaning[0].path, "src/webhooks.rs", "{by_meaning:?}");
    let drained = search(&index, tenant, "drain queued deliveries").await;
    assert_eq!(drained[0].path, "app/queue.py", "{drained:?}");
    assert!(drained[0].symbol.starts_with("DeliveryQueue"), "{drained:?}");
    assert!(drained.windows(2).all(|w| w[0].score >= w[1].score));

    // Filters still fill the page from what matches.
    let filter = |glob: Option<&str>, language: Option<&str>| SearchParams {
        query: "function".into(),
        limit: 3,
        path_glob: glob.map(Into::into),
        language: language.map(Into::into),
        repositories: vec![repo.url()],
        ..SearchParams::default()
    };
    let python = index.search(tenant, &filter(None, Some("python"))).await.expect("search");
    assert!(!python.is_empty() && python.iter().all(|h| h.language == "python"), "{python:?}");
    let rust = index.search(tenant, &filter(Some("src/**/*.rs"), None)).await.expect("search");
    assert_eq!(rust.len(), 3, "three Rust chunks match the glob: {rust:?}");
    assert!(rust.iter().all(|h| h.path.starts_with("src/") && h.path.ends_with(".rs")));
    let web = index.search(tenant, &filter(Some("web/**"), None)).await.expect("search");
    assert!(web.iter().all(|h| h.path == "web/client.ts") && !web.is_empty());

    // Each ranking alone still finds the obvious answer.
    for mode in [SearchMode::Lexical, SearchMode::Vector] {
        let params = SearchParams { query: "render markdown table".into(), limit: 3, mode, ..SearchParams::default() };
        let hits = index.search(tenant, &params).await.expect("search");
        assert_eq!(hits[0].symbol, "render_markdown_table", "{mode:?}: {hits:?}");
    }

    let (_, commit, file) = index.file(tenant, &repo.url(), "src/render.rs", "").await.expect("file");
    assert_eq!(commit, progress.commit);
    assert_eq!(file, RENDER_RS.as_bytes());
    let missing = index.file(tenant, &repo.url(), "nope.rs", "").await.expect_err("missing");
    assert_eq!(missing.code(), ErrorCode::NotFound);
    let escape = index.file(tenant, &repo.url(), "../etc/passwd", "").await.expect_err("escape");
    assert_eq!(escape.code(), ErrorCode::InvalidArgument);
}

async fn a_new_commit_re_embeds_only_what_changed(store: Arc<dyn Store>) {
    let repo = Repo::new();
    seed(&repo);
    let tenant = store.create_tenant(&devops_integration_tests::unique("code")).await.expect("tenant").id;
    let index = index_for(store.clone(), &repo.root.path().join("cache"), repo.root.path(), Arc::new(HashEmbedder));
    let first = run(&index, tenant, &repo.url()).await.expect("index");

    // One function changes, one file goes, one arrives.
    repo.write("src/webhooks.rs", WEBHOOKS_RS.replace("x-github-event", "x-gitlab-event"));
    repo.remove("src/render.rs");
    repo.write("src/limits.rs", "pub fn clamp_page_size(n: u32) -> u32 {\n    n.clamp(1, 200)\n}\n");
    repo.commit("change");
    let second = run(&index, tenant, &repo.url()).await.expect("re-index");
    assert_ne!(second.commit, first.commit);
    assert_eq!(second.files_total, 2, "only the changed and the added file are read");
    assert_eq!(second.files_deleted, 1);
    assert_eq!(second.embeddings_computed, 2, "the changed function and the new one");
    assert!(second.embeddings_reused >= 2, "unchanged chunks of the changed file are reused: {second:?}");

    let gone = search(&index, tenant, "render markdown table").await;
    assert!(gone.iter().all(|h| h.path != "src/render.rs"), "{gone:?}");
    let added = search(&index, tenant, "clamp_page_size").await;
    assert_eq!(added[0].path, "src/limits.rs");
    let changed = search(&index, tenant, "x-gitlab-event header").await;
    assert_eq!(changed[0].symbol, "parse_event_name");

    // Nothing new: nothing read, nothing embedded.
    let third = run(&index, tenant, &repo.url()).await.expect("no-op");
    assert_eq!((third.files_total, third.embeddings_computed), (0, 0));
    let id = third.repository_id.expect("id");
    let stored = store.get_repository(tenant, id).await.expect("repository");
    let (files, chunks) = store.code().index_size(tenant, id).await.expect("size");
    assert_eq!((stored.file_count, stored.chunk_count), (files, chunks));
}

/// Embeds like the built-in embedder, but cancels the run on its second call.
struct CancelOnSecondCall {
    calls: AtomicUsize,
    cancel: CancellationToken,
}

#[async_trait]
impl Embedder for CancelOnSecondCall {
    fn id(&self) -> &str {
        HashEmbedder::ID
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            self.cancel.cancel();
            // A slow model: cancellation must not wait for it.
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        HashEmbedder.embed(texts).await
    }
}

async fn a_cancelled_run_leaves_every_file_whole(store: Arc<dyn Store>) {
    let repo = Repo::new();
    for n in 0..200 {
        repo.write(
            &format!("src/module_{n:03}.rs"),
            format!("pub fn handler_{n}() -> u32 {{\n    {n}\n}}\n\npub fn helper_{n}() -> u32 {{\n    {n} * 2\n}}\n"),
        );
    }
    repo.commit("many files");
    let tenant = store.create_tenant(&devops_integration_tests::unique("code")).await.expect("tenant").id;
    let cancel = CancellationToken::new();
    let embedder = Arc::new(CancelOnSecondCall { calls: AtomicUsize::new(0), cancel: cancel.clone() });
    let index = index_for(store.clone(), &repo.root.path().join("cache"), repo.root.path(), embedder);
    let source = index.check_url(&repo.url()).await.expect("url");
    let started = std::time::Instant::now();
    let err = index.index(tenant, source, "", false, &|_: &Progress| {}, &cancel).await.expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "cancellation does not wait for the embedder");

    let repos = store.list_repositories(tenant, devops_store::Page::first(10)).await.expect("list");
    let stored = &repos[0];
    assert_eq!(stored.state, IndexState::Registered, "never indexed, so back to registered");
    assert!(stored.last_error.as_deref().is_some_and(|e| e.contains("cancelled")));
    // Every file is either absent or complete: two chunks each.
    let paths = store.code().indexed_paths(tenant, stored.id).await.expect("paths");
    let (files, chunks) = store.code().index_size(tenant, stored.id).await.expect("size");
    assert!(files < 200, "the run stopped early: {files}");
    assert_eq!(files as usize, paths.len());
    assert_eq!(chunks, files * 2, "no file is half-written");

    // The next run finishes, reusing what the cancelled one embedded.
    let index = index_for(store.clone(), &repo.root.path().join("cache"), repo.root.path(), Arc::new(HashEmbedder));
    let done = run(&index, tenant, &repo.url()).await.expect("index");
    assert_eq!(done.embeddings_reused, chunks);
    assert_eq!(store.code().index_size(tenant, stored.id).await.expect("size"), (200, 400));
}

async fn ssrf_urls_are_refused_and_tenants_see_only_their_own(store: Arc<dyn Store>) {
    let repo = Repo::new();
    seed(&repo);
    let owner = store.create_tenant(&devops_integration_tests::unique("code")).await.expect("tenant").id;
    let other = store.create_tenant(&devops_integration_tests::unique("code")).await.expect("tenant").id;
    let index = index_for(store.clone(), &repo.root.path().join("cache"), repo.root.path(), Arc::new(HashEmbedder));
    for url in ["https://127.0.0.1/x.git", "https://169.254.169.254/latest", "http://example.com/x.git", "/etc"] {
        let err = run(&index, owner, url).await.expect_err(url);
        assert_eq!(err.code(), ErrorCode::UrlNotAllowed, "{url}: {err}");
    }
    run(&index, owner, &repo.url()).await.expect("index");
    assert!(!search(&index, owner, "verify_webhook_signature").await.is_empty());
    assert!(search(&index, other, "verify_webhook_signature").await.is_empty());
    let err = index.file(other, &repo.url(), "src/render.rs", "").await.expect_err("other tenant");
    assert_eq!(err.code(), ErrorCode::NotFound);
    let params = SearchParams { query: "x".into(), repositories: vec![repo.url()], ..SearchParams::default() };
    assert_eq!(index.search(other, &params).await.expect_err("not theirs").code(), ErrorCode::NotFound);
}

/// all-MiniLM-L6-v2 from the weights `scripts/test-services.sh` installs.
fn minilm() -> Option<Arc<dyn Embedder>> {
    let dir = devops_integration_tests::service("DEVOPS_MCP_TEST_MINILM_DIR")?;
    Some(Arc::new(devops_indexer::minilm::MiniLmEmbedder::load(Path::new(&dir)).expect("load all-MiniLM-L6-v2")))
}

#[tokio::test]
async fn minilm_embeds_by_meaning() {
    use devops_indexer::embed::cosine;
    let Some(model) = minilm() else { return };
    let texts = [
        "How do we check that a webhook payload was signed with our secret?",
        "fn verify_webhook_signature(secret: &[u8], payload: &[u8], header: &str) -> bool",
        "Render the rows of the monthly report as an HTML table",
    ]
    .map(String::from);
    let vectors = model.embed(&texts).await.expect("embed");
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), devops_indexer::embed::DIMENSIONS);
        assert!((cosine(vector, vector) - 1.0).abs() < 1e-4, "unit length");
    }
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(related > unrelated + 0.1, "related {related}, unrelated {unrelated}");
    // Padding in a batch must not change a text's vector.
    let alone = model.embed(&texts[..1]).await.expect("embed one");
    assert!(cosine(&alone[0], &vectors[0]) > 0.9999);
}

#[tokio::test]
async fn minilm_finds_code_by_meaning_alone() {
    let Some(model) = minilm() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let repo = Repo::new();
    seed(&repo);
    let tenant = store.create_tenant("neural").await.expect("tenant").id;
    let index = index_for(store, &repo.root.path().join("cache"), repo.root.path(), model);
    let progress = run(&index, tenant, &repo.url()).await.expect("index");
    assert_eq!(progress.embeddings_computed, progress.chunks);
    // No query word appears in the answer: only the model can connect them.
    let params = SearchParams {
        query: "authenticate the sender of an incoming HTTP callback".into(),
        limit: 3,
        mode: SearchMode::Vector,
        ..SearchParams::default()
    };
    let hits = index.search(tenant, &params).await.expect("search");
    assert_eq!(hits[0].symbol, "verify_webhook_signature", "{hits:?}");
}

/// An OpenAI-compatible `/v1/embeddings` endpoint for the client to talk to.
/// No real one can run here, so this one follows the API's published shape
/// (request: model, input[], dimensions, encoding_format; response: data[]
/// with index and embedding) and answers out of order, as servers may.
async fn embeddings_endpoint(dimensions: usize) -> String {
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(move |headers: HeaderMap, Json(body): Json<Value>| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
                return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "bad key"}})));
            }
            assert_eq!(body["model"], "text-embedding-3-small");
            assert_eq!(body["dimensions"], 384);
            assert_eq!(body["encoding_format"], "float");
            let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).expect("input array");
            let mut data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let mut vector = HashEmbedder::embed_one(text);
                    vector.resize(dimensions, 0.5);
                    json!({"object": "embedding", "index": index, "embedding": vector})
                })
                .collect();
            data.reverse();
            (StatusCode::OK, Json(json!({"object": "list", "data": data, "model": body["model"]})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn the_openai_compatible_embedder_keeps_input_order_and_checks_shapes() {
    use devops_indexer::embed::OpenAiEmbedder;
    let texts = ["verify webhook signature".to_owned(), "render a table".to_owned()];
    let url = embeddings_endpoint(384).await;
    let embedder = OpenAiEmbedder::new(&url, "text-embedding-3-small", Some("sk-test".into()));
    assert_eq!(embedder.id(), "openai:text-embedding-3-small");
    let vectors = embedder.embed(&texts).await.expect("embed");
    assert_eq!(vectors[0], HashEmbedder::embed_one(&texts[0]), "answers are put back in input order");
    assert_eq!(vectors[1], HashEmbedder::embed_one(&texts[1]));

    let unauthorized = OpenAiEmbedder::new(&format!("{url}/v1"), "text-embedding-3-small", Some("wrong".into()));
    let err = unauthorized.embed(&texts).await.expect_err("401");
    assert!(matches!(err, EmbedError::Endpoint(ref m) if m.contains("401")), "{err}");
    assert_eq!(err.code(), ErrorCode::Upstream);

    let wide = embeddings_endpoint(1536).await;
    let err = OpenAiEmbedder::new(&wide, "text-embedding-3-small", Some("sk-test".into()))
        .embed(&texts)
        .await
        .expect_err("wrong width");
    assert!(matches!(err, EmbedError::Shape { dims: 1536, .. }), "{err}");
}

/// A real sshd on loopback that serves git to one generated client key.
struct SshServer {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl SshServer {
    fn start(sshd: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        for key in ["host_key", "client_key"] {
            let status = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path.join(key))
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        }
        std::fs::copy(path.join("client_key.pub"), path.join("authorized_keys")).expect("authorized_keys");
        // sshd's privilege separation directory, when it runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = devops_integration_tests::free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nPidFile {dir}/sshd.pid\n",
            dir = path.display()
        );
        std::fs::write(path.join("sshd_config"), config).expect("sshd_config");
        let child = std::process::Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(path.join("sshd_config"))
            .stderr(std::fs::File::create(path.join("sshd.log")).expect("log"))
            .spawn()
            .expect("start sshd");
        let server = Self { dir, port, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not start: {}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A known-hosts file naming this server's key (or `other`'s).
    fn known_hosts(&self, name: &str, key_of: &SshServer) -> PathBuf {
        let key = std::fs::read_to_string(key_of.file("host_key.pub")).expect("host key");
        let file = self.file(name);
        std::fs::write(&file, format!("127.0.0.1 {key}")).expect("known_hosts");
        file
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.file("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ssh URL is fetched over a real ssh connection with the configured
/// deploy key, and a host key that is not the known one is refused.
#[tokio::test]
async fn ssh_urls_fetch_with_the_deploy_key_and_verify_the_host_key() {
    let Some(sshd) = devops_integration_tests::service("DEVOPS_MCP_TEST_SSHD") else { return };
    let server = SshServer::start(&sshd);
    let impostor = SshServer::start(&sshd);
    let repo = Repo::new();
    seed(&repo);
    let user =
        String::from_utf8(std::process::Command::new("id").arg("-un").output().expect("id").stdout).expect("user name");
    let url = format!("ssh://{}@127.0.0.1:{}{}", user.trim(), server.port, repo.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let tenant = store.create_tenant(&devops_integration_tests::unique("ssh")).await.expect("tenant").id;
    let index_with = |known_hosts: PathBuf| {
        let mut index = index_for(store.clone(), &dir.path().join("cache"), dir.path(), Arc::new(HashEmbedder));
        index.policy = Arc::new(UrlPolicy { allowed_hosts: vec!["127.0.0.1".into()], allowed_local_paths: vec![] });
        let mut settings = (*index.settings).clone();
        settings.mirror.ssh_identity_file = Some(server.file("client_key"));
        settings.mirror.ssh_known_hosts_file = Some(known_hosts);
        index.settings = Arc::new(settings);
        index
    };

    let wrong_key = index_with(server.known_hosts("wrong_known_hosts", &impostor));
    let err = run(&wrong_key, tenant, &url).await.expect_err("an unknown host key is refused");
    assert_eq!(err.code(), ErrorCode::Upstream, "{err}");
    assert!(err.to_string().contains("Host key verification failed"), "{err}");

    let index = index_with(server.known_hosts("known_hosts", &server));
    let progress = run(&index, tenant, &url).await.unwrap_or_else(|err| panic!("{err}; sshd: {}", server.log()));
    assert_eq!(progress.commit, repo.head());
    let hits = search(&index, tenant, "verify_webhook_signature").await;
    assert_eq!(hits[0].path, "src/webhooks.rs", "{hits:?}");
    assert!(server.log().contains("Accepted publickey"), "{}", server.log());
}

/// A private repository over https: git's own `http-backend` behind TLS
/// (socat, with a throwaway CA), refusing requests without the token. The
/// indexer fetches it with the token of the tenant's connection, sent in
/// git's environment; nothing of it lands on disk.
#[tokio::test]
async fn private_https_repositories_fetch_with_the_connections_token() {
    let Some(socat) = devops_integration_tests::service("DEVOPS_MCP_TEST_SOCAT") else { return };
    let repo = Repo::new();
    seed(&repo);
    let server = GitHttpsServer::start(&socat, &repo, "glpat-private-token").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let tenant = store.create_tenant(&devops_integration_tests::unique("https")).await.expect("tenant").id;
    let stranger = store.create_tenant(&devops_integration_tests::unique("https-other")).await.expect("tenant").id;
    let mut config = devops_config::Config::default();
    config.indexer.allowed_hosts = vec!["localhost".into()];
    let secrets =
        devops_adapters::secrets::FileSecrets::open(dir.path().join("secrets"), Vec::new()).await.expect("secrets");
    let connections = devops_runtime::providers::connections(&config, &store, &secrets).await.expect("connections");
    let connection = devops_providers::NewConnection {
        name: "forge".into(),
        provider: devops_providers::ProviderKind::Gitlab,
        base_url: Some(format!("{}/api/v4", server.base)),
        web_url: Some(server.base.clone()),
        credentials: devops_providers::ConnectionCredentials::Token { token: "glpat-private-token".into() },
    };
    connections.create(tenant, &connection).await.expect("connection");
    let hosts = devops_runtime::providers::hosts(&config, &store, &secrets).await.expect("hosts");

    let mut index = index_for(store.clone(), &dir.path().join("cache"), dir.path(), Arc::new(HashEmbedder));
    index.policy = devops_runtime::providers::url_policy(&config);
    index.hosts = hosts;
    let mut settings = (*index.settings).clone();
    settings.mirror.ca_file = Some(server.ca_file());
    index.settings = Arc::new(settings);
    let url = format!("{}/acme/private.git", server.base);

    let refused = run(&index, stranger, &url).await.expect_err("no connection, no token");
    assert_eq!(refused.code(), ErrorCode::Upstream, "{refused}");
    let progress = run(&index, tenant, &url).await.unwrap_or_else(|err| panic!("{err}; server: {:?}", server.seen()));
    assert_eq!(progress.commit, repo.head());
    let hits = search(&index, tenant, "verify_webhook_signature").await;
    assert_eq!(hits[0].path, "src/webhooks.rs", "{hits:?}");
    let seen = server.seen();
    assert!(seen.iter().any(|(path, authorized)| path.ends_with("/info/refs") && *authorized), "{seen:?}");
    assert!(seen.iter().any(|(path, authorized)| path.ends_with("/info/refs") && !*authorized), "the stranger's try");
    let leaked = std::process::Command::new("grep")
        .args(["-rl", "glpat-private-token"])
        .arg(dir.path().join("cache"))
        .output()
        .expect("grep");
    assert!(leaked.stdout.is_empty(), "the token is on disk: {}", String::from_utf8_lossy(&leaked.stdout));
}

/// git's smart HTTP server (`git http-backend`, run as CGI) behind socat's
/// TLS, answering 401 to any request without `Basic oauth2:<token>`.
struct GitHttpsServer {
    base: String,
    dir: tempfile::TempDir,
    seen: Arc<Mutex<Vec<(String, bool)>>>,
    socat: std::process::Child,
}

impl Drop for GitHttpsServer {
    fn drop(&mut self) {
        let _ = self.socat.kill();
    }
}

impl GitHttpsServer {
    async fn start(socat: &str, repo: &Repo, token: &str) -> Self {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("git");
        std::fs::create_dir_all(root.join("acme")).expect("mkdir");
        let cloned = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(repo.work())
            .arg(root.join("acme/private.git"))
            .status()
            .expect("git clone");
        assert!(cloned.success());
        let openssl = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("openssl");
        assert!(openssl.status.success(), "{}", String::from_utf8_lossy(&openssl.stderr));

        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("oauth2:{token}")));
        let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
        let log = seen.clone();
        let handler = move |request: axum::extract::Request| {
            let (root, expected, log) = (root.clone(), expected.clone(), log.clone());
            async move { git_cgi(request, &root, &expected, &log).await }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(handler)).await });

        let port = devops_integration_tests::free_port();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let socat = std::process::Command::new(socat)
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:127.0.0.1:{plain}"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { base: format!("https://localhost:{port}"), dir, seen, socat }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn seen(&self) -> Vec<(String, bool)> {
        self.seen.lock().expect("seen").clone()
    }
}

/// One request through `git http-backend`.
async fn git_cgi(
    request: axum::extract::Request,
    root: &Path,
    expected: &str,
    seen: &Mutex<Vec<(String, bool)>>,
) -> axum::response::Response {
    use tokio::io::AsyncWriteExt;
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let authorized = header("authorization") == expected;
    seen.lock().expect("seen").push((parts.uri.path().to_owned(), authorized));
    if !authorized {
        return axum::response::Response::builder()
            .status(401)
            .header("www-authenticate", "Basic realm=\"git\"")
            .body(axum::body::Body::empty())
            .expect("response");
    }
    let body = axum::body::to_bytes(body, 64 << 20).await.expect("body");
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header("content-type"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git http-backend");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&body).await.expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("http-backend");
    let split = output.stdout.windows(4).position(|w| w == b"\r\n\r\n").expect("CGI headers");
    let (head, rest) = (String::from_utf8_lossy(&output.stdout[..split]).into_owned(), &output.stdout[split + 4..]);
    let mut response = axum::response::Response::builder();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.trim().split(' ').next().and_then(|c| c.parse().ok()).unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    response.body(axum::body::Body::from(rest.to_vec())).expect("response")
}

/// A PostgreSQL store on an empty database of its own, when a server is configured.
async fn unmigrated_postgres_store() -> Option<devops_store::PostgresStore> {
    let server = devops_integration_tests::postgres_url()?;
    let url = devops_integration_tests::fresh_postgres_database(&server).await;
    let options = devops_store::ConnectOptions { url, max_connections: 4, connect_timeout: Duration::from_secs(10) };
    Some(devops_store::PostgresStore::connect(&options).await.expect("connect"))
}

/// A migrated PostgreSQL store on a database of its own, when a server is configured.
async fn fresh_postgres_store() -> Option<devops_store::PostgresStore> {
    let store = unmigrated_postgres_store().await?;
    store.migrate().await.expect("migrate");
    Some(store)
}

/// A one-line Rust chunk whose content is also its search text and names its hash.
fn stored_chunk(path: &str, content: &str, embedding: Vec<f32>) -> devops_models::NewCodeChunk {
    devops_models::NewCodeChunk {
        path: path.into(),
        language: "rust".into(),
        symbol: String::new(),
        start_line: 1,
        end_line: 1,
        content_hash: format!("hash-{content}"),
        content: content.into(),
        search_text: content.into(),
        embedding,
    }
}

/// The unit vector along dimension `n`.
fn axis(n: usize) -> Vec<f32> {
    let mut vector = vec![0.0; devops_indexer::embed::DIMENSIONS];
    vector[n] = 1.0;
    vector
}

/// A query over the whole tenant, without identifiers or filters.
fn code_query(mode: SearchMode, embedding: Vec<f32>, terms: &[&str], limit: u32) -> devops_models::CodeQuery {
    devops_models::CodeQuery {
        embedder: HashEmbedder::ID.into(),
        embedding,
        terms: terms.iter().map(|&term| term.to_owned()).collect(),
        identifiers: vec![],
        limit,
        repositories: vec![],
        language: None,
        path_regex: None,
        mode,
    }
}

/// The content hashes the tenant holds vectors for, in order.
async fn vector_hashes(store: &devops_store::PostgresStore, tenant: TenantId) -> Vec<String> {
    sqlx::query_scalar("SELECT content_hash FROM code_vectors WHERE tenant_id = $1 ORDER BY content_hash")
        .bind(tenant.0)
        .fetch_all(store.pool())
        .await
        .expect("vectors")
}

/// Sorted paths of search hits.
fn sorted_paths(hits: Vec<devops_models::CodeHit>) -> Vec<String> {
    let mut paths: Vec<String> = hits.into_iter().map(|hit| hit.path).collect();
    paths.sort();
    paths
}

/// On a large index, a term most chunks hold is not required of full-text
/// candidates (PostgreSQL's statistics say how common it is), so a chunk
/// holding only the rare term is found; taking chunks that hold any term
/// would stop at the candidate bound and miss it.
#[tokio::test]
async fn postgres_full_text_does_not_require_common_terms() {
    let Some(store) = fresh_postgres_store().await else { return };
    let tenant = store.create_tenant("large-index").await.expect("tenant").id;
    let repository = store.register_repository(tenant, "file:///large", "large").await.expect("repository").id;

    // 10 500 chunks hold `boilerpl`; the last one alone holds `needl`.
    // Zero vectors stay out of the HNSW index, which keeps the insert quick; this search is lexical.
    let chunk = |n: usize, terms: &str| {
        stored_chunk(&format!("src/f{n}.rs"), terms, vec![0.0; devops_indexer::embed::DIMENSIONS])
    };
    let mut chunks: Vec<_> = (0..10_500).map(|n| chunk(n, &format!("boilerpl filler{n}"))).collect();
    chunks.push(chunk(10_500, "needl haystack"));
    let paths: Vec<String> = chunks.iter().map(|c| c.path.clone()).collect();
    let code = store.code();
    code.replace_files(tenant, repository, HashEmbedder::ID, &paths, &chunks).await.expect("insert");
    sqlx::query("ANALYZE code_chunks").execute(store.pool()).await.expect("analyze");

    let query =
        code_query(SearchMode::Lexical, vec![0.0; devops_indexer::embed::DIMENSIONS], &["boilerpl", "needl"], 5);
    let hits = code.search(tenant, &query).await.expect("search");
    assert_eq!(hits.first().map(|h| h.path.as_str()), Some("src/f10500.rs"), "{hits:?}");
}

/// On PostgreSQL, chunks with one content share one vector, in one graph
/// node: a vector search finds every copy under the filters, and the vector
/// goes with the last chunk that points to it, whichever way chunks go.
#[tokio::test]
async fn postgres_chunks_share_one_vector_per_content() {
    let Some(store) = fresh_postgres_store().await else { return };
    let tenant = store.create_tenant("shared-contents").await.expect("tenant").id;
    let upstream = store.register_repository(tenant, "file:///upstream", "upstream").await.expect("repository").id;
    let fork = store.register_repository(tenant, "file:///fork", "fork").await.expect("repository").id;

    let code = store.code();
    let upstream_chunks = [stored_chunk("src/sign.rs", "sign", axis(0)), stored_chunk("src/only.rs", "only", axis(1))];
    let upstream_paths: Vec<String> = upstream_chunks.iter().map(|c| c.path.clone()).collect();
    code.replace_files(tenant, upstream, HashEmbedder::ID, &upstream_paths, &upstream_chunks).await.expect("upstream");
    let fork_paths = vec!["lib/sign.rs".to_owned()];
    code.replace_files(tenant, fork, HashEmbedder::ID, &fork_paths, &[stored_chunk("lib/sign.rs", "sign", axis(0))])
        .await
        .expect("fork");
    assert_eq!(vector_hashes(&store, tenant).await, ["hash-only", "hash-sign"], "one vector per distinct content");

    let query = code_query(SearchMode::Vector, axis(0), &[], 2);
    let both = code.search(tenant, &query).await.expect("search");
    assert_eq!(sorted_paths(both), ["lib/sign.rs", "src/sign.rs"], "every copy of the nearest content");
    let in_fork_query = devops_models::CodeQuery { repositories: vec![fork], ..query };
    let in_fork = code.search(tenant, &in_fork_query).await.expect("filtered search");
    assert_eq!(in_fork.first().map(|hit| hit.path.as_str()), Some("lib/sign.rs"), "{in_fork:?}");

    // Upstream drops both files: the shared content keeps its vector for the fork.
    code.replace_files(tenant, upstream, HashEmbedder::ID, &upstream_paths, &[]).await.expect("delete files");
    assert_eq!(vector_hashes(&store, tenant).await, ["hash-sign"]);
    store.delete_repository(tenant, fork).await.expect("delete repository");
    assert!(vector_hashes(&store, tenant).await.is_empty(), "the last chunk took its vector with it");
}

/// A database indexed before `code_vectors` existed keeps its index through
/// the migration: each distinct content gets one vector, every chunk points
/// to it, and search, the embedding cache and vector release work on the
/// migrated rows as on new ones.
#[tokio::test]
async fn postgres_code_vectors_migration_keeps_an_existing_index() {
    use sqlx::migrate::Migrator;

    const CODE_VECTORS: i64 = 20261123000001;
    let Some(store) = unmigrated_postgres_store().await else { return };
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
    let mut before = Migrator::new(directory.as_path()).await.expect("migrations");
    assert!(before.version_exists(CODE_VECTORS), "the migration under test is in the source");
    before.migrations = before.iter().filter(|m| m.version < CODE_VECTORS).cloned().collect::<Vec<_>>().into();
    before.run(store.pool()).await.expect("migrate to the schema before code_vectors");

    let tenant = store.create_tenant("indexed-before").await.expect("tenant").id;
    let upstream = store.register_repository(tenant, "file:///upstream", "upstream").await.expect("repository").id;
    let fork = store.register_repository(tenant, "file:///fork", "fork").await.expect("repository").id;
    let as_pgvector = |vector: &[f32]| format!("[{}]", vector.iter().map(f32::to_string).collect::<Vec<_>>().join(","));
    // The old schema: every chunk holds its own embedding.
    for (repository, path, content, n) in
        [(upstream, "src/sign.rs", "sign", 0), (upstream, "src/only.rs", "only", 1), (fork, "lib/sign.rs", "sign", 0)]
    {
        sqlx::query(
            "INSERT INTO code_chunks (tenant_id, repository_id, path, language, symbol, start_line, end_line, \
             content_hash, content, search_text, embedder, embedding) \
             VALUES ($1, $2, $3, 'rust', '', 1, 1, $4, $5, $5, $6, $7::vector)",
        )
        .bind(tenant.0)
        .bind(repository)
        .bind(path)
        .bind(format!("hash-{content}"))
        .bind(content)
        .bind(HashEmbedder::ID)
        .bind(as_pgvector(&axis(n)))
        .execute(store.pool())
        .await
        .expect("chunk in the old schema");
    }

    store.migrate().await.expect("migrate to code_vectors");
    assert_eq!(vector_hashes(&store, tenant).await, ["hash-only", "hash-sign"], "one vector per distinct content");
    let embedding_column: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'code_chunks' AND column_name = 'embedding'",
    )
    .fetch_one(store.pool())
    .await
    .expect("columns");
    assert_eq!(embedding_column, 0, "chunks no longer carry their own vector");

    let code = store.code();
    let cached = code
        .embeddings_by_hash(tenant, HashEmbedder::ID, &["hash-sign".into(), "hash-gone".into()])
        .await
        .expect("embedding cache");
    assert_eq!(cached.len(), 1);
    assert_eq!(cached.get("hash-sign"), Some(&axis(0)), "the migrated vector is the stored embedding");
    let hits = code.search(tenant, &code_query(SearchMode::Vector, axis(0), &[], 2)).await.expect("search");
    assert_eq!(sorted_paths(hits), ["lib/sign.rs", "src/sign.rs"], "both copies of the nearest content");

    store.delete_repository(tenant, upstream).await.expect("delete upstream");
    assert_eq!(vector_hashes(&store, tenant).await, ["hash-sign"], "the fork still points to the shared vector");
}

/// The two orders in which a run reusing a vector can meet a run releasing
/// it. A run that locked the vector first keeps it: the release skips it
/// rather than wait. A run that comes second waits for the release, finds
/// the vector gone and stores it again. Neither blocks or fails.
#[tokio::test]
async fn postgres_vector_release_races_with_reuse() {
    let Some(store) = fresh_postgres_store().await else { return };
    let tenant = store.create_tenant("release-race").await.expect("tenant").id;
    let upstream = store.register_repository(tenant, "file:///upstream", "upstream").await.expect("repository").id;
    let fork = store.register_repository(tenant, "file:///fork", "fork").await.expect("repository").id;
    let chunk = |path: &str| stored_chunk(path, "shared", axis(0));
    let code = store.code();
    let upstream_path = vec!["src/shared.rs".to_owned()];

    // The reusing run locks the vector first, as `replace_files` does.
    code.replace_files(tenant, upstream, HashEmbedder::ID, &upstream_path, &[chunk("src/shared.rs")])
        .await
        .expect("upstream");
    let mut reuse = store.pool().begin().await.expect("begin");
    let locked: Vec<String> = sqlx::query_scalar(
        "SELECT content_hash FROM code_vectors WHERE tenant_id = $1 AND content_hash = 'hash-shared' FOR KEY SHARE",
    )
    .bind(tenant.0)
    .fetch_all(&mut *reuse)
    .await
    .expect("lock");
    assert_eq!(locked.len(), 1);
    tokio::time::timeout(
        Duration::from_secs(10),
        code.replace_files(tenant, upstream, HashEmbedder::ID, &upstream_path, &[]),
    )
    .await
    .expect("the release does not wait for the reusing run")
    .expect("upstream drops its last chunk of the content");
    assert_eq!(
        vector_hashes(&store, tenant).await,
        ["hash-shared"],
        "a locked vector is left to the run that locked it"
    );
    sqlx::query(
        "INSERT INTO code_chunks (tenant_id, repository_id, path, language, symbol, start_line, end_line, \
         content_hash, content, search_text, embedder) \
         VALUES ($1, $2, 'lib/shared.rs', 'rust', '', 1, 1, 'hash-shared', 'shared', 'shared', $3)",
    )
    .bind(tenant.0)
    .bind(fork)
    .bind(HashEmbedder::ID)
    .execute(&mut *reuse)
    .await
    .expect("the reusing run points its chunk to the kept vector");
    reuse.commit().await.expect("commit");

    // The releasing run deletes first; the reusing run waits for it.
    let mut release = store.pool().begin().await.expect("begin");
    sqlx::query("DELETE FROM code_chunks WHERE tenant_id = $1 AND repository_id = $2")
        .bind(tenant.0)
        .bind(fork)
        .execute(&mut *release)
        .await
        .expect("delete the last chunk");
    let reusing = {
        let code = store.code();
        let chunks = [chunk("src/shared.rs")];
        let paths = upstream_path.clone();
        tokio::spawn(async move { code.replace_files(tenant, upstream, HashEmbedder::ID, &paths, &chunks).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reusing.is_finished(), "the reusing run waits for the release to commit");
    release.commit().await.expect("commit the release");
    tokio::time::timeout(Duration::from_secs(10), reusing)
        .await
        .expect("the reusing run goes on once the release commits")
        .expect("task")
        .expect("the reusing run stores the vector again");
    assert_eq!(vector_hashes(&store, tenant).await, ["hash-shared"]);
    let hits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM code_chunks c JOIN code_vectors v USING (tenant_id, embedder, content_hash) \
         WHERE c.tenant_id = $1 AND c.repository_id = $2",
    )
    .bind(tenant.0)
    .bind(upstream)
    .fetch_one(store.pool())
    .await
    .expect("join");
    assert_eq!(hits, 1, "the new chunk has its vector");
}

/// The largest page of results a search may ask for stays within the
/// graph walk's bounds: pgvector refuses an `hnsw.ef_search` over 1 000 once
/// a connection has loaded it.
#[tokio::test]
async fn postgres_search_serves_the_largest_limit() {
    let Some(store) = fresh_postgres_store().await else { return };
    let tenant = store.create_tenant("large-pages").await.expect("tenant").id;
    let repository = store.register_repository(tenant, "file:///pages", "pages").await.expect("repository").id;
    let chunks: Vec<_> = (0..120)
        .map(|n| {
            let mut embedding = axis(n % devops_indexer::embed::DIMENSIONS);
            embedding[(n + 1) % devops_indexer::embed::DIMENSIONS] = 0.5;
            stored_chunk(&format!("src/f{n}.rs"), &format!("page f{n}"), embedding)
        })
        .collect();
    let paths: Vec<String> = chunks.iter().map(|c| c.path.clone()).collect();
    let code = store.code();
    code.replace_files(tenant, repository, HashEmbedder::ID, &paths, &chunks).await.expect("chunks");
    let query = code_query(SearchMode::Hybrid, chunks[0].embedding.clone(), &["page"], 100);
    // Again on connections that have run a vector query, where pgvector
    // checks the setting.
    for _ in 0..6 {
        let hits = code.search(tenant, &query).await.expect("a page of 100");
        assert_eq!(hits.len(), 100);
    }
}
