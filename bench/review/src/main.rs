//! Reviewer benchmarks.
//!
//! `secrets`: builds an injected corpus from real open-source files (the
//! crates.io sources on this machine: Rust code, Markdown, YAML, JSON; plus
//! generated `.env` and Terraform files, which that corpus lacks), plants
//! realistic-format random secrets and hard non-secrets one per line, and
//! scores our scanner — and `detect-secrets`, when given — by line:
//! precision, recall and F1 per file format, recall per secret kind, and
//! false positives per kind of look-alike.
//!
//! `cost`: milliseconds of analysis per 1,000 added lines of real code.
//!
//! `worker`: the worker's own time per event (idempotency check, key lock,
//! processed record, acknowledgement) around a handler that does nothing,
//! on the embedded queue and store.
//!
//! `webhook`: against a running fleet (`devops-mcp up`), the time from a
//! signed GitHub delivery to the review posted on a local pull request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use devops_reviewer::analysis::Analyzer;
use devops_reviewer::secrets::SecretScanner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Secrets {
        /// The open-source tree to draw host files from.
        source: PathBuf,
        /// Host files per format.
        #[arg(long, default_value_t = 120)]
        files_per_format: usize,
        /// Lines planted per file (half secrets, half look-alikes).
        #[arg(long, default_value_t = 4)]
        plants: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// A `detect-secrets` executable to score side by side.
        #[arg(long)]
        detect_secrets: Option<PathBuf>,
        /// Keep the corpus here instead of a temporary directory.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// List our false positives (to study them).
        #[arg(long)]
        show_false_positives: bool,
    },
    Worker {
        /// Events to process.
        #[arg(long, default_value_t = 2000)]
        events: usize,
    },
    Webhook {
        /// The REST API of a running fleet.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        rest: String,
        /// An API key with admin and write scopes.
        #[arg(long, env = "DEVOPS_MCP_KEY")]
        key: String,
        /// A bare repository under the fleet's `indexer.allowed_local_paths`.
        #[arg(long)]
        repository: PathBuf,
        #[arg(long, default_value_t = 30)]
        deliveries: usize,
    },
    Cost {
        source: PathBuf,
        /// Added lines in the diff.
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Format {
    Code,
    Yaml,
    Json,
    Env,
    Terraform,
    Markdown,
}

impl Format {
    const ALL: [Format; 6] =
        [Format::Code, Format::Yaml, Format::Json, Format::Env, Format::Terraform, Format::Markdown];

    fn name(self) -> &'static str {
        match self {
            Format::Code => "code (Rust)",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Env => ".env",
            Format::Terraform => "Terraform",
            Format::Markdown => "Markdown",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Code => "rs",
            Format::Yaml => "yml",
            Format::Json => "json",
            Format::Env => "env",
            Format::Terraform => "tf",
            Format::Markdown => "md",
        }
    }

    /// One assignment of `value` to `name`, in this format's syntax.
    fn assign(self, name: &str, value: &str) -> String {
        match self {
            Format::Code => format!("    let {} = \"{value}\";", name.to_ascii_lowercase()),
            Format::Yaml => format!("{}: \"{value}\"", name.to_ascii_lowercase()),
            Format::Json => format!("  \"{}\": \"{value}\",", lower_camel(name)),
            Format::Env => format!("{}={value}", name.to_ascii_uppercase()),
            Format::Terraform => format!("  {} = \"{value}\"", name.to_ascii_lowercase()),
            Format::Markdown => format!("export {}=\"{value}\"", name.to_ascii_uppercase()),
        }
    }
}

fn lower_camel(name: &str) -> String {
    let mut out = String::new();
    for (i, part) in name.split('_').enumerate() {
        let part = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&part);
        } else {
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
        }
    }
    out
}

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

fn base64url(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A realistic-format random secret: (kind, assignment name, value).
fn secret(rng: &mut StdRng) -> (&'static str, &'static str, String) {
    let upper32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    match rng.random_range(0..12) {
        0 => ("aws-access-key", "aws_access_key_id", format!("AKIA{}", random(rng, upper32, 16))),
        1 => ("aws-secret-key", "aws_secret_access_key", random(rng, b64, 40)),
        2 => ("github-token", "github_token", format!("ghp_{}", random(rng, BASE62, 36))),
        3 => ("gitlab-token", "gitlab_token", format!("glpat-{}", random(rng, BASE62, 20))),
        4 => (
            "slack-token",
            "slack_bot_token",
            format!(
                "xoxb-{}-{}-{}",
                random(rng, b"0123456789", 11),
                random(rng, b"0123456789", 12),
                random(rng, BASE62, 24)
            ),
        ),
        5 => ("stripe-key", "stripe_secret_key", format!("sk_live_{}", random(rng, BASE62, 24))),
        6 => (
            "google-api-key",
            "maps_api_key",
            format!("AIza{}", random(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", 35)),
        ),
        7 => {
            let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
            let payload = base64url(
                format!(
                    r#"{{"sub":"svc-{}","exp":{}}}"#,
                    random(rng, BASE62, 6),
                    rng.random_range(1_800_000_000u64..1_900_000_000)
                )
                .as_bytes(),
            );
            ("jwt", "session_token", format!("{header}.{payload}.{}", random(rng, BASE62, 43)))
        }
        8 => (
            "url-credentials",
            "database_url",
            format!(
                "postgres://app:{}@db-{}.internal:5432/app",
                random(rng, BASE62, 16),
                random(rng, b"abcdefghij", 4)
            ),
        ),
        9 => {
            let symbols = b"!#%^*-_+=";
            let mut password = random(rng, BASE62, 11);
            let at = rng.random_range(0..password.len());
            password.insert(at, symbols[rng.random_range(0..symbols.len())] as char);
            password.push(char::from(b'0' + rng.random_range(0..10u8)));
            ("password", "db_password", password)
        }
        10 => ("generic-api-key", "payments_api_key", random(rng, BASE62, 32)),
        _ => {
            ("sendgrid-key", "sendgrid_api_key", format!("SG.{}.{}", random(rng, BASE62, 22), random(rng, BASE62, 43)))
        }
    }
}

/// A hard non-secret: (kind, assignment name, value).
fn look_alike(rng: &mut StdRng) -> (&'static str, &'static str, String) {
    let hex = b"0123456789abcdef";
    match rng.random_range(0..12) {
        0 => ("documented-aws-example", "aws_access_key_id", "AKIAIOSFODNN7EXAMPLE".into()),
        1 => ("documented-aws-example", "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        2 => ("documented-stripe-example", "stripe_secret_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc".into()),
        3 => ("placeholder", "api_key", ["<your-api-key>", "changeme", "xxxxxxxxxxxxxxxxxxxx", "YOUR_TOKEN_HERE", "replace-me"][rng.random_range(0..5)].into()),
        4 => ("reference", "db_password", ["${DB_PASSWORD}", "{{ .Values.db.password }}", "$(cat /run/secrets/db)", "%(password)s"][rng.random_range(0..4)].into()),
        5 => {
            let uuid = format!(
                "{}-{}-4{}-a{}-{}",
                random(rng, hex, 8),
                random(rng, hex, 4),
                random(rng, hex, 3),
                random(rng, hex, 3),
                random(rng, hex, 12)
            );
            ("uuid", "request_id", uuid)
        }
        6 => ("hash", "commit_sha", random(rng, hex, 40)),
        7 => ("hash", "sha256_checksum", random(rng, hex, 64)),
        8 => ("lockfile-integrity", "integrity", format!("sha512-{}==", random(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 86))),
        9 => ("public-value", "public_key", format!("pk_live_{}", random(rng, BASE62, 24))),
        10 => ("url-without-credentials", "database_url", format!("postgres://db-{}.internal:5432/app", random(rng, b"abcdefghij", 4))),
        _ => ("documented-jwt-example", "session_token", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c".into()),
    }
}

/// Host files of a format from the real tree, or generated where it has none.
fn host_files(source: &Path, format: Format, count: usize, rng: &mut StdRng) -> Result<Vec<String>> {
    let wanted: &[&str] = match format {
        Format::Code => &["rs"],
        Format::Yaml => &["yml", "yaml"],
        Format::Json => &["json"],
        Format::Markdown => &["md"],
        Format::Env | Format::Terraform => &[],
    };
    let mut found = Vec::new();
    if !wanted.is_empty() {
        let mut stack = vec![source.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for path in entries {
                let name = path.to_string_lossy();
                // Test fixtures of secret scanners and crypto crates hold real-looking keys on purpose.
                if name.contains("/tests/") || name.contains("/test/") || name.contains("testdata") {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| wanted.iter().any(|w| e == *w))
                    && std::fs::metadata(&path).is_ok_and(|m| m.len() < 32 * 1024)
                    && let Ok(text) = std::fs::read_to_string(&path)
                    && text.lines().count() >= 5
                {
                    found.push(text);
                }
            }
        }
        // Spread the sample over the whole tree, not its first crates.
        let step = (found.len() / count.max(1)).max(1);
        return Ok(found.into_iter().step_by(step).take(count).collect());
    }
    Ok((0..count)
        .map(|n| match format {
            Format::Env => format!(
                "# service {n}\nAPP_ENV=production\nLOG_LEVEL=info\nPORT={}\nWORKERS={}\nFEATURE_FLAGS=search,reviews\nTZ=UTC\n",
                8000 + n,
                rng.random_range(1..16)
            ),
            _ => format!(
                "terraform {{\n  required_version = \">= 1.5\"\n}}\n\nprovider \"aws\" {{\n  region = \"eu-west-{}\"\n}}\n\n\
                 resource \"aws_db_instance\" \"db{n}\" {{\n  engine         = \"postgres\"\n  instance_class = \"db.t3.micro\"\n  \
                 allocated_storage = {}\n}}\n",
                1 + n % 3,
                20 + n % 50
            ),
        })
        .collect())
}

/// Ground truth of one corpus file: planted lines, with their kinds.
struct Planted {
    path: String,
    format: Format,
    secrets: BTreeMap<u32, &'static str>,
    look_alikes: BTreeMap<u32, &'static str>,
}

fn build_corpus(source: &Path, dir: &Path, per_format: usize, plants: usize, seed: u64) -> Result<Vec<Planted>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut planted = Vec::new();
    for format in Format::ALL {
        for (n, host) in host_files(source, format, per_format, &mut rng)?.into_iter().enumerate() {
            let mut lines: Vec<String> = host.lines().map(str::to_owned).collect();
            let mut kinds: Vec<(bool, &'static str, String)> = Vec::new();
            for i in 0..plants {
                let (kind, name, value) = if i % 2 == 0 { secret(&mut rng) } else { look_alike(&mut rng) };
                kinds.push((i % 2 == 0, kind, format.assign(name, &value)));
            }
            // Insert bottom-up at distinct positions so recorded numbers hold.
            let mut positions: BTreeSet<usize> = BTreeSet::new();
            while positions.len() < kinds.len() {
                positions.insert(rng.random_range(0..=lines.len()));
            }
            let mut file = Planted {
                path: format!("{}/file{n:04}.{}", format.extension(), format.extension()),
                format,
                secrets: BTreeMap::new(),
                look_alikes: BTreeMap::new(),
            };
            let positions: Vec<usize> = positions.into_iter().collect();
            for (offset, (&at, (is_secret, kind, line))) in positions.iter().zip(kinds).enumerate() {
                lines.insert(at + offset, line);
                let number = u32::try_from(at + offset + 1)?;
                if is_secret {
                    file.secrets.insert(number, kind);
                } else {
                    file.look_alikes.insert(number, kind);
                }
            }
            let full = dir.join(&file.path);
            std::fs::create_dir_all(full.parent().context("parent")?)?;
            std::fs::write(&full, lines.join("\n") + "\n")?;
            planted.push(file);
        }
    }
    Ok(planted)
}

/// Reported lines per corpus path.
type Reports = BTreeMap<String, BTreeSet<u32>>;

fn scan_ours(dir: &Path, corpus: &[Planted]) -> Result<(Reports, f64)> {
    let scanner = SecretScanner::default();
    let mut reports = Reports::new();
    let started = Instant::now();
    for file in corpus {
        let text = std::fs::read_to_string(dir.join(&file.path))?;
        let lines = reports.entry(file.path.clone()).or_default();
        for (index, line) in text.lines().enumerate() {
            if !scanner.scan_line(&file.path, line).is_empty() {
                lines.insert(u32::try_from(index + 1)?);
            }
        }
    }
    Ok((reports, started.elapsed().as_secs_f64()))
}

fn scan_detect_secrets(bin: &Path, dir: &Path) -> Result<(Reports, f64)> {
    let started = Instant::now();
    let out = std::process::Command::new(bin).current_dir(dir).args(["scan", "--all-files", "."]).output()?;
    anyhow::ensure!(out.status.success(), "detect-secrets failed: {}", String::from_utf8_lossy(&out.stderr));
    let elapsed = started.elapsed().as_secs_f64();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut reports = Reports::new();
    for (path, findings) in json["results"].as_object().into_iter().flatten() {
        let lines = reports.entry(path.trim_start_matches("./").to_owned()).or_default();
        for finding in findings.as_array().into_iter().flatten() {
            if let Some(line) = finding["line_number"].as_u64() {
                lines.insert(u32::try_from(line)?);
            }
        }
    }
    Ok((reports, elapsed))
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn scores(self) -> (f64, f64, f64) {
        let precision = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let recall = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        (precision, recall, f1)
    }
}

fn score(tool: &str, corpus: &[Planted], reports: &Reports, seconds: f64) {
    let mut by_format: BTreeMap<Format, Counts> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut false_positives: BTreeMap<&str, u64> = BTreeMap::new();
    let empty = BTreeSet::new();
    for file in corpus {
        let reported = reports.get(&file.path).unwrap_or(&empty);
        let counts = by_format.entry(file.format).or_default();
        for (line, kind) in &file.secrets {
            let found = reported.contains(line);
            let entry = by_kind.entry(kind).or_default();
            entry.1 += 1;
            if found {
                counts.tp += 1;
                entry.0 += 1;
            } else {
                counts.fn_ += 1;
            }
        }
        for line in reported.iter().filter(|l| !file.secrets.contains_key(l)) {
            counts.fp += 1;
            *false_positives.entry(file.look_alikes.get(line).copied().unwrap_or("host file line")).or_default() += 1;
        }
    }
    let total = by_format.values().fold(Counts::default(), |a, c| Counts {
        tp: a.tp + c.tp,
        fp: a.fp + c.fp,
        fn_: a.fn_ + c.fn_,
    });
    for (format, counts) in by_format.iter().map(|(f, c)| (f.name(), *c)).chain([("all", total)]) {
        let (p, r, f1) = counts.scores();
        println!(
            "{}",
            serde_json::json!({"bench": "secrets", "tool": tool, "format": format, "tp": counts.tp, "fp": counts.fp,
                "fn": counts.fn_, "precision": p, "recall": r, "f1": f1})
        );
        eprintln!(
            "{tool:>15} {format:<12} P {p:.3}  R {r:.3}  F1 {f1:.3}  (tp {} fp {} fn {})",
            counts.tp, counts.fp, counts.fn_
        );
    }
    for (kind, (found, planted)) in &by_kind {
        println!(
            "{}",
            serde_json::json!({"bench": "secrets_recall", "tool": tool, "kind": kind, "found": found, "planted": planted})
        );
        eprintln!("{tool:>15} recall {kind:<18} {found}/{planted}");
    }
    for (kind, n) in &false_positives {
        println!("{}", serde_json::json!({"bench": "secrets_fp", "tool": tool, "kind": kind, "false_positives": n}));
        eprintln!("{tool:>15} false positives on {kind}: {n}");
    }
    println!("{}", serde_json::json!({"bench": "secrets_time", "tool": tool, "seconds": seconds}));
    eprintln!("{tool:>15} scan time {seconds:.2}s");
}

/// A unified diff adding `lines` lines of real Rust code, in files of 500.
fn cost_diff(source: &Path, lines: usize) -> Result<String> {
    let mut rng = StdRng::seed_from_u64(1);
    let mut pool: Vec<String> = Vec::new();
    for text in host_files(source, Format::Code, 400, &mut rng)? {
        pool.extend(text.lines().map(str::to_owned));
    }
    anyhow::ensure!(!pool.is_empty(), "no Rust files under {}", source.display());
    let mut diff = String::new();
    let mut taken = 0;
    let mut file = 0;
    while taken < lines {
        let n = (lines - taken).min(500);
        diff.push_str(&format!(
            "diff --git a/src/f{file}.rs b/src/f{file}.rs\n--- /dev/null\n+++ b/src/f{file}.rs\n@@ -0,0 +1,{n} @@\n"
        ));
        for i in 0..n {
            diff.push('+');
            diff.push_str(&pool[(taken + i) % pool.len()]);
            diff.push('\n');
        }
        taken += n;
        file += 1;
    }
    Ok(diff)
}

/// A handler that does nothing: what remains is the worker's own cost.
struct Noop;

#[async_trait::async_trait]
impl devops_worker::Handler for Noop {
    async fn handle(&self, _event: &devops_models::EventEnvelope) -> Result<(), devops_worker::HandlerError> {
        Ok(())
    }
}

async fn worker_overhead(events: usize) -> Result<()> {
    use devops_adapters::queue::{Queue, QueueSettings, SqliteQueue};
    use devops_store::Store;
    let dir = tempfile::tempdir()?;
    let options = devops_store::ConnectOptions {
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
        max_connections: 4,
        connect_timeout: std::time::Duration::from_secs(5),
    };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(devops_store::SqliteStore::connect(&options).await?);
    store.migrate().await?;
    let settings =
        QueueSettings { name: "bench".into(), max_receives: 5, visibility_timeout: std::time::Duration::from_secs(30) };
    let queue: std::sync::Arc<dyn Queue> =
        std::sync::Arc::new(SqliteQueue::open(&dir.path().join("queue.db"), settings).await?);
    let consumer = devops_worker::Consumer {
        handlers: devops_worker::Handlers::default().with("bench.event", Noop),
        store: store.clone(),
        queue: queue.clone(),
        cache: std::sync::Arc::new(devops_adapters::cache::MemoryCache::new()),
        breakers: std::sync::Arc::new(devops_worker::breaker::Breakers::new(5, std::time::Duration::from_secs(30))),
        visibility_timeout: std::time::Duration::from_secs(30),
    };
    let tenant = store.create_tenant("bench").await?.id;
    for n in 0..events {
        let event = devops_models::EventEnvelope::new("bench.event", tenant, format!("e-{n}"), serde_json::json!({}));
        queue.send(&event).await?;
    }
    let mut times = Vec::with_capacity(events);
    while times.len() < events {
        for message in queue.receive(10, std::time::Duration::from_millis(100)).await? {
            let started = Instant::now();
            consumer.process(message).await?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!(
        "{}",
        serde_json::json!({"bench": "worker_overhead", "events": events, "p50_ms": p50, "p99_ms": p99, "backend": "sqlite"})
    );
    eprintln!(
        "worker overhead per event (embedded queue and store): p50 {p50:.3} ms, p99 {p99:.3} ms over {events} events"
    );
    Ok(())
}

async fn webhook_latency(rest: &str, key: &str, repository: &Path, deliveries: usize) -> Result<()> {
    use hmac::Mac;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = client.request(method, format!("{rest}{path}")).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
    };
    let repo: serde_json::Value = call(
        reqwest::Method::POST,
        "/api/v1/repositories",
        Some(serde_json::json!({"url": repository, "index": false})),
    )
    .send()
    .await?
    .json()
    .await?;
    let id = repo["id"].as_str().context("register the repository")?.to_owned();
    let url = repo["url"].as_str().context("url")?.to_owned();
    let files = serde_json::json!([{ "path": "bench/config.py", "action": "add",
        "content": "DB_PASSWORD = \"Xk9#mP2$vL5q\"\nimport requests\nrequests.get(URL, verify=False)\n" }]);
    let pr: serde_json::Value = call(
        reqwest::Method::POST,
        &format!("/api/v1/repositories/{id}/pull-requests"),
        Some(serde_json::json!({"title": "Bench", "files": files})),
    )
    .send()
    .await?
    .json()
    .await?;
    let number = pr["number"].as_u64().context("open a pull request")?;
    let secret: serde_json::Value =
        call(reqwest::Method::POST, "/api/v1/webhooks/github/secret", None).send().await?.json().await?;
    let path = secret["path"].as_str().context("webhook path")?.to_owned();
    let secret = secret["secret"].as_str().context("secret")?.to_owned();
    let latest = format!("/api/v1/repositories/{id}/pull-requests/{number}/reviews/latest");
    let current = |client: &reqwest::Client| {
        let request = client.get(format!("{rest}{latest}")).bearer_auth(key);
        async move {
            let body: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
            body["id"].as_str().map(str::to_owned)
        }
    };
    // The review of the opened event first, so each delivery's review is new.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while current(&client).await.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "no review of the opened pull request");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut times = Vec::new();
    for n in 0..deliveries {
        let before = current(&client).await;
        let payload = serde_json::json!({"action": "synchronize", "number": number,
            "pull_request": {"number": number, "head": {"sha": "0", "ref": "x"}, "base": {"ref": "main"}},
            "repository": {"clone_url": url, "default_branch": "main"}});
        let body = serde_json::to_vec(&payload)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let started = Instant::now();
        let response = client
            .post(format!("{rest}{path}"))
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", format!("bench-{n}-{}", std::process::id()))
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(response.status().as_u16() == 202, "delivery refused: {}", response.status());
        loop {
            let now = current(&client).await;
            if now.is_some() && now != before {
                break;
            }
            anyhow::ensure!(started.elapsed() < std::time::Duration::from_secs(60), "no review within 60 s");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let (p50, p95) = (times[times.len() / 2], times[(times.len() * 95 / 100).min(times.len() - 1)]);
    println!(
        "{}",
        serde_json::json!({"bench": "webhook_to_review", "deliveries": deliveries, "p50_ms": p50, "p95_ms": p95})
    );
    eprintln!("webhook to posted review: p50 {p50:.0} ms, p95 {p95:.0} ms over {deliveries} deliveries");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Worker { events } => worker_overhead(events).await?,
        Command::Webhook { rest, key, repository, deliveries } => {
            webhook_latency(&rest, &key, &repository, deliveries).await?
        }
        Command::Secrets { source, files_per_format, plants, seed, detect_secrets, keep, show_false_positives } => {
            let scratch = tempfile::tempdir()?;
            let dir = keep.unwrap_or_else(|| scratch.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let corpus = build_corpus(&source, &dir, files_per_format, plants, seed)?;
            let planted: usize = corpus.iter().map(|f| f.secrets.len()).sum();
            eprintln!("corpus: {} files, {planted} secrets, {planted} look-alikes, in {}", corpus.len(), dir.display());
            let (ours, seconds) = scan_ours(&dir, &corpus)?;
            score("devops-mcp", &corpus, &ours, seconds);
            if show_false_positives {
                for file in &corpus {
                    let text = std::fs::read_to_string(dir.join(&file.path))?;
                    let reported = ours.get(&file.path).cloned().unwrap_or_default();
                    for line in reported.iter().filter(|l| !file.secrets.contains_key(l)) {
                        let content = text.lines().nth(*line as usize - 1).unwrap_or_default();
                        eprintln!(
                            "false positive {}:{line}: {}",
                            file.path,
                            content.trim().chars().take(120).collect::<String>()
                        );
                    }
                    for line in file.secrets.keys().filter(|l| !reported.contains(l)) {
                        let content = text.lines().nth(*line as usize - 1).unwrap_or_default();
                        eprintln!("missed {}:{line}: {}", file.path, content.trim());
                    }
                }
            }
            if let Some(bin) = detect_secrets {
                let (theirs, seconds) = scan_detect_secrets(&bin, &dir)?;
                score("detect-secrets", &corpus, &theirs, seconds);
            }
        }
        Command::Cost { source, lines, rounds } => {
            let diff = cost_diff(&source, lines)?;
            let analyzer = Analyzer::default();
            let mut times = Vec::new();
            let mut findings = 0;
            for _ in 0..rounds {
                let started = Instant::now();
                findings = analyzer.analyze(&diff)?.findings.len();
                times.push(started.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let per_thousand = median * 1e3 / (lines as f64 / 1000.0);
            println!(
                "{}",
                serde_json::json!({"bench": "review_cost", "added_lines": lines, "median_seconds": median,
                "ms_per_1000_lines": per_thousand, "findings": findings})
            );
            eprintln!(
                "analysis of {lines} added lines: median {median:.3}s = {per_thousand:.3} ms per 1,000 lines ({findings} findings)"
            );
        }
    }
    Ok(())
}
