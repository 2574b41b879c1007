//! `mcp-load`: opens N MCP sessions against any server (ours or a peer), over
//! Streamable HTTP (`http://…/mcp`) or WebSocket (`ws://…/ws`, subprotocol
//! `mcp`, one session per connection), then has each call one tool in a
//! closed loop for a fixed time, and prints one JSON line of results. With
//! `--duration 0` it only opens the sessions, prints how many, and holds
//! them for `--warmup` seconds, for measuring memory per idle session.
//!
//! `--context-items N` gives each session its own context of N items first
//! (`create_context` + `append_to_context`), and puts its id wherever the
//! tool arguments say `{context_id}`: that is how `get_context` is loaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Parser)]
struct Args {
    /// `http://…` for Streamable HTTP, `ws://…` for WebSocket.
    #[arg(long)]
    url: String,
    /// Extra request header, `Name: value` (repeatable); on WebSocket, sent
    /// with the upgrade request.
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long)]
    tool: String,
    /// Tool arguments as JSON; `{context_id}` is replaced by the session's
    /// context with `--context-items`.
    #[arg(long, default_value = "{}")]
    arguments: String,
    /// Items in the context each session creates before the load (0: none).
    #[arg(long, default_value_t = 0)]
    context_items: usize,
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Seconds of measured load; 0 only opens and holds the sessions.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring (or of holding, with --duration 0).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Http {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    /// The `mcp-session-id` the server gave, if any.
    session: Option<String>,
}

enum Transport {
    Http(Http),
    Ws(Box<Socket>),
}

struct Session {
    transport: Transport,
    protocol: String,
    next_id: u64,
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

fn parse_headers(headers: &[String]) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for header in headers {
        let (name, value) = header.split_once(':').context("--header must be 'Name: value'")?;
        map.insert(reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())?, value.trim().parse()?);
    }
    Ok(map)
}

impl Session {
    async fn connect(
        url: &str,
        headers: &reqwest::header::HeaderMap,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let transport = if url.starts_with("ws://") || url.starts_with("wss://") {
            let mut request = url.into_client_request()?;
            for (name, value) in headers {
                request.headers_mut().insert(name, value.clone());
            }
            request.headers_mut().insert("sec-websocket-protocol", "mcp".parse()?);
            // tungstenite zero-fills its whole read buffer (128 KiB by default)
            // before every read: the load generator must not spend the
            // server's cores on that.
            let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
            let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .context("WebSocket upgrade")?;
            Transport::Ws(Box::new(socket))
        } else {
            Transport::Http(Http {
                client: client.clone(),
                url: url.to_owned(),
                headers: headers.clone(),
                session: None,
            })
        };
        let mut session = Session { transport, protocol: "2025-06-18".into(), next_id: 0 };
        let result = session
            .request(
                "initialize",
                json!({ "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": { "name": "mcp-load", "version": "0" } }),
            )
            .await
            .context("initialize")?;
        if let Some(version) = result["protocolVersion"].as_str() {
            session.protocol = version.to_owned();
        }
        session.notify("notifications/initialized").await?;
        Ok(session)
    }
}

impl Http {
    async fn post(&mut self, protocol: &str, message: &Value) -> anyhow::Result<String> {
        let mut request = self
            .client
            .post(self.url.as_str())
            .headers(self.headers.clone())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", protocol)
            .body(message.to_string());
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session.as_str());
        }
        let response = request.send().await?;
        let status = response.status();
        if let Some(session) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            self.session = Some(session.to_owned());
        }
        let body = response.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok(body)
    }
}

impl Session {
    async fn notify(&mut self, method: &str) -> anyhow::Result<()> {
        let message = json!({ "jsonrpc": "2.0", "method": method });
        match &mut self.transport {
            Transport::Http(http) => http.post(&self.protocol, &message).await.map(drop),
            Transport::Ws(socket) => Ok(socket.send(Message::Text(message.to_string().into())).await?),
        }
    }

    /// Sends one request and waits for its answer's `result`.
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let answer = match &mut self.transport {
            Transport::Http(http) => {
                let body = http.post(&self.protocol, &message).await?;
                answer(&body, id).context("no answer")?
            }
            Transport::Ws(socket) => {
                socket.send(Message::Text(message.to_string().into())).await?;
                loop {
                    match socket.next().await.context("connection closed")?? {
                        Message::Text(text) => {
                            let message: Value = serde_json::from_str(text.as_str())?;
                            if message["id"] == id {
                                break message;
                            }
                        }
                        Message::Close(frame) => bail!("closed: {frame:?}"),
                        _ => {}
                    }
                }
            }
        };
        if let Some(error) = answer.get("error") {
            bail!("{method} failed: {error}");
        }
        Ok(answer["result"].clone())
    }

    async fn call(&mut self, tool: &str, arguments: &Value) -> anyhow::Result<Value> {
        let result = self.request("tools/call", json!({ "name": tool, "arguments": arguments })).await?;
        if result["isError"] == true {
            bail!("{tool} failed: {result}");
        }
        Ok(result)
    }

    /// Creates a context of `items` items and returns its id.
    async fn create_context(&mut self, name: &str, items: usize) -> anyhow::Result<String> {
        let created = self.call("create_context", &json!({ "name": name })).await?;
        let id = created["structuredContent"]["id"].as_str().context("create_context returned no id")?.to_owned();
        let items: Vec<Value> = (0..items)
            .map(|i| json!({ "role": "user", "content": format!("item {i}: the build failed on step {i}, see the log") }))
            .collect();
        for chunk in items.chunks(100) {
            self.call("append_to_context", &json!({ "context_id": id, "items": chunk })).await?;
        }
        Ok(id)
    }
}

/// `arguments` with every `"{context_id}"` string replaced by `id`.
fn with_context_id(arguments: &Value, id: &str) -> Value {
    match arguments {
        Value::String(s) if s == "{context_id}" => Value::String(id.to_owned()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_context_id(v, id))).collect()),
        Value::Array(values) => Value::Array(values.iter().map(|v| with_context_id(v, id)).collect()),
        other => other.clone(),
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
    let headers = parse_headers(&args.headers)?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.sessions.max(1)).build()?;
    // Context names are unique per tenant: one prefix per run.
    let run = format!(
        "mcp-load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis()
    );
    let opened = futures::future::try_join_all((0..args.sessions).map(|n| {
        let (url, client, headers, arguments, run) = (&args.url, &client, &headers, &arguments, &run);
        async move {
            let mut session = Session::connect(url, headers, client).await?;
            let arguments = if args.context_items > 0 {
                let id = session.create_context(&format!("{run}-{n}"), args.context_items).await?;
                with_context_id(arguments, &id)
            } else {
                arguments.clone()
            };
            anyhow::Ok((session, arguments))
        }
    }))
    .await?;
    if args.duration == 0 {
        // Printed first, so that a script can read memory while they are held.
        println!("{}", json!({ "opened": opened.len() }));
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        return Ok(());
    }

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = opened
        .into_iter()
        .map(|(mut session, arguments)| {
            let (measuring, stop, tool) = (measuring.clone(), stop.clone(), args.tool.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let ok = session.call(&tool, &arguments).await.is_ok();
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
