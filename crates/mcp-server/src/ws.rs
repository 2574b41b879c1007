//! MCP over WebSocket at `/ws`: subprotocol `mcp`, one JSON-RPC message per
//! text frame, served by the same handler as Streamable HTTP (rmcp serves
//! any sink and stream of messages).
//!
//! Clients that cannot set headers (browsers, the Python SDK 1.x client)
//! may pass the API key as `?api_key=` or as a second subprotocol value;
//! neither is ever logged. The server pings every [`PING_INTERVAL`], closes
//! a connection that stops answering, refuses frames above the limit with
//! close code 1009, and closes with 1001 and a reason on shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use devops_errors::{ApiError, ErrorCode};
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::service::serve_server_with_ct;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, PollSender};

use crate::dns_rebinding;
use crate::handler::{DevopsMcp, Shared};
use crate::policy::{READONLY_HEADER, TOOLSETS_HEADER};
use devops_models::Principal;
use devops_runtime::auth::{Authenticator, bearer_token, unauthorized};

pub const SUBPROTOCOL: &str = "mcp";
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Missed pongs after which the peer is considered gone.
const MAX_MISSED_PONGS: u32 = 2;
const OUTBOX: usize = 64;
/// Bytes read from the socket at a time. tungstenite zero-fills this much
/// before every read and keeps it per connection, so its 128 KiB default
/// cost 13% of the CPU under load and twice the idle-session budget;
/// larger frames still arrive, over several reads.
const READ_BUFFER_BYTES: usize = 8 * 1024;

#[derive(Clone)]
pub struct WsState {
    pub shared: Arc<Shared>,
    pub authenticator: Authenticator,
    pub max_frame_bytes: usize,
    pub shutdown: CancellationToken,
    /// The `mcp.allowed_hosts` that `/mcp` enforces too (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// The `mcp.allowed_origins` that `/mcp` enforces too: a browser page
    /// of another origin must not reach the server through a WebSocket,
    /// which no CORS preflight guards.
    pub allowed_origins: Vec<String>,
}

/// The key from the header, the `api_key` query parameter, or a
/// subprotocol value other than `mcp`, in that order.
fn credential(parts: &Parts) -> Option<String> {
    if let Some(token) = bearer_token(&parts.headers) {
        return Some(token.to_owned());
    }
    let from_query = parts.uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "api_key").map(|(_, v)| v.into_owned())
    });
    from_query.or_else(|| {
        parts
            .headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .and_then(|list| list.split(',').map(str::trim).find(|p| !p.is_empty() && *p != SUBPROTOCOL))
            .map(str::to_owned)
    })
}

fn offers_mcp(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|list| list.split(',').any(|p| p.trim() == SUBPROTOCOL))
}

/// `GET /ws`: authenticates, then upgrades.
pub async fn upgrade(State(state): State<WsState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if !dns_rebinding::host_allowed(&parts.headers, &state.allowed_hosts) {
        return ApiError::new(ErrorCode::Forbidden, "this Host is not allowed").into_response();
    }
    if !dns_rebinding::origin_allowed(&parts.headers, &state.allowed_origins) {
        return ApiError::new(ErrorCode::Forbidden, "this Origin is not allowed").into_response();
    }
    let token = credential(&parts);
    let principal = match state.authenticator.authenticate(token.as_deref()).await {
        Ok(principal) => principal,
        Err(err) => return unauthorized(err, state.authenticator.metadata_url(&parts.headers).as_deref()),
    };
    if !offers_mcp(&parts) {
        return ApiError::new(ErrorCode::InvalidArgument, "the WebSocket subprotocol 'mcp' is required")
            .into_response();
    }
    let upgrade = match <WebSocketUpgrade as FromRequestParts<()>>::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return ApiError::new(ErrorCode::InvalidArgument, rejection.body_text()).into_response(),
    };
    let parts = message_parts(&parts, principal);
    let max = state.max_frame_bytes;
    let mut response = upgrade
        .protocols([SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, parts, state));
    // Echo only `mcp`, never the key a browser put in the protocol list.
    response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    response
}

/// What every message of the connection carries to the handler: the
/// principal and the headers its policy reads. Cloned per message, so not
/// the whole upgrade request.
fn message_parts(upgrade: &Parts, principal: Principal) -> Parts {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    for name in [TOOLSETS_HEADER, READONLY_HEADER] {
        for value in upgrade.headers.get_all(name) {
            parts.headers.append(name, value.clone());
        }
    }
    parts.extensions.insert(principal);
    parts
}

/// A JSON-RPC error for a frame that is not a message.
fn protocol_error(code: i64, message: &str, id: serde_json::Value) -> String {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }).to_string()
}

/// Parses one text frame into a client message carrying the connection's
/// HTTP parts, or the JSON-RPC error to answer with.
fn parse_frame(text: &str, parts: &Parts) -> Result<ClientJsonRpcMessage, String> {
    let mut message = match serde_json::from_str::<ClientJsonRpcMessage>(text) {
        Ok(message) => message,
        Err(_) => parse_slowly(text)?,
    };
    match &mut message {
        ClientJsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts.clone());
        }
        ClientJsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts.clone());
        }
        _ => {}
    }
    Ok(message)
}

/// A frame that did not parse as a message straight away, parsed again as
/// a bare value to say why and to echo the request's id.
fn parse_slowly(text: &str) -> Result<ClientJsonRpcMessage, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| protocol_error(-32700, "parse error", serde_json::Value::Null))?;
    if value.is_array() {
        return Err(protocol_error(
            -32600,
            "batches are not supported; send one message per frame",
            serde_json::Value::Null,
        ));
    }
    let id = value.get("id").cloned().unwrap_or(serde_json::Value::Null);
    serde_json::from_value(value).map_err(|err| protocol_error(-32600, &format!("invalid request: {err}"), id))
}

async fn serve(socket: WebSocket, parts: Parts, state: WsState) {
    let (mut ws_out, mut ws_in) = socket.split();
    let (to_server_tx, to_server_rx) = mpsc::channel::<ClientJsonRpcMessage>(OUTBOX);
    let (from_server_tx, mut from_server_rx) = mpsc::channel::<ServerJsonRpcMessage>(OUTBOX);
    let (raw_tx, mut raw_rx) = mpsc::channel::<Message>(OUTBOX);
    // Ends this connection's MCP session; `state.shutdown` ends the server.
    let session = CancellationToken::new();
    let shutdown = state.shutdown.clone();

    let handler = DevopsMcp::new(state.shared.clone());
    let transport = (PollSender::new(from_server_tx), tokio_stream::wrappers::ReceiverStream::new(to_server_rx));
    let server_ct = session.clone();
    let server = tokio::spawn(async move {
        match serve_server_with_ct(handler, transport, server_ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(err) => tracing::debug!(error = %err, "websocket session ended before initialisation"),
        }
    });

    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        let close = |code, reason: &'static str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
        loop {
            let frame = tokio::select! {
                message = from_server_rx.recv() => match message {
                    Some(message) => match serde_json::to_string(&message) {
                        Ok(text) => Message::Text(text.into()),
                        Err(err) => {
                            tracing::error!(error = %err, "cannot encode a server message");
                            continue;
                        }
                    },
                    None => close(close_code::NORMAL, "session closed"),
                },
                raw = raw_rx.recv() => match raw {
                    Some(raw) => raw,
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Default::default()),
                () = shutdown.cancelled() => close(close_code::AWAY, "server shutting down"),
            };
            let closing = matches!(frame, Message::Close(_));
            if ws_out.send(frame).await.is_err() || closing {
                break;
            }
        }
        let _ = ws_out.close().await;
    });

    let mut missed_pongs = 0u32;
    let mut pong_check = tokio::time::interval(PING_INTERVAL);
    pong_check.tick().await;
    loop {
        let frame = tokio::select! {
            frame = ws_in.next() => frame,
            _ = pong_check.tick() => {
                missed_pongs += 1;
                if missed_pongs > MAX_MISSED_PONGS {
                    let _ = raw_tx.send(Message::Close(Some(CloseFrame { code: close_code::POLICY, reason: "no pong".into() }))).await;
                    break;
                }
                continue;
            }
            () = state.shutdown.cancelled() => break,
        };
        match frame {
            Some(Ok(Message::Text(text))) => match parse_frame(text.as_str(), &parts) {
                Ok(message) => {
                    if to_server_tx.send(message).await.is_err() {
                        break;
                    }
                }
                Err(answer) => {
                    let _ = raw_tx.send(Message::Text(answer.into())).await;
                }
            },
            Some(Ok(Message::Binary(_))) => {
                let answer = protocol_error(-32600, "send JSON-RPC messages as text frames", serde_json::Value::Null);
                let _ = raw_tx.send(Message::Text(answer.into())).await;
            }
            Some(Ok(Message::Pong(_) | Message::Ping(_))) => missed_pongs = 0,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(err)) => {
                // Oversized frames end up here; tell the client why before closing.
                tracing::debug!(error = %err, "websocket read failed");
                let frame = CloseFrame { code: close_code::SIZE, reason: "frame too large or malformed".into() };
                let _ = raw_tx.send(Message::Close(Some(frame))).await;
                break;
            }
        }
    }
    drop(to_server_tx);
    drop(raw_tx);
    session.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    server.abort();
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    #[test]
    fn messages_carry_what_the_policy_reads_from_the_upgrade() {
        let (mut upgrade, ()) = Request::builder()
            .header("host", "localhost")
            .header("authorization", "Bearer dmcp_secret")
            .header(TOOLSETS_HEADER, "repos, issues")
            .header(READONLY_HEADER, "true")
            .body(())
            .expect("request")
            .into_parts();
        let principal = Principal {
            tenant_id: devops_models::TenantId::new(),
            key_id: uuid::Uuid::nil(),
            scopes: vec![devops_models::Scope::Write],
        };
        let parts = message_parts(&upgrade, principal.clone());
        upgrade.extensions.insert(principal);
        let policy = crate::policy::Policy::from_parts(&parts).expect("policy");
        assert_eq!(Some(policy), crate::policy::Policy::from_parts(&upgrade));
        assert!(parts.headers.get("authorization").is_none(), "the key stays out of every message");
    }
}
