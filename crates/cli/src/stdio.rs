//! `devops-mcp stdio`: bridges a desktop MCP client that speaks stdio to a
//! running server's Streamable HTTP endpoint. Each line on stdin is one
//! JSON-RPC message, POSTed with the session id the server assigned; every
//! message the server answers with (plain JSON or SSE events, and the
//! server's own GET stream once a session exists) is written to stdout as
//! one line. The key comes from `--key` or `DEVOPS_MCP_KEY` and is never
//! printed.

use std::sync::Arc;

use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no API key: pass --key or set DEVOPS_MCP_KEY")]
    MissingKey,
    #[error("the API key cannot be sent as a header")]
    BadKey,
    #[error("cannot reach {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("stdio failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Session state learned from the server's answers.
#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol_version: Option<String>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

struct Bridge {
    client: reqwest::Client,
    url: String,
    session: Mutex<Session>,
    out: mpsc::Sender<String>,
}

impl Bridge {
    async fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let session = self.session.lock().await;
        if let Some(id) = session.id.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(SESSION_HEADER, id);
        }
        if let Some(version) = session.protocol_version.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(VERSION_HEADER, version);
        }
        headers
    }

    /// Forwards one client message and relays whatever the server answers.
    async fn forward(self: Arc<Self>, line: String) {
        let id = serde_json::from_str::<Value>(&line).ok().and_then(|v| v.get("id").cloned());
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers().await)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(line)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => return self.fail(id, &format!("server unreachable: {err}")).await,
        };
        if let Some(session) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            self.session.lock().await.id = Some(session.to_owned());
        }
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let reason = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return self.fail(id, &format!("HTTP {status}: {reason}")).await;
        }
        self.relay(response).await;
        self.listen_once_initialized().await;
    }

    /// Writes every JSON-RPC message of a response body, JSON or SSE.
    async fn relay(&self, response: reqwest::Response) {
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            if let Ok(body) = response.text().await
                && !body.trim().is_empty()
            {
                self.emit(body.trim().to_owned()).await;
            }
            return;
        }
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let data: Vec<&str> =
                    event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                if !data.is_empty() && !data.iter().all(|d| d.is_empty()) {
                    self.emit(data.join("\n")).await;
                }
            }
        }
    }

    async fn emit(&self, message: String) {
        if let Ok(value) = serde_json::from_str::<Value>(&message) {
            if let Some(version) = value["result"]["protocolVersion"].as_str() {
                self.session.lock().await.protocol_version = Some(version.to_owned());
            }
            let _ = self.out.send(value.to_string()).await;
        }
    }

    async fn fail(&self, id: Option<Value>, message: &str) {
        // Only requests get answers; a failed notification is just reported.
        match id {
            Some(id) => {
                let error = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32000, "message": message } });
                let _ = self.out.send(error.to_string()).await;
            }
            None => eprintln!("devops-mcp stdio: {message}"),
        }
    }

    /// Opens the server's GET stream once a session exists, for messages the
    /// server starts (notifications, sampling requests).
    async fn listen_once_initialized(self: &Arc<Self>) {
        {
            let session = self.session.lock().await;
            if session.listener.is_some() || session.id.is_none() || session.protocol_version.is_none() {
                return;
            }
        }
        let bridge = self.clone();
        let listener = tokio::spawn(async move {
            let response = bridge
                .client
                .get(&bridge.url)
                .headers(bridge.headers().await)
                .header(ACCEPT, "text/event-stream")
                .send()
                .await;
            if let Ok(response) = response
                && response.status().is_success()
            {
                bridge.relay(response).await;
            }
        });
        let mut session = self.session.lock().await;
        match session.listener {
            None => session.listener = Some(listener),
            Some(_) => listener.abort(),
        }
    }
}

/// Runs the bridge until stdin closes, then ends the session.
pub async fn run(url: String, key: Option<String>) -> Result<(), Error> {
    let key = key.filter(|k| !k.is_empty()).ok_or(Error::MissingKey)?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| Error::BadKey)?;
    auth.set_sensitive(true);
    let client = reqwest::Client::builder()
        .default_headers(HeaderMap::from_iter([(AUTHORIZATION, auth)]))
        .build()
        .map_err(|source| Error::Connect { url: url.clone(), source })?;
    let (out, mut lines_out) = mpsc::channel::<String>(256);
    let bridge = Arc::new(Bridge { client, url: url.clone(), session: Mutex::new(Session::default()), out });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = lines_out.recv().await {
            if stdout.write_all(format!("{line}\n").as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(line) = stdin.next_line().await? {
        if !line.trim().is_empty() {
            in_flight.spawn(bridge.clone().forward(line));
        }
    }
    while in_flight.join_next().await.is_some() {}
    let (session, listener) = {
        let mut session = bridge.session.lock().await;
        (session.id.clone(), session.listener.take())
    };
    if let Some(listener) = listener {
        listener.abort();
    }
    if let Some(id) = session {
        let _ = bridge.client.delete(&url).header(SESSION_HEADER, id).send().await;
    }
    drop(bridge);
    let _ = writer.await;
    Ok(())
}
