//! Pull requests on the local-git host and reviews of them, on both stores:
//! a real bare repository, change sets committed without a work tree,
//! merges by every method, and reviews posted once per finding.

use std::sync::Arc;

use devops_errors::{ErrorCode, HasErrorCode};
use devops_git::{LocalRepository, Signature, TreeEdit, UrlPolicy};
use devops_models::{
    ChangeSet, FileChange, FileChangeKind, FindingCategory, MergeMethod, PullRequestState, ReviewStatus, Severity,
};
use devops_providers::{CloudProvider, Hosts, LocalGitHost};
use devops_reviewer::analysis::Analyzer;
use devops_reviewer::review::Reviews;
use devops_store::Store;

macro_rules! review_suite {
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

review_suite!(
    a_change_set_becomes_a_branch_a_commit_and_a_pull_request,
    merges_by_every_method_and_reports_conflicts,
    a_review_lands_once_per_finding_and_re_reviews_edit_the_summary,
);

/// A bare repository (the "remote"), seeded with one commit on main.
pub struct Remote {
    pub root: tempfile::TempDir,
}

impl Remote {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("seed");
        std::fs::create_dir_all(work.join("app")).expect("mkdir");
        std::fs::write(work.join("app/db.py"), "import os\n\n\ndef connect():\n    return open_connection()\n")
            .expect("write");
        std::fs::write(work.join("README.md"), "# Service\n").expect("write");
        git(&work, &["init", "-q"]);
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "seed"]);
        git(root.path(), &["clone", "-q", "--bare", "seed", "remote.git"]);
        Self { root }
    }

    pub fn url(&self) -> String {
        self.root.path().join("remote.git").to_string_lossy().into_owned()
    }

    pub fn show(&self, spec: &str) -> String {
        git(&self.root.path().join("remote.git"), &["show", spec])
    }
}

pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn host(store: &dyn Store, remote: &Remote) -> LocalGitHost {
    let policy = UrlPolicy { allowed_hosts: vec![], allowed_local_paths: vec![remote.root.path().to_path_buf()] };
    LocalGitHost::new(store, Arc::new(policy))
}

pub fn file(kind: FileChangeKind, path: &str, content: &str) -> FileChange {
    FileChange { kind, path: path.into(), content: content.as_bytes().to_vec() }
}

/// The change the acceptance flow plants: an AWS key and SQL built by concatenation.
pub fn risky_change() -> ChangeSet {
    ChangeSet {
        base_ref: String::new(),
        message: "Look users up by name".into(),
        files: vec![file(
            FileChangeKind::Modify,
            "app/db.py",
            "import os\n\nAWS_ACCESS_KEY_ID = \"AKIAQ3EGUVWXF4ZN7KPD\"\n\n\ndef connect():\n    return open_connection()\n\n\n\
             def find_user(cursor, name):\n    return cursor.execute(\"SELECT * FROM users WHERE name = '\" + name + \"'\")\n",
        )],
    }
}

async fn a_change_set_becomes_a_branch_a_commit_and_a_pull_request(store: Arc<dyn Store>) {
    let remote = Remote::new();
    let host = host(store.as_ref(), &remote);
    let tenant = store.create_tenant(&devops_integration_tests::unique("prs")).await.expect("tenant").id;
    let other = store.create_tenant(&devops_integration_tests::unique("prs")).await.expect("tenant").id;
    let changes = ChangeSet {
        base_ref: "main".into(),
        message: "Add a health check".into(),
        files: vec![
            file(FileChangeKind::Add, "app/health.py", "def health():\n    return 'ok'\n"),
            file(FileChangeKind::Delete, "README.md", ""),
        ],
    };
    let pr =
        host.create_pull_request(tenant, &remote.url(), "Add a health check", "Body", &changes).await.expect("create");
    assert_eq!((pr.number, pr.state, pr.target_branch.as_str()), (1, PullRequestState::Open, "main"));
    assert!(pr.source_branch.starts_with("devops-mcp/add-a-health-check-"), "{}", pr.source_branch);
    assert_eq!(remote.show(&format!("{}:app/health.py", pr.source_branch)), "def health():\n    return 'ok'");
    assert_eq!(remote.show(&pr.head_sha).lines().nth(4).map(str::trim), Some("Add a health check"));
    let diff = host.diff(tenant, &remote.url(), 1).await.expect("diff");
    assert!(diff.contains("+++ b/app/health.py") && diff.contains("deleted file mode"), "{diff}");

    let second = host.create_pull_request(tenant, &remote.url(), "Second", "", &changes).await.expect("create");
    assert_eq!(second.number, 2, "numbers count per repository");
    let listed =
        host.list_pull_requests(tenant, &remote.url(), Some(PullRequestState::Open), None, 10).await.expect("list");
    assert_eq!(listed.iter().map(|p| p.number).collect::<Vec<_>>(), [2, 1]);

    let closed = host
        .update_pull_request(
            tenant,
            &remote.url(),
            2,
            &devops_models::PullRequestUpdate { state: Some(PullRequestState::Closed), ..Default::default() },
        )
        .await
        .expect("close");
    assert_eq!(closed.state, PullRequestState::Closed);

    for bad in [
        ChangeSet { files: vec![], ..changes.clone() },
        ChangeSet { files: vec![file(FileChangeKind::Add, "../escape", "x")], ..changes.clone() },
        ChangeSet { files: vec![file(FileChangeKind::Add, ".git/config", "x")], ..changes.clone() },
        ChangeSet { base_ref: "no-such-branch".into(), ..changes.clone() },
    ] {
        let err = host.create_pull_request(tenant, &remote.url(), "Bad", "", &bad).await.expect_err("refused");
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    }
    let outside = host.create_pull_request(tenant, "/etc", "Bad", "", &changes).await.expect_err("not allowed");
    assert_eq!(outside.code(), ErrorCode::UrlNotAllowed);
    let err = host.get_pull_request(other, &remote.url(), 1).await.expect_err("another tenant's");
    assert_eq!(err.code(), ErrorCode::NotFound);
    let hosted = Hosts::new(host).for_repository(tenant, "https://github.com/acme/api.git").await.err();
    assert_eq!(hosted.expect("no connections configured").code(), ErrorCode::NotImplemented);
}

async fn merges_by_every_method_and_reports_conflicts(store: Arc<dyn Store>) {
    let remote = Remote::new();
    let host = host(store.as_ref(), &remote);
    let tenant = store.create_tenant(&devops_integration_tests::unique("merge")).await.expect("tenant").id;
    let url = remote.url();
    let change = |path: &str, content: &str| ChangeSet {
        base_ref: String::new(),
        message: format!("Change {path}"),
        files: vec![file(FileChangeKind::Modify, path, content)],
    };
    let a = host.create_pull_request(tenant, &url, "A", "", &change("README.md", "# A\n")).await.expect("a");
    let b = host.create_pull_request(tenant, &url, "B", "", &change("README.md", "# B\n")).await.expect("b");
    let c = host.create_pull_request(tenant, &url, "C", "", &change("app/c.py", "c = 1\n")).await.expect("c");
    let d = host.create_pull_request(tenant, &url, "D", "", &change("app/d.py", "d = 1\n")).await.expect("d");

    let merged = host.merge_pull_request(tenant, &url, a.number, MergeMethod::Merge).await.expect("merge");
    assert!(merged.merged);
    let merge_commit = merged.merge_commit.expect("commit");
    assert_eq!(
        git(&remote.root.path().join("remote.git"), &["rev-list", "--parents", "-1", &merge_commit]).split(' ').count(),
        3
    );
    assert_eq!(remote.show("main:README.md"), "# A");

    let conflict = host.merge_pull_request(tenant, &url, b.number, MergeMethod::Merge).await.expect("attempt");
    assert_eq!((conflict.merged, conflict.conflicts.as_slice()), (false, &["README.md".to_owned()][..]));
    assert_eq!(remote.show("main:README.md"), "# A", "a conflict changes nothing");

    let squashed = host.merge_pull_request(tenant, &url, c.number, MergeMethod::Squash).await.expect("squash");
    let squash_commit = squashed.merge_commit.expect("commit");
    assert_eq!(
        git(&remote.root.path().join("remote.git"), &["rev-list", "--parents", "-1", &squash_commit])
            .split(' ')
            .count(),
        2
    );
    let rebased = host.merge_pull_request(tenant, &url, d.number, MergeMethod::Rebase).await.expect("rebase");
    assert!(rebased.merged);
    assert_eq!(remote.show("main:app/c.py"), "c = 1");
    assert_eq!(remote.show("main:app/d.py"), "d = 1");
    assert_eq!(git(&remote.root.path().join("remote.git"), &["log", "-1", "--format=%s", "main"]), "Change app/d.py");

    let again = host.merge_pull_request(tenant, &url, a.number, MergeMethod::Merge).await.expect_err("merged already");
    assert_eq!(again.code(), ErrorCode::Conflict);
    let state = host.get_pull_request(tenant, &url, a.number).await.expect("get").state;
    assert_eq!(state, PullRequestState::Merged);
}

async fn a_review_lands_once_per_finding_and_re_reviews_edit_the_summary(store: Arc<dyn Store>) {
    let remote = Remote::new();
    let tenant = store.create_tenant(&devops_integration_tests::unique("review")).await.expect("tenant").id;
    let url = remote.url();
    let local = host(store.as_ref(), &remote);
    let pr = local.create_pull_request(tenant, &url, "Find users", "", &risky_change()).await.expect("create");
    let reviews = Reviews {
        analyzer: Analyzer::default(),
        hosts: Hosts::new(host(store.as_ref(), &remote)),
        store: store.pull_requests(),
        max_inline_comments: 10,
        max_diff_bytes: 1 << 20,
        llm: None,
    };

    let first = reviews.review(tenant, &url, pr.number, true).await.expect("review");
    assert_eq!(first.status, ReviewStatus::Posted);
    let found: Vec<(&str, &str, u32, Severity)> =
        first.findings.iter().map(|f| (f.rule.as_str(), f.file.as_str(), f.line, f.severity)).collect();
    assert!(found.contains(&("aws-access-key-id", "app/db.py", 3, Severity::Critical)), "{found:?}");
    assert!(found.contains(&("sql-string-building", "app/db.py", 11, Severity::High)), "{found:?}");
    let secret = first.findings.iter().find(|f| f.category == FindingCategory::Secret).expect("secret");
    assert!(!secret.message.contains("AKIAQ3EGUVWXF4ZN7KPD"), "{}", secret.message);
    assert!(first.scores.security < 50.0, "{:?}", first.scores);

    let prs = store.pull_requests();
    let comments = prs.list_comments(tenant, pr.id, devops_store::Page::first(100)).await.expect("comments");
    let inline: Vec<(Option<&str>, Option<u32>)> =
        comments.iter().filter(|c| c.path.is_some()).map(|c| (c.path.as_deref(), c.line)).collect();
    assert!(
        inline.contains(&(Some("app/db.py"), Some(3))) && inline.contains(&(Some("app/db.py"), Some(11))),
        "{inline:?}"
    );
    assert!(comments.iter().all(|c| !c.body.contains("AKIAQ3EGUVWXF4ZN7KPD")), "nothing posted holds the key");
    let summary = comments.iter().find(|c| c.path.is_none()).expect("summary");
    assert!(summary.body.contains("devops-mcp:review") && summary.body.contains("Security"), "{}", summary.body);

    // The same revision again (a duplicate delivery): no new comment.
    let again = reviews.review(tenant, &url, pr.number, true).await.expect("again");
    assert_eq!(again.summary_comment_id, first.summary_comment_id);
    let after = prs.list_comments(tenant, pr.id, devops_store::Page::first(100)).await.expect("comments");
    assert_eq!(after.len(), comments.len(), "nothing duplicated");

    // A push to the pull request's branch: only the new finding is commented.
    let repo = LocalRepository::open(&remote.root.path().join("remote.git")).await.expect("open");
    let head = repo.resolve(&pr.source_branch).await.expect("head");
    let edit = TreeEdit {
        path: "app/tls.py".into(),
        content: Some(b"import requests\n\ndef fetch(url):\n    return requests.get(url, verify=False)\n".to_vec()),
    };
    let signature = Signature { name: "t".into(), email: "t@example.com".into() };
    let pushed = repo.commit_edits(&head, &[edit], "Fetch", &signature).await.expect("commit");
    repo.move_branch(&pr.source_branch, &pushed, &head).await.expect("push");
    let third = reviews.review(tenant, &url, pr.number, true).await.expect("re-review");
    assert_eq!(third.head_sha, pushed);
    assert_eq!(third.summary_comment_id, first.summary_comment_id, "the summary is edited, not duplicated");
    let latest = prs.list_comments(tenant, pr.id, devops_store::Page::first(100)).await.expect("comments");
    assert_eq!(latest.len(), comments.len() + 1, "one new inline comment");
    assert_eq!(latest.last().and_then(|c| c.path.as_deref()), Some("app/tls.py"));
    let stored = prs.get_review(tenant, third.id).await.expect("stored");
    assert_eq!(stored, third);
    assert!(
        prs.latest_review(tenant, &pr.repository_url, pr.number)
            .await
            .expect("latest")
            .is_some_and(|r| r.id == third.id)
    );
}

/// An OpenAI-compatible chat endpoint following the API's shape (no real
/// one runs here): it answers after `delay` with fixed findings, one on a
/// line the diff shows, one on a line it does not, one on another file, and
/// one that echoes the planted key.
async fn chat_endpoint(delay: std::time::Duration) -> String {
    use axum::Json;
    use serde_json::{Value, json};
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |Json(body): Json<Value>| async move {
            tokio::time::sleep(delay).await;
            assert_eq!(body["model"], "reviewer-model");
            assert_eq!(body["response_format"]["type"], "json_object");
            let diff = body["messages"][1]["content"].as_str().unwrap_or_default();
            assert!(diff.len() <= 4096, "the diff budget is honoured");
            let findings = json!({"findings": [
                {"file": "app/db.py", "line": 11, "severity": "high", "message": "find_user returns a cursor, not a user", "suggestion": "fetch one row"},
                {"file": "app/db.py", "line": 500, "severity": "medium", "message": "connection is never closed", "suggestion": "use a context manager"},
                {"file": "elsewhere.py", "line": 1, "severity": "high", "message": "not in this diff", "suggestion": ""},
                {"file": "app/db.py", "line": 3, "severity": "high", "message": "key AKIAQ3EGUVWXF4ZN7KPD is hard-coded", "suggestion": ""},
            ]});
            Json(json!({"choices": [{"message": {"role": "assistant", "content": findings.to_string()}}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The optional LLM pass adds findings; the post keeps at most N inline
/// comments, moves the rest — and anything on a line the diff does not show —
/// to the summary, and never lets a secret through. A slow endpoint is
/// skipped, not fatal.
#[tokio::test]
async fn llm_findings_and_the_inline_cap_fall_back_to_the_summary() {
    use devops_reviewer::llm::LlmReviewer;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = devops_integration_tests::sqlite_store(dir.path()).await;
    let remote = Remote::new();
    let tenant = store.create_tenant("llm").await.expect("tenant").id;
    let url = remote.url();
    let local = host(store.as_ref(), &remote);
    let pr = local.create_pull_request(tenant, &url, "Find users", "", &risky_change()).await.expect("create");
    let reviews = |llm: LlmReviewer, max_inline_comments: usize| Reviews {
        analyzer: Analyzer::default(),
        hosts: Hosts::new(host(store.as_ref(), &remote)),
        store: store.pull_requests(),
        max_inline_comments,
        max_diff_bytes: 1 << 20,
        llm: Some(llm),
    };
    let timeout = std::time::Duration::from_secs(2);
    let fast =
        LlmReviewer::new(&chat_endpoint(std::time::Duration::ZERO).await, "reviewer-model", None, timeout, 4096, 500)
            .expect("client");
    let review = reviews(fast, 2).review(tenant, &url, pr.number, true).await.expect("review");
    let llm: Vec<(u32, &str)> =
        review.findings.iter().filter(|f| f.rule == "llm-review").map(|f| (f.line, f.message.as_str())).collect();
    assert_eq!(llm.len(), 3, "the finding on a file outside the diff is dropped: {llm:?}");
    assert!(llm.iter().all(|(_, m)| !m.contains("AKIAQ3EGUVWXF4ZN7KPD")), "{llm:?}");

    let comments =
        store.pull_requests().list_comments(tenant, pr.id, devops_store::Page::first(100)).await.expect("comments");
    let inline: Vec<u32> = comments.iter().filter_map(|c| c.line).collect();
    assert_eq!(inline.len(), 2, "at most N inline comments: {inline:?}");
    assert!(inline.contains(&3) && inline.contains(&11), "the two worst findings: {inline:?}");
    let summary = comments.iter().find(|c| c.path.is_none()).expect("summary");
    assert!(summary.body.contains("`app/db.py:500`"), "a line outside the diff goes to the summary: {}", summary.body);
    assert!(summary.body.contains("find_user returns a cursor"), "{}", summary.body);
    assert!(comments.iter().all(|c| !c.body.contains("AKIAQ3EGUVWXF4ZN7KPD")));

    let slow = LlmReviewer::new(
        &chat_endpoint(std::time::Duration::from_secs(5)).await,
        "reviewer-model",
        None,
        timeout,
        4096,
        500,
    )
    .expect("client");
    let started = std::time::Instant::now();
    let without = reviews(slow, 10).review(tenant, &url, pr.number, false).await.expect("review without the LLM");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the timeout bounds the pass");
    assert!(without.findings.iter().all(|f| f.rule != "llm-review"));
    assert!(without.findings.iter().any(|f| f.rule == "aws-access-key-id"), "the other analysers still ran");
}
