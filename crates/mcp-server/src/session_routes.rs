//! Streamable HTTP sessions whose messages are routed inline.
//!
//! rmcp's `LocalSessionManager` runs a worker task per session: every POST
//! asks it twice (open a stream, then take the message) and every answer
//! passes through it on the way out, four task hops per tool call besides
//! the handler's own. [`InlineSessions`] keeps the same routing in a table
//! that the HTTP handler and the session's sender update under a lock, so an
//! answer goes from the handler's `send` straight to the stream that carries
//! it:
//! - a request's answer, its progress and the server's requests made while
//!   serving it go on the POST's stream, which ends with the answer;
//! - everything else goes on the GET stream, or one opened later;
//! - every event has an id, and the last [`REPLAY_EVENTS`] of each stream
//!   are held for a client that resumes with `Last-Event-ID`.
//!
//! A tool call can also be served beside the session's service
//! ([`InlineSessions::start_call`]), with the session's peer: its answer is
//! routed like the service's, and a cancellation or the session's end
//! cancels it as rmcp would.
//!
//! Channels are unbounded: an answer is never dropped and the session is
//! never blocked by one slow reader; a request's stream ends with its answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use futures::Stream;
use rmcp::model::{
    CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorData, GetExtensions,
    GetMeta, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, Notification, ProgressNotificationParam,
    ProgressToken, RequestId, ServerJsonRpcMessage, ServerNotification,
};
use rmcp::service::OriginatingRequestId;
use rmcp::transport::Transport;
use rmcp::transport::streamable_http_server::session::{RestoreOutcome, ServerSseMessage, SessionId, SessionManager};
use rmcp::{Peer, RoleServer};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

/// Events held per stream for `Last-Event-ID`, as rmcp holds them.
pub const REPLAY_EVENTS: usize = 16;
/// A session with no message either way for this long ends; a later request
/// restores it from the session store.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a finished stream's events stay for a late resume.
const FINISHED_STREAM_TTL: Duration = Duration::from_secs(60);
/// GET streams opened while one is live only keep their connection alive.
const MAX_IDLE_STREAMS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session {0} not found")]
    NotFound(SessionId),
    #[error("session {0} has ended")]
    Ended(SessionId),
    #[error("the first message of a session must be a request")]
    NotARequest,
    #[error("stream {0} of this session is gone")]
    StreamGone(u64),
    #[error("malformed event id {0:?}")]
    BadEventId(String),
}

pub type Events = UnboundedReceiverStream<ServerSseMessage>;

/// The sessions of this replica.
pub struct InlineSessions {
    sessions: RwLock<HashMap<SessionId, Arc<Session>>>,
    idle_timeout: Duration,
    /// The reconnect hint of each POST stream's priming event: the HTTP
    /// config's, which rmcp also gives the `initialize` answer's.
    sse_retry: Option<Duration>,
}

impl InlineSessions {
    pub fn new(idle_timeout: Duration, sse_retry: Option<Duration>) -> Self {
        Self { sessions: RwLock::default(), idle_timeout, sse_retry }
    }

    fn find(&self, id: &SessionId) -> Result<Arc<Session>, SessionError> {
        let sessions = self.sessions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.get(id).cloned().ok_or_else(|| SessionError::NotFound(id.clone()))
    }

    /// Whether the session is past its handshake: rmcp serializes requests
    /// for a session being restored until then.
    pub fn is_ready(&self, id: &SessionId) -> bool {
        self.find(id).is_ok_and(|session| session.ready.load(Ordering::Acquire))
    }

    /// Hands a message to the session; its answer, the progress and the
    /// requests made while serving it come on the stream returned.
    pub fn request_stream(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<Events, SessionError> {
        let session = self.find(id)?;
        let (events, opened) = {
            let mut routes = session.routes();
            match &message {
                JsonRpcMessage::Request(request) => routes.open_request_stream(request, self.sse_retry),
                _ => (routes.open_stream(self.sse_retry).1, true),
            }
        };
        if opened {
            session.push(message)?;
        }
        Ok(events)
    }

    /// Opens the stream of a request that the caller serves itself, beside
    /// the session's service, as [`Self::request_stream`] would for the
    /// service. `None` while the session's handler has not yet been given
    /// its peer; the request then goes to the service. The [`DirectCall`] is
    /// `None` when the request was refused; its stream carries why.
    pub fn start_call(
        &self,
        id: &SessionId,
        request: &JsonRpcRequest<ClientRequest>,
    ) -> Option<(Events, Option<DirectCall>)> {
        let session = self.find(id).ok()?;
        let peer = session.peer.0.get()?.clone();
        let mut routes = session.routes();
        routes.inbound.as_ref()?; // closed: the service path answers that
        routes.touched = Instant::now();
        let (events, opened) = routes.open_request_stream(request, self.sse_retry);
        if !opened {
            return Some((events, None));
        }
        let request_token = CancellationToken::new();
        routes.calls.insert(request.id.clone(), request_token.clone());
        drop(routes);
        let cancel = request_token.child_token();
        let call = DirectCall { session, id: request.id.clone(), peer, cancel, answered: false };
        Some((events, Some(call)))
    }

    fn open(&self, id: SessionId) -> SessionTransport {
        let (inbound, receiver) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            id: id.clone(),
            ready: AtomicBool::new(false),
            peer: PeerSlot::default(),
            routes: Mutex::new(Routes::new(inbound)),
        });
        self.sessions.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id, session.clone());
        SessionTransport { session, inbound: receiver, idle_timeout: self.idle_timeout }
    }
}

impl SessionManager for InlineSessions {
    type Error = SessionError;
    type Transport = SessionTransport;

    async fn create_session(&self) -> Result<(SessionId, SessionTransport), SessionError> {
        let id: SessionId = uuid::Uuid::new_v4().to_string().into();
        Ok((id.clone(), self.open(id)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, SessionError> {
        let session = self.find(id)?;
        let JsonRpcMessage::Request(request) = &message else { return Err(SessionError::NotARequest) };
        let (answer, answered) = oneshot::channel();
        session.routes().handshakes.insert(request.id.clone(), answer);
        session.push(message)?;
        let response = answered.await.map_err(|_| SessionError::Ended(id.clone()))?;
        session.ready.store(true, Ordering::Release);
        Ok(response)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionError> {
        Ok(self.is_ready(id))
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionError> {
        let removed = self.sessions.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
        if let Some(session) = removed {
            session.close();
        }
        Ok(())
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.request_stream(id, message)
    }

    async fn accept_message(&self, id: &SessionId, mut message: ClientJsonRpcMessage) -> Result<(), SessionError> {
        let session = self.find(id)?;
        if let JsonRpcMessage::Notification(notification) = &mut message {
            match &notification.notification {
                ClientNotification::CancelledNotification(cancelled) => {
                    if let Some(request_id) = &cancelled.params.request_id {
                        let mut routes = session.routes();
                        routes.release(&ResourceKey::Request(request_id.clone()));
                        if let Some(call) = routes.calls.remove(request_id) {
                            call.cancel();
                        }
                    }
                }
                // The handler hands its peer over when it sees this.
                ClientNotification::InitializedNotification(_) => {
                    notification.notification.extensions_mut().insert(session.peer.clone());
                }
                _ => {}
            }
        }
        session.push(message)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        Ok(self.find(id)?.routes().attach_common(Replay::Held))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        let session = self.find(id)?;
        let (index, stream) = parse_event_id(&last_event_id).ok_or(SessionError::BadEventId(last_event_id))?;
        let mut routes = session.routes();
        let Some(stream) = stream else { return Ok(routes.attach_common(Replay::After(index))) };
        let request_stream = routes.streams.get_mut(&stream).ok_or(SessionError::StreamGone(stream))?;
        let events = request_stream.log.attach(Replay::After(index));
        if request_stream.finished_at.is_some() {
            // Replayed in full: end the stream rather than leave it hanging.
            request_stream.log.reader = None;
        }
        Ok(events)
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<SessionTransport>, SessionError> {
        if self.find(&id).is_ok() {
            return Ok(RestoreOutcome::AlreadyPresent);
        }
        Ok(RestoreOutcome::Restored(self.open(id)))
    }
}

/// One session: the way in to its rmcp service, and the routes out.
pub struct Session {
    id: SessionId,
    ready: AtomicBool,
    peer: PeerSlot,
    routes: Mutex<Routes>,
}

/// Where a session's handler leaves its peer, for the calls served beside
/// its service. Handed to the handler in the extensions of the session's
/// `notifications/initialized`.
#[derive(Clone, Default)]
pub struct PeerSlot(Arc<OnceLock<Peer<RoleServer>>>);

impl PeerSlot {
    pub fn fill(&self, peer: Peer<RoleServer>) {
        // A session has one peer; a second handshake cannot replace it.
        let _ = self.0.set(peer);
    }
}

/// A tool call served beside its session's service: the session's peer
/// for its progress, a token that the client's cancellation or the
/// session's end cancels, and the way its answer is routed.
pub struct DirectCall {
    session: Arc<Session>,
    id: RequestId,
    pub peer: Peer<RoleServer>,
    pub cancel: CancellationToken,
    answered: bool,
}

impl DirectCall {
    /// Routes the call's answer like one of the service's, unless the
    /// call was cancelled: rmcp drops a cancelled request's answer too.
    pub fn answer(mut self, message: ServerJsonRpcMessage) {
        self.answered = true;
        self.session.finish_call(&self.id, message);
    }
}

impl Drop for DirectCall {
    /// A call that ends unanswered (its task panicked) must not leave its
    /// stream hanging.
    fn drop(&mut self) {
        if !self.answered {
            let error = ErrorData::internal_error("the call ended without an answer", None);
            self.session.finish_call(&self.id, JsonRpcMessage::error(error, Some(self.id.clone())));
        }
    }
}

impl Session {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, message: ClientJsonRpcMessage) -> Result<(), SessionError> {
        let mut routes = self.routes();
        routes.touched = Instant::now();
        match routes.inbound.as_ref() {
            Some(sender) if sender.send(message).is_ok() => Ok(()),
            _ => Err(SessionError::Ended(self.id.clone())),
        }
    }

    /// Ends the service (its receive sees the channel close), the calls
    /// served beside it, and every stream.
    fn close(&self) {
        let mut routes = self.routes();
        routes.inbound = None;
        for (_, call) in routes.calls.drain() {
            call.cancel();
        }
        routes.streams.clear();
        routes.resources.clear();
        routes.common.reader = None;
        routes.idle_streams.clear();
    }

    /// Sends a message of the service to the stream that carries it.
    fn deliver(&self, message: ServerJsonRpcMessage) -> Result<(), SessionError> {
        self.routes().deliver(message)
    }

    /// A direct call's answer, dropped if the call was cancelled meanwhile;
    /// its token is cancelled either way, as rmcp's are once answered.
    fn finish_call(&self, id: &RequestId, message: ServerJsonRpcMessage) {
        let mut routes = self.routes();
        let Some(call) = routes.calls.remove(id) else {
            tracing::debug!(%id, "dropping the answer of a cancelled call");
            return;
        };
        call.cancel();
        if let Err(err) = routes.deliver(message) {
            tracing::debug!(%id, error = %err, "a call's stream was gone before its answer");
        }
    }

    fn idle_for(&self) -> Duration {
        self.routes().touched.elapsed()
    }
}

impl Routes {
    /// Sends a message to the stream that carries it.
    fn deliver(&mut self, message: ServerJsonRpcMessage) -> Result<(), SessionError> {
        self.touched = Instant::now();
        let answered = match &message {
            JsonRpcMessage::Response(response) => Some(response.id.clone()),
            JsonRpcMessage::Error(error) => error.id.clone(),
            _ => None,
        };
        if let Some(id) = &answered
            && let Some(waiting) = self.handshakes.remove(id)
        {
            // The caller may have gone; the session then dies unused.
            let _ = waiting.send(message);
            return Ok(());
        }
        let delivered = match self.outbound(&message) {
            Outbound::Request { stream, ends } => match self.streams.get_mut(&stream) {
                Some(request_stream) => {
                    request_stream.log.push(ServerSseMessage::from_message(message));
                    if ends && let Some(finished) = self.streams.remove(&stream) {
                        for resource in finished.resources {
                            self.resources.remove(&resource);
                        }
                    }
                    Ok(())
                }
                None => Err(SessionError::StreamGone(stream)),
            },
            Outbound::Common => {
                self.common.push(ServerSseMessage::from_message(message));
                Ok(())
            }
        };
        if let Some(id) = answered {
            self.release(&ResourceKey::Request(id));
        }
        delivered
    }
}

/// The session's side of its rmcp service.
pub struct SessionTransport {
    session: Arc<Session>,
    inbound: mpsc::UnboundedReceiver<ClientJsonRpcMessage>,
    idle_timeout: Duration,
}

impl Transport<RoleServer> for SessionTransport {
    type Error = SessionError;

    fn send(
        &mut self,
        message: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        std::future::ready(self.session.deliver(message))
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let idle_for = self.session.idle_for();
            if idle_for >= self.idle_timeout {
                tracing::debug!(session = %self.session.id, "MCP session idle; closing it");
                return None;
            }
            if let Ok(message) = tokio::time::timeout(self.idle_timeout - idle_for, self.inbound.recv()).await {
                return message;
            }
        }
    }

    async fn close(&mut self) -> Result<(), SessionError> {
        self.inbound.close();
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ResourceKey {
    Request(RequestId),
    Progress(ProgressToken),
}

enum Outbound {
    Request { stream: u64, ends: bool },
    Common,
}

struct RequestStream {
    log: EventLog,
    resources: HashSet<ResourceKey>,
    finished_at: Option<Instant>,
}

struct Routes {
    /// The way in to the session's service; gone once the session closes.
    inbound: Option<mpsc::UnboundedSender<ClientJsonRpcMessage>>,
    next_stream: u64,
    streams: HashMap<u64, RequestStream>,
    resources: HashMap<ResourceKey, u64>,
    common: EventLog,
    /// GET streams opened while another was live.
    idle_streams: Vec<mpsc::UnboundedSender<ServerSseMessage>>,
    handshakes: HashMap<RequestId, oneshot::Sender<ServerJsonRpcMessage>>,
    /// The calls served beside the service, by request id: their answer
    /// tokens.
    calls: HashMap<RequestId, CancellationToken>,
    touched: Instant,
}

impl Routes {
    fn new(inbound: mpsc::UnboundedSender<ClientJsonRpcMessage>) -> Self {
        Self {
            inbound: Some(inbound),
            next_stream: 0,
            streams: HashMap::new(),
            resources: HashMap::new(),
            common: EventLog::new(None),
            idle_streams: Vec::new(),
            handshakes: HashMap::new(),
            calls: HashMap::new(),
            touched: Instant::now(),
        }
    }

    /// A request's stream, bound to its answer and progress; `false` when
    /// its id is already in flight, and the stream then ends at once with
    /// a refusal.
    fn open_request_stream(
        &mut self,
        request: &JsonRpcRequest<ClientRequest>,
        sse_retry: Option<Duration>,
    ) -> (Events, bool) {
        let (stream, events) = self.open_stream(sse_retry);
        let key = ResourceKey::Request(request.id.clone());
        if self.resources.contains_key(&key) {
            // Its answer could not be told from the other's: refuse it
            // rather than leave one of the two streams hanging.
            let message = format!("request id {} is already in use in this session", request.id);
            let refusal = JsonRpcMessage::error(ErrorData::invalid_request(message, None), Some(request.id.clone()));
            self.finish(stream, refusal);
            return (events, false);
        }
        self.bind(key, stream);
        if let Some(token) = request.request.get_meta().get_progress_token() {
            self.bind(ResourceKey::Progress(token), stream);
        }
        (events, true)
    }

    /// A new POST's stream, primed with an event the client can resume from.
    fn open_stream(&mut self, sse_retry: Option<Duration>) -> (u64, Events) {
        self.streams.retain(|_, stream| stream.finished_at.is_none_or(|at| at.elapsed() < FINISHED_STREAM_TTL));
        let id = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(1);
        let mut log = EventLog::new(Some(id));
        let events = log.attach(Replay::Held);
        if let Some(retry) = sse_retry {
            log.push(ServerSseMessage::retry(retry));
        }
        self.streams.insert(id, RequestStream { log, resources: HashSet::new(), finished_at: None });
        (id, events)
    }

    /// Ends a stream with its last message.
    fn finish(&mut self, stream: u64, last: ServerJsonRpcMessage) {
        if let Some(mut finished) = self.streams.remove(&stream) {
            finished.log.push(ServerSseMessage::from_message(last));
        }
    }

    fn bind(&mut self, resource: ResourceKey, stream: u64) {
        if let Some(request_stream) = self.streams.get_mut(&stream) {
            request_stream.resources.insert(resource.clone());
            self.resources.insert(resource, stream);
        }
    }

    /// Forgets a resource; a request's (answered or cancelled) finishes its
    /// stream, whose events stay for a late resume.
    fn release(&mut self, resource: &ResourceKey) {
        let Some(stream) = self.resources.remove(resource) else { return };
        if matches!(resource, ResourceKey::Progress(_)) {
            return;
        }
        let Some(request_stream) = self.streams.get_mut(&stream) else { return };
        request_stream.finished_at = Some(Instant::now());
        request_stream.log.reader = None;
        for other in std::mem::take(&mut request_stream.resources) {
            self.resources.remove(&other);
        }
    }

    /// The stream for a message, by the request it belongs to.
    fn outbound(&self, message: &ServerJsonRpcMessage) -> Outbound {
        let by_request = |id: &RequestId, ends| {
            self.resources.get(&ResourceKey::Request(id.clone())).map(|&stream| Outbound::Request { stream, ends })
        };
        let routed = match message {
            // SEP-2260: a request made while serving one rides that one's stream.
            JsonRpcMessage::Request(request) => request
                .request
                .extensions()
                .get::<OriginatingRequestId>()
                .and_then(|originating| by_request(&originating.0, false)),
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification:
                    ServerNotification::ProgressNotification(Notification {
                        params: ProgressNotificationParam { progress_token, .. },
                        ..
                    }),
                ..
            }) => self
                .resources
                .get(&ResourceKey::Progress(progress_token.clone()))
                .map(|&stream| Outbound::Request { stream, ends: false }),
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification:
                    ServerNotification::CancelledNotification(Notification {
                        params: CancelledNotificationParam { request_id: Some(id), .. },
                        ..
                    }),
                ..
            }) => by_request(id, false),
            JsonRpcMessage::Notification(_) => None,
            JsonRpcMessage::Response(response) => by_request(&response.id, true),
            JsonRpcMessage::Error(error) => error.id.as_ref().and_then(|id| by_request(id, true)),
        };
        routed.unwrap_or(Outbound::Common)
    }

    /// A GET stream: it becomes the session's stream if none is live (with
    /// the held events it missed), otherwise it only keeps its connection.
    fn attach_common(&mut self, replay: Replay) -> Events {
        if self.common.reader.as_ref().is_none_or(mpsc::UnboundedSender::is_closed) {
            return self.common.attach(replay);
        }
        self.idle_streams.retain(|stream| !stream.is_closed());
        if self.idle_streams.len() >= MAX_IDLE_STREAMS {
            self.idle_streams.remove(0);
        }
        let (sender, events) = mpsc::unbounded_channel();
        self.idle_streams.push(sender);
        UnboundedReceiverStream::new(events)
    }
}

enum Replay {
    Held,
    After(usize),
}

/// One stream's events: numbered, the last few held, sent to its reader
/// while it has one.
struct EventLog {
    stream: Option<u64>,
    next_index: usize,
    held: VecDeque<(usize, ServerSseMessage)>,
    reader: Option<mpsc::UnboundedSender<ServerSseMessage>>,
}

impl EventLog {
    fn new(stream: Option<u64>) -> Self {
        Self { stream, next_index: 0, held: VecDeque::new(), reader: None }
    }

    fn push(&mut self, mut event: ServerSseMessage) {
        let index = self.next_index;
        self.next_index += 1;
        event.event_id = Some(match self.stream {
            Some(stream) => format!("{index}/{stream}"),
            None => index.to_string(),
        });
        if self.held.len() == REPLAY_EVENTS {
            self.held.pop_front();
        }
        if let Some(reader) = &self.reader {
            // A reader that left is no loss: the event is held for its resume.
            let _ = reader.send(event.clone());
        }
        self.held.push_back((index, event));
    }

    /// A new reader, sent the held events it has not seen.
    fn attach(&mut self, replay: Replay) -> Events {
        let (reader, events) = mpsc::unbounded_channel();
        for (index, event) in &self.held {
            if let Replay::After(seen) = replay
                && *index <= seen
            {
                continue;
            }
            let _ = reader.send(event.clone());
        }
        self.reader = Some(reader);
        UnboundedReceiverStream::new(events)
    }
}

/// `index` or `index/stream`, as [`EventLog::push`] writes them.
fn parse_event_id(id: &str) -> Option<(usize, Option<u64>)> {
    match id.split_once('/') {
        Some((index, stream)) => Some((index.parse().ok()?, Some(stream.parse().ok()?))),
        None => Some((id.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};
    use serde_json::json;

    const RETRY: Duration = Duration::from_secs(3);

    fn client(message: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(message).expect("a client message")
    }

    fn server(message: serde_json::Value) -> ServerJsonRpcMessage {
        serde_json::from_value(message).expect("a server message")
    }

    fn answer(id: u64) -> ServerJsonRpcMessage {
        server(json!({"jsonrpc": "2.0", "id": id, "result": {"content": [], "isError": false}}))
    }

    fn progress(token: &str, progress: u32) -> ServerJsonRpcMessage {
        server(json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": progress}}))
    }

    fn list_changed() -> ServerJsonRpcMessage {
        server(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}))
    }

    fn call(id: u64, progress_token: &str) -> ClientJsonRpcMessage {
        client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "slow", "arguments": {}, "_meta": {"progressToken": progress_token}}}))
    }

    /// A session past its handshake, with the service's side of it.
    async fn session(sessions: &InlineSessions) -> (SessionId, SessionTransport) {
        let (id, mut service) = sessions.create_session().await.expect("session");
        assert!(!sessions.has_session(&id).await.expect("lookup"), "not before the handshake");
        let initialize = client(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
        let handshake = sessions.initialize_session(&id, initialize);
        let serve = async {
            assert!(matches!(service.receive().await, Some(JsonRpcMessage::Request(_))));
            let result = json!({"protocolVersion": "2025-06-18", "capabilities": {},
                "serverInfo": {"name": "s", "version": "1"}});
            service.send(server(json!({"jsonrpc": "2.0", "id": 0, "result": result}))).await.expect("send");
        };
        let (answered, ()) = tokio::join!(handshake, serve);
        assert!(matches!(answered.expect("initialized"), JsonRpcMessage::Response(_)));
        assert!(sessions.has_session(&id).await.expect("lookup"));
        (id, service)
    }

    /// The events a stream has now, and whether it has ended.
    fn drain(events: &mut (impl Stream<Item = ServerSseMessage> + Unpin)) -> (Vec<String>, bool) {
        let mut ids = Vec::new();
        loop {
            match events.next().now_or_never() {
                Some(Some(event)) => ids.push(event.event_id.expect("every event has an id")),
                Some(None) => return (ids, true),
                None => return (ids, false),
            }
        }
    }

    /// A session whose handler has been given a peer, as the real one is
    /// when it sees `notifications/initialized`.
    async fn session_with_peer(sessions: &InlineSessions) -> (SessionId, SessionTransport) {
        struct Quiet;
        impl rmcp::ServerHandler for Quiet {}
        let (id, mut service) = session(sessions).await;
        let initialized = client(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        sessions.accept_message(&id, initialized).await.expect("initialized");
        let Some(JsonRpcMessage::Notification(notification)) = service.receive().await else { panic!("initialized") };
        let slot = notification.notification.extensions().get::<PeerSlot>().expect("the handler is handed a slot");
        // Any peer will do: these tests only check that one is handed back.
        let (_, elsewhere) = sessions.create_session().await.expect("session");
        slot.fill(rmcp::service::serve_directly(Quiet, elsewhere, None).peer().clone());
        (id, service)
    }

    fn direct(id: u64, progress_token: &str) -> JsonRpcRequest<ClientRequest> {
        match call(id, progress_token) {
            JsonRpcMessage::Request(request) => request,
            _ => unreachable!("a call is a request"),
        }
    }

    #[tokio::test]
    async fn a_direct_call_waits_for_the_sessions_peer_then_is_routed_like_the_services() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, _service) = session(&sessions).await;
        assert!(sessions.start_call(&id, &direct(1, "p1")).is_none(), "no peer yet: the service serves it");

        let (id, mut service) = session_with_peer(&sessions).await;
        let mut get = sessions.create_standalone_stream(&id).await.expect("GET stream").boxed();
        let (mut post, call) = sessions.start_call(&id, &direct(7, "p7")).expect("served beside");
        let call = call.expect("accepted");
        service.send(progress("p7", 1)).await.expect("progress from the peer");
        assert_eq!(drain(&mut post), (vec!["0/0".to_owned(), "1/0".to_owned()], false), "priming, progress");
        call.answer(answer(7));
        assert_eq!(drain(&mut post), (vec!["2/0".to_owned()], true), "the answer ends the stream");
        assert!(service.receive().now_or_never().is_none(), "the service never sees the call");
        assert_eq!(drain(&mut get), (vec![], false));
    }

    #[tokio::test]
    async fn a_direct_calls_id_in_flight_is_refused_either_way() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session_with_peer(&sessions).await;
        let (_first, first) = sessions.start_call(&id, &direct(9, "a")).expect("served beside");
        let mut refused = sessions.create_stream(&id, call(9, "b")).await.expect("POST stream").boxed();
        assert!(drain(&mut refused).1, "the service's duplicate is refused");
        let (mut refused, second) = sessions.start_call(&id, &direct(9, "c")).expect("answered here");
        assert!(second.is_none() && drain(&mut refused).1, "and so is a direct duplicate");
        assert!(service.receive().now_or_never().is_none());
        drop(first);
    }

    #[tokio::test]
    async fn a_cancelled_direct_call_is_cancelled_and_its_late_answer_dropped() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, _service) = session_with_peer(&sessions).await;
        let mut get = sessions.create_standalone_stream(&id).await.expect("GET stream").boxed();
        let (mut post, call) = sessions.start_call(&id, &direct(5, "p5")).expect("served beside");
        let call = call.expect("accepted");
        let cancel = client(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 5, "reason": "user"}}));
        sessions.accept_message(&id, cancel).await.expect("cancel");
        assert!(call.cancel.is_cancelled(), "the handler sees the cancellation");
        assert!(drain(&mut post).1, "the stream ends");
        call.answer(answer(5));
        assert_eq!(drain(&mut get), (vec![], false), "the late answer goes nowhere");
    }

    #[tokio::test]
    async fn a_direct_call_ended_unanswered_ends_its_stream_with_an_error() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, _service) = session_with_peer(&sessions).await;
        let (post, call) = sessions.start_call(&id, &direct(6, "p6")).expect("served beside");
        drop(call);
        let events = tokio::time::timeout(Duration::from_secs(5), post.collect::<Vec<_>>()).await.expect("ends");
        let last = events.last().and_then(|event| event.message.as_deref()).expect("a message");
        let JsonRpcMessage::Error(error) = last else { panic!("an error, not {last:?}") };
        assert_eq!(error.error.code, rmcp::model::ErrorCode::INTERNAL_ERROR);
    }

    #[tokio::test]
    async fn a_closed_session_cancels_its_direct_calls() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, _service) = session_with_peer(&sessions).await;
        let (_post, call) = sessions.start_call(&id, &direct(2, "p2")).expect("served beside");
        let call = call.expect("accepted");
        sessions.close_session(&id).await.expect("close");
        assert!(call.cancel.is_cancelled());
        assert!(sessions.start_call(&id, &direct(3, "p3")).is_none(), "a gone session serves nothing");
    }

    #[tokio::test]
    async fn a_requests_stream_carries_its_progress_and_ends_with_its_answer() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut get = sessions.create_standalone_stream(&id).await.expect("GET stream").boxed();
        let mut post = sessions.create_stream(&id, call(7, "p7")).await.expect("POST stream").boxed();
        assert!(matches!(service.receive().await, Some(JsonRpcMessage::Request(_))), "the call reaches the service");

        service.send(progress("p7", 1)).await.expect("progress");
        service.send(list_changed()).await.expect("notification");
        assert_eq!(drain(&mut post), (vec!["0/0".to_owned(), "1/0".to_owned()], false), "priming, progress");
        assert_eq!(drain(&mut get), (vec!["0".to_owned()], false), "what no request owns goes to GET");

        service.send(answer(7)).await.expect("answer");
        assert_eq!(drain(&mut post), (vec!["2/0".to_owned()], true));
        service.send(progress("p7", 2)).await.expect("late progress");
        assert_eq!(drain(&mut get), (vec!["1".to_owned()], false), "a finished request's progress goes to GET");
    }

    #[tokio::test]
    async fn a_resumed_stream_replays_only_what_came_after_the_last_event_seen() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut post = sessions.create_stream(&id, call(3, "p3")).await.expect("POST stream").boxed();
        service.send(progress("p3", 1)).await.expect("progress");
        service.send(progress("p3", 2)).await.expect("progress");
        assert_eq!(drain(&mut post).0, ["0/0", "1/0", "2/0"]);
        drop(post); // the connection broke after event 1/0 reached the client

        let mut resumed = sessions.resume(&id, "1/0".to_owned()).await.expect("resume").boxed();
        assert_eq!(drain(&mut resumed), (vec!["2/0".to_owned()], false));
        service.send(answer(3)).await.expect("answer");
        assert_eq!(drain(&mut resumed), (vec!["3/0".to_owned()], true));

        assert!(matches!(sessions.resume(&id, "x/0".to_owned()).await, Err(SessionError::BadEventId(_))));
        assert!(matches!(sessions.resume(&id, "0/9".to_owned()).await, Err(SessionError::StreamGone(9))));
    }

    #[tokio::test]
    async fn a_cancelled_request_ends_its_stream_which_stays_resumable() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut post = sessions.create_stream(&id, call(5, "p5")).await.expect("POST stream").boxed();
        service.send(progress("p5", 1)).await.expect("progress");
        let cancel = client(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 5, "reason": "user"}}));
        sessions.accept_message(&id, cancel).await.expect("cancel");
        assert_eq!(drain(&mut post), (vec!["0/0".to_owned(), "1/0".to_owned()], true));
        let mut resumed = sessions.resume(&id, "0/0".to_owned()).await.expect("resume").boxed();
        assert_eq!(drain(&mut resumed), (vec!["1/0".to_owned()], true), "replayed, then ended");
    }

    #[tokio::test]
    async fn a_second_get_stream_only_keeps_its_connection() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut first = sessions.create_standalone_stream(&id).await.expect("GET").boxed();
        let mut second = sessions.create_standalone_stream(&id).await.expect("GET").boxed();
        service.send(list_changed()).await.expect("notification");
        assert_eq!(drain(&mut first), (vec!["0".to_owned()], false));
        assert_eq!(drain(&mut second), (vec![], false));
        drop(first);
        let mut third = sessions.create_standalone_stream(&id).await.expect("GET").boxed();
        assert_eq!(drain(&mut third), (vec!["0".to_owned()], false), "the new live stream gets what was held");
    }

    #[tokio::test]
    async fn a_session_ends_a_full_timeout_after_its_last_message_either_way() {
        const IDLE: Duration = Duration::from_millis(300);
        let sessions = InlineSessions::new(IDLE, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut post = sessions.create_stream(&id, call(4, "p4")).await.expect("POST stream").boxed();
        assert!(service.receive().await.is_some(), "the request arrives");
        tokio::time::sleep(IDLE * 2 / 3).await;
        service.send(progress("p4", 1)).await.expect("progress");
        let last_message = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(10), service.receive()).await;
        assert!(matches!(ended, Ok(None)), "the session ends once idle");
        assert!(last_message.elapsed() >= IDLE, "an outgoing message counts as activity");
        assert_eq!(drain(&mut post).0, ["0/0", "1/0"]);
    }

    #[tokio::test]
    async fn a_request_id_already_in_flight_is_refused_and_the_first_keeps_its_answer() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut first = sessions.create_stream(&id, call(9, "a")).await.expect("POST stream").boxed();
        assert!(service.receive().await.is_some());
        let mut second = sessions.create_stream(&id, call(9, "b")).await.expect("POST stream").boxed();
        let ends = tokio::time::timeout(Duration::from_secs(5), second.by_ref().collect::<Vec<_>>());
        let refusal = ends.await.expect("the duplicate's stream ends at once");
        let last = refusal.last().and_then(|event| event.message.as_deref()).expect("a message");
        let JsonRpcMessage::Error(error) = last else { panic!("an error, not {last:?}") };
        assert_eq!(error.error.code, rmcp::model::ErrorCode::INVALID_REQUEST);
        assert!(service.receive().now_or_never().is_none(), "the duplicate never reaches the service");

        service.send(answer(9)).await.expect("answer");
        assert_eq!(
            drain(&mut first),
            (vec!["0/0".to_owned(), "1/0".to_owned()], true),
            "the first request's stream gets the answer"
        );
    }

    #[tokio::test]
    async fn a_closed_session_ends_its_service_and_streams() {
        let sessions = InlineSessions::new(IDLE_TIMEOUT, Some(RETRY));
        let (id, mut service) = session(&sessions).await;
        let mut post = sessions.create_stream(&id, call(1, "p1")).await.expect("POST stream").boxed();
        assert!(service.receive().await.is_some());
        sessions.close_session(&id).await.expect("close");
        assert!(service.receive().await.is_none(), "the service sees the end");
        assert!(drain(&mut post).1, "the stream ends");
        assert!(!sessions.has_session(&id).await.expect("lookup"));
        assert!(matches!(sessions.create_stream(&id, call(2, "p2")).await, Err(SessionError::NotFound(_))));
    }
}
