//! `mcp-load`: opens N MCP sessions over Streamable HTTP against any server
//! (ours or a peer), then has each call one tool in a closed loop for a
//! fixed time, and prints one JSON line of results. With `--duration 0` it
//! only opens the sessions and holds them for `--warmup` seconds, for
//! measuring memory per idle session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long)]
    tool: String,
    /// Tool arguments as JSON.
    #[arg(long, default_value = "{}")]
    arguments: String,
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Seconds of measured load; 0 only opens and holds the sessions.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring (or of holding, with --duration 0).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
}

struct Session {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    id: Option<String>,
    protocol: String,
}

/// The JSON-RPC message answering `id`, from a JSON or SSE body.
fn answer(body: &str, id: u64) -> Option<Value> {
    let messages: Vec<Value> = if body.trim_start().starts_with('{') {
        serde_json::from_str(body).ok().into_iter().collect()
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    };
    messages.into_iter().find(|m| m["id"] == id)
}

impl Session {
    async fn post(&self, message: &Value) -> anyhow::Result<(reqwest::header::HeaderMap, String)> {
        let mut request = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", &self.protocol)
            .body(message.to_string());
        if let Some(id) = &self.id {
            request = request.header("mcp-session-id", id);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok((headers, body))
    }

    async fn open(client: reqwest::Client, url: &str, headers: reqwest::header::HeaderMap) -> anyhow::Result<Self> {
        let mut session = Session { client, url: url.to_owned(), headers, id: None, protocol: "2025-06-18".into() };
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "mcp-load", "version": "0" } } });
        let (headers, body) = session.post(&init).await.context("initialize")?;
        session.id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let result = answer(&body, 0).context("no initialize result")?;
        if let Some(version) = result["result"]["protocolVersion"].as_str() {
            session.protocol = version.to_owned();
        }
        session.post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await?;
        Ok(session)
    }

    async fn call(&self, id: u64, tool: &str, arguments: &Value) -> anyhow::Result<()> {
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": arguments } });
        let (_, body) = self.post(&request).await?;
        let message = answer(&body, id).context("no answer")?;
        if message.get("error").is_some() || message["result"]["isError"] == true {
            bail!("tool failed: {message}");
        }
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arguments: Value = serde_json::from_str(&args.arguments).context("--arguments is not JSON")?;
    let mut headers = reqwest::header::HeaderMap::new();
    for header in &args.headers {
        let (name, value) = header.split_once(':').context("--header must be 'Name: value'")?;
        headers.insert(reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())?, value.trim().parse()?);
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.sessions.max(1)).build()?;
    let sessions = futures::future::try_join_all(
        (0..args.sessions).map(|_| Session::open(client.clone(), &args.url, headers.clone())),
    )
    .await?;
    if args.duration == 0 {
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        println!("{}", json!({ "sessions": sessions.len(), "held_secs": args.warmup }));
        return Ok(());
    }

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let (measuring, stop, tool, arguments) =
                (measuring.clone(), stop.clone(), args.tool.clone(), arguments.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut id) = (Vec::new(), 0u64, 1u64);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let ok = session.call(id, &tool, &arguments).await.is_ok();
                    id += 1;
                    if measuring.load(Ordering::Relaxed) {
                        if ok { latencies.push(started.elapsed()) } else { errors += 1 }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    println!(
        "{}",
        json!({
            "sessions": args.sessions,
            "calls": latencies.len(),
            "errors": errors,
            "calls_per_sec": (latencies.len() as f64 / elapsed.as_secs_f64()).round(),
            "p50_ms": (percentile(&latencies, 0.50) * 1000.0).round() / 1000.0,
            "p99_ms": (percentile(&latencies, 0.99) * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}
