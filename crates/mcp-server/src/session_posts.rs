//! A live session's request, answered without rmcp's HTTP layer.
//!
//! Nearly every POST to `/mcp` is a request of a session past its handshake,
//! from a client that sends the headers the specification asks for. rmcp's
//! `handle_post` answers those through a cancellation token, a keep-alive
//! timer and an SSE encoder per request, and its answer is then held again
//! by [`whole_answer`]. [`SessionPosts`] serves exactly that case itself:
//! it hands the parsed request to the session through [`InlineSessions`],
//! as rmcp would, and writes the events it gets back.
//!
//! A tool call is served one step further: its handler runs here, beside
//! the session's rmcp service, with the session's peer, rather than through
//! the service's loop and its task per request ([`DirectCalls`]). Its
//! answer is routed as the service's are, so the stream, its events and
//! their resumption are the same. Calls that ask the client something
//! while they run stay with the service: rmcp puts such a request on the
//! call's own stream only from the service's task (SEP-2260).
//!
//! Anything else goes to rmcp untouched, so rmcp's checks stay the only
//! ones: what is served here is a subset of what rmcp accepts (a Host it
//! allows, no Origin, plain `Accept` and `Content-Type`, a known
//! `MCP-Protocol-Version` of the session-based revisions, a request with no
//! protocol version of its own). A body that does not parse is handed back
//! too, so its error reads as rmcp writes it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, ErrorData, GetExtensions, GetMeta, JsonRpcMessage,
    JsonRpcRequest, JsonRpcVersion2_0, ProtocolVersion, RequestId, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dns_rebinding;
use crate::session_routes::{Events, InlineSessions};
use crate::whole_answer::{self, Gathered};

const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";
/// What a quiet stream sends, as rmcp's keep-alive does: an empty comment.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// The handler of the tool calls served beside their session's service.
pub trait DirectCalls: Send + Sync + 'static {
    /// Whether a call of `tool` may be served so: not if it asks the client
    /// something while it runs.
    fn serves_beside(&self, tool: &str) -> bool;

    /// The call's result, as the session's service would give it.
    fn call(
        self: Arc<Self>,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> BoxFuture<'static, Result<ServerResult, ErrorData>>;
}

/// Serves the requests of live sessions; see the module's documentation.
pub struct SessionPosts {
    sessions: Arc<InlineSessions>,
    calls: Option<Arc<dyn DirectCalls>>,
    allowed_hosts: Vec<String>,
    max_body_bytes: usize,
    keep_alive: Option<Duration>,
    shutdown: CancellationToken,
}

impl SessionPosts {
    /// `allowed_hosts`, the body limit, the keep-alive interval and the
    /// shutdown token are the ones rmcp's service was given.
    pub fn new(
        sessions: Arc<InlineSessions>,
        allowed_hosts: Vec<String>,
        max_body_bytes: usize,
        keep_alive: Option<Duration>,
        shutdown: CancellationToken,
    ) -> Self {
        Self { sessions, calls: None, allowed_hosts, max_body_bytes, keep_alive, shutdown }
    }

    /// Serves the tool calls `calls` allows beside their session's service.
    pub fn with_direct_calls(mut self, calls: Arc<dyn DirectCalls>) -> Self {
        self.calls = Some(calls);
        self
    }

    /// The answer to `request`, or `request` back (its body intact) for rmcp.
    pub async fn serve(&self, request: Request) -> Result<Response<Body>, Request> {
        let Some(session) = self.plain_session_request(request.method(), request.headers()) else {
            return Err(request);
        };
        if !self.sessions.is_ready(&session) {
            // rmcp restores it from the session store, or answers 404.
            return Err(request);
        }
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, self.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::debug!(error = %err, "cannot read an MCP request body");
                return Ok(plain(StatusCode::BAD_REQUEST, "Bad Request: cannot read the request body"));
            }
        };
        let request = match parse(&bytes) {
            Ok(JsonRpcMessage::Request(mut request)) if is_plain(&request.request) => {
                request.request.extensions_mut().insert(parts);
                request
            }
            _ => return Err(Request::from_parts(parts, Body::from(bytes))),
        };
        let request = match self.serve_call(&session, request) {
            Ok(events) => return Ok(self.answer(events).await),
            Err(request) => request,
        };
        match self.sessions.request_stream(&session, JsonRpcMessage::Request(request)) {
            Ok(events) => Ok(self.answer(events).await),
            Err(err) => {
                tracing::error!(error = %err, "cannot hand a request to its MCP session");
                Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
            }
        }
    }

    /// The session a request names, if it is one this module serves. Its
    /// Content-Length is checked here, so a body over the limit reaches rmcp
    /// unread and gets rmcp's answer.
    fn plain_session_request(&self, method: &Method, headers: &HeaderMap) -> Option<SessionId> {
        let text = |name: HeaderName| headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok());
        let plain = method == Method::POST
            && dns_rebinding::host_allowed(headers, &self.allowed_hosts)
            && !headers.contains_key(header::ORIGIN)
            && text(header::CONTENT_TYPE).is_some_and(|value| essence(value).eq_ignore_ascii_case(JSON))
            && text(header::ACCEPT).is_some_and(accepts_json_and_events)
            && text(PROTOCOL_VERSION_HEADER).is_some_and(is_session_revision)
            && text(header::CONTENT_LENGTH)
                .and_then(|length| length.parse::<usize>().ok())
                .is_some_and(|length| length <= self.max_body_bytes);
        if !plain {
            return None;
        }
        text(SESSION_HEADER).map(SessionId::from)
    }

    /// Starts a tool call beside the session's service, if it may be served
    /// so; its answer comes on the events returned. Most calls are done at
    /// their first poll, here; one that waits goes on in a task of its own,
    /// which outlives the connection as the service's would.
    #[expect(clippy::result_large_err, reason = "a declined request is moved back once, as `serve` takes it")]
    fn serve_call(
        &self,
        session: &SessionId,
        request: JsonRpcRequest<ClientRequest>,
    ) -> Result<Events, JsonRpcRequest<ClientRequest>> {
        let Some(calls) = &self.calls else { return Err(request) };
        let ClientRequest::CallToolRequest(call) = &request.request else { return Err(request) };
        if !calls.serves_beside(&call.params.name) {
            return Err(request);
        }
        let Some((events, call)) = self.sessions.start_call(session, &request) else { return Err(request) };
        let Some(call) = call else { return Ok(events) }; // refused; the events say why
        let JsonRpcRequest { id, request: mut tool_call, .. } = request;
        let mut context = RequestContext::new(id.clone(), call.peer.clone());
        context.ct = call.cancel.clone();
        context.meta = std::mem::take(tool_call.get_meta_mut());
        context.extensions = std::mem::take(tool_call.extensions_mut());
        let result = calls.clone().call(tool_call, context);
        let mut served = Box::pin(
            async move {
                call.answer(match result.await {
                    Ok(result) => JsonRpcMessage::response(result, id),
                    Err(error) => JsonRpcMessage::error(error, Some(id)),
                });
            }
            .in_current_span(),
        );
        if (&mut served).now_or_never().is_none() {
            tokio::spawn(served);
        }
        Ok(events)
    }

    /// The whole answer if the session gives it within the hold; otherwise
    /// the stream, kept alive while it is quiet, ending at shutdown.
    async fn answer(&self, mut events: Events) -> Response<Body> {
        // Most answers are all there already: those are encoded into one
        // buffer, with no timer and no frame of their own.
        let mut ready = Vec::with_capacity(512);
        let ended = loop {
            match events.next().now_or_never() {
                Some(Some(event)) => {
                    encode_into(&mut ready, &event);
                    if asks_or_tells(&event) {
                        break false; // it must not wait for the rest
                    }
                }
                Some(None) => break true,
                None => break false,
            }
        };
        let gathered = if ended {
            Gathered::Whole(Bytes::from(ready))
        } else {
            let ready = (!ready.is_empty()).then(|| Bytes::from(ready));
            let events = futures::stream::iter(ready).chain(events.map(|event| encode(&event)));
            whole_answer::gather_events(events.map(Ok::<_, Infallible>), whole_answer::HOLD).await
        };
        let body = match gathered {
            Gathered::Whole(bytes) => Body::from(bytes),
            Gathered::Streaming { held, rest } => {
                let rest = keep_alive(rest, self.keep_alive).take_until(self.shutdown.clone().cancelled_owned());
                Body::from_stream(futures::stream::iter([Ok::<_, Infallible>(held)]).chain(rest))
            }
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

/// The message in `body`, read as rmcp reads it. rmcp tries a request
/// against every kind of request in turn, from a buffered copy of the
/// whole message; a tool call, nearly every request, is read directly, and
/// anything that does not read so is left to rmcp's reading, so the result
/// is the same.
fn parse(body: &[u8]) -> serde_json::Result<ClientJsonRpcMessage> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        jsonrpc: JsonRpcVersion2_0,
        id: RequestId,
        #[serde(borrow)]
        method: std::borrow::Cow<'a, str>,
        // rmcp refuses a message with these beside a method.
        result: Option<serde::de::IgnoredAny>,
        error: Option<serde::de::IgnoredAny>,
    }
    if let Ok(Envelope { jsonrpc, id, method, result: None, error: None }) = serde_json::from_slice(body)
        && method == "tools/call"
        && let Ok(call) = serde_json::from_slice::<CallToolRequest>(body)
    {
        return Ok(JsonRpcMessage::Request(JsonRpcRequest {
            jsonrpc,
            id,
            request: ClientRequest::CallToolRequest(call),
        }));
    }
    serde_json::from_slice(body)
}

/// A request of the session-based revisions that names no protocol version
/// of its own; the handshake and `server/discover` are rmcp's.
fn is_plain(request: &ClientRequest) -> bool {
    !matches!(request, ClientRequest::InitializeRequest(_) | ClientRequest::DiscoverRequest(_))
        && request.get_meta().protocol_version().is_none()
}

/// A known revision from before sessions were dropped (2026-07-28); those
/// also predate the standard headers rmcp checks against the body.
fn is_session_revision(version: &str) -> bool {
    version < ProtocolVersion::V_2026_07_28.as_str()
        && version < ProtocolVersion::STANDARD_HEADERS.as_str()
        && ProtocolVersion::KNOWN_VERSIONS.iter().any(|known| known.as_str() == version)
}

/// An `Accept` that lists both types with no parameters; one with weights
/// is left to rmcp's full reading.
fn accepts_json_and_events(accept: &str) -> bool {
    let (mut json, mut events) = (false, false);
    for range in accept.split(',').map(str::trim) {
        if range.contains(';') {
            return false;
        }
        json |= range.eq_ignore_ascii_case(JSON);
        events |= range.eq_ignore_ascii_case(EVENT_STREAM);
    }
    json && events
}

fn essence(media_type: &str) -> &str {
    media_type.split_once(';').map_or(media_type, |(essence, _)| essence).trim()
}

/// One event as an SSE frame, laid out as rmcp writes it.
fn encode(event: &ServerSseMessage) -> Bytes {
    let mut frame = Vec::with_capacity(256);
    encode_into(&mut frame, event);
    frame.into()
}

fn encode_into(frame: &mut Vec<u8>, event: &ServerSseMessage) {
    use std::io::Write as _;
    frame.extend_from_slice(b"data: ");
    if let Some(message) = &event.message {
        serde_json::to_writer(&mut *frame, message.as_ref()).expect("a server message is JSON");
    }
    frame.push(b'\n');
    if let Some(id) = &event.event_id {
        frame.extend_from_slice(b"id: ");
        frame.extend_from_slice(id.as_bytes());
        frame.push(b'\n');
    }
    if let Some(retry) = event.retry {
        writeln!(frame, "retry: {}", retry.as_millis()).expect("writing to memory");
    }
    frame.push(b'\n');
}

/// Whether an event carries a request for the client or a notification:
/// news that is sent at once rather than held with the answer.
fn asks_or_tells(event: &ServerSseMessage) -> bool {
    event
        .message
        .as_deref()
        .is_some_and(|message| matches!(message, JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_)))
}

/// `frames`, with an empty comment after every `every` without one.
fn keep_alive<S>(frames: S, every: Option<Duration>) -> impl Stream<Item = Result<Bytes, Infallible>> + Send
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + Unpin,
{
    let every = every.unwrap_or(Duration::MAX);
    futures::stream::unfold(frames, move |mut frames| async move {
        match tokio::time::timeout(every, frames.next()).await {
            Ok(frame) => frame.map(|frame| (frame, frames)),
            Err(_quiet) => Some((Ok(Bytes::from_static(KEEP_ALIVE)), frames)),
        }
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use rmcp::model::ServerJsonRpcMessage;
    use rmcp::transport::Transport;
    use rmcp::transport::streamable_http_server::session::SessionManager;
    use serde_json::json;

    use super::*;
    use crate::session_routes::{IDLE_TIMEOUT, SessionTransport};

    const LIMIT: usize = 4096;

    /// Posts over a session past its handshake, and the service's side of it.
    async fn live_session() -> (SessionPosts, SessionId, SessionTransport) {
        let sessions = Arc::new(InlineSessions::new(IDLE_TIMEOUT, Some(Duration::from_secs(3))));
        let (id, mut service) = sessions.create_session().await.expect("session");
        let initialize = serde_json::from_value(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .expect("initialize");
        let serve = async {
            service.receive().await.expect("the handshake");
            let result = json!({"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}});
            service.send(server(json!({"jsonrpc": "2.0", "id": 0, "result": result}))).await.expect("send");
        };
        let (answered, ()) = tokio::join!(sessions.initialize_session(&id, initialize), serve);
        answered.expect("initialized");
        let posts = SessionPosts::new(sessions, vec!["localhost".into()], LIMIT, None, CancellationToken::new());
        (posts, id, service)
    }

    fn server(message: serde_json::Value) -> ServerJsonRpcMessage {
        serde_json::from_value(message).expect("a server message")
    }

    fn post(session: &SessionId, body: &str, edit: impl FnOnce(&mut HeaderMap)) -> Request {
        let mut request = Request::post("/mcp")
            .header(header::HOST, "localhost:8080")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_LENGTH, body.len())
            .header(PROTOCOL_VERSION_HEADER, "2025-06-18")
            .header(SESSION_HEADER, session.as_ref())
            .body(Body::from(body.to_owned()))
            .expect("request");
        edit(request.headers_mut());
        request
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{}}}"#;

    #[tokio::test]
    async fn a_live_sessions_request_is_answered_whole() {
        let (posts, session, mut service) = live_session().await;
        let answer = async {
            let Some(JsonRpcMessage::Request(request)) = service.receive().await else { panic!("the call") };
            let parts = request.request.extensions().get::<axum::http::request::Parts>().expect("the HTTP parts");
            assert_eq!(parts.headers[SESSION_HEADER], session.as_ref(), "the handler sees the request's headers");
            service.send(server(json!({"jsonrpc": "2.0", "id": 7, "result": {"content": []}}))).await.expect("send");
        };
        let (served, ()) = tokio::join!(posts.serve(post(&session, CALL, |_| {})), answer);
        let response = served.expect("served here, not by rmcp");
        assert_eq!(response.headers()[header::CONTENT_TYPE], EVENT_STREAM);
        let body = axum::body::to_bytes(response.into_body(), LIMIT).await.expect("body");
        assert_eq!(
            std::str::from_utf8(&body).expect("text"),
            "data: \nid: 0/0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\nid: 1/0\n\n"
        );
    }

    #[tokio::test]
    async fn anything_unusual_is_left_to_rmcp_with_its_body_intact() {
        let (posts, session, _service) = live_session().await;
        let unknown = SessionId::from("no-such-session");
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let with_version = r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-06-18"}}}"#;
        let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let cases: Vec<(&str, Request)> = vec![
            ("an unknown session", post(&unknown, CALL, |_| {})),
            (
                "a weighted Accept",
                post(&session, CALL, |h| {
                    h.insert(header::ACCEPT, HeaderValue::from_static("application/json;q=1, text/event-stream"));
                }),
            ),
            (
                "an Origin",
                post(&session, CALL, |h| {
                    h.insert(header::ORIGIN, HeaderValue::from_static("http://localhost:3000"));
                }),
            ),
            (
                "a Host not listed",
                post(&session, CALL, |h| {
                    h.insert(header::HOST, HeaderValue::from_static("evil.example.com"));
                }),
            ),
            (
                "the sessionless revision",
                post(&session, CALL, |h| {
                    h.insert(PROTOCOL_VERSION_HEADER, HeaderValue::from_static("2026-07-28"));
                }),
            ),
            (
                "no protocol version",
                post(&session, CALL, |h| {
                    h.remove(PROTOCOL_VERSION_HEADER);
                }),
            ),
            (
                "no length",
                post(&session, CALL, |h| {
                    h.remove(header::CONTENT_LENGTH);
                }),
            ),
            ("a body over the limit", post(&session, &format!("{{\"pad\":\"{}\"}}", "x".repeat(LIMIT)), |_| {})),
            ("not JSON", post(&session, "{not json", |_| {})),
            ("a notification", post(&session, notification, |_| {})),
            ("the handshake", post(&session, initialize, |_| {})),
            ("a request naming its own version", post(&session, with_version, |_| {})),
        ];
        for (case, request) in cases {
            let sent = request.headers().get(header::CONTENT_LENGTH).cloned();
            let Err(declined) = posts.serve(request).await else { panic!("{case}: served here") };
            let body = axum::body::to_bytes(declined.into_body(), 2 * LIMIT).await.expect("body");
            if let Some(length) = sent {
                assert_eq!(length.to_str().expect("length"), body.len().to_string(), "{case}: the body is whole");
            }
        }
    }

    #[test]
    fn a_tool_call_reads_as_rmcp_reads_it() {
        let bodies = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"n":1.5,"s":"x"}}}"#,
            r#"{"id":"a","method":"tools/call","jsonrpc":"2.0","params":{"name":"t","_meta":{"progressToken":"p"}}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t"},"result":{}}"#,
            r#"{"jsonrpc":"1.0","id":4,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}"#,
        ];
        for body in bodies {
            let ours = parse(body.as_bytes()).map(|message| serde_json::to_value(message).expect("json"));
            let rmcps = serde_json::from_str::<ClientJsonRpcMessage>(body)
                .map(|message| serde_json::to_value(message).expect("json"));
            assert_eq!(ours.as_ref().ok(), rmcps.as_ref().ok(), "{body}");
            assert_eq!(ours.is_err(), rmcps.is_err(), "{body}");
        }
        let Ok(JsonRpcMessage::Request(call)) = parse(bodies[1].as_bytes()) else { panic!("a request") };
        assert!(matches!(call.request, ClientRequest::CallToolRequest(_)), "a tool call");
        assert!(call.request.get_meta().get_progress_token().is_some(), "the progress token reaches the handler");
    }

    #[test]
    fn only_plain_accept_headers_are_read_here() {
        assert!(accepts_json_and_events("application/json, text/event-stream"));
        assert!(accepts_json_and_events("text/event-stream,APPLICATION/JSON"));
        assert!(!accepts_json_and_events("application/json"));
        assert!(!accepts_json_and_events("application/json;q=0, text/event-stream"), "weights are rmcp's");
        assert!(!accepts_json_and_events("*/*"));
    }

    #[test]
    fn only_the_session_revisions_are_served_here() {
        for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
            assert!(is_session_revision(version), "{version}");
        }
        for version in ["2026-07-28", "2024-01-01", "2025-06-18x", ""] {
            assert!(!is_session_revision(version), "{version}");
        }
    }

    #[test]
    fn an_event_is_framed_as_rmcp_frames_it() {
        let answer: rmcp::model::ServerJsonRpcMessage =
            serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {}})).expect("answer");
        let mut event = ServerSseMessage::from_message(answer);
        event.event_id = Some("1/0".into());
        assert_eq!(&encode(&event)[..], b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: 1/0\n\n");
        let mut priming = ServerSseMessage::retry(Duration::from_secs(3));
        priming.event_id = Some("0/0".into());
        assert_eq!(&encode(&priming)[..], b"data: \nid: 0/0\nretry: 3000\n\n");
    }

    #[tokio::test]
    async fn a_quiet_stream_is_kept_alive_until_its_next_frame() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let frames = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver);
        let mut stream = Box::pin(keep_alive(frames, Some(Duration::from_millis(20))));
        let quiet = stream.next().await.expect("a keep-alive").expect("frame");
        assert_eq!(&quiet[..], KEEP_ALIVE);
        sender.send(Ok(Bytes::from_static(b"data: {}\n\n"))).expect("send");
        assert_eq!(&stream.next().await.expect("the event").expect("frame")[..], b"data: {}\n\n");
        drop(sender);
        assert!(stream.next().await.is_none(), "it ends with its frames");
    }
}
