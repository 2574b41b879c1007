//! A quick Streamable HTTP answer goes out in one write.
//!
//! rmcp returns a POST's SSE response head before the handler has run, then
//! streams a priming event and the answer. hyper flushes each part as it
//! comes, so one tool call cost the server two socket writes and the client
//! two wake-ups. Holding the head briefly lets an answer that is complete by
//! then go out whole, with a `Content-Length`; a slower one streams as
//! before, from the held events on.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, header};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// How long the head waits for the stream to end: long enough for a quick
/// tool, short enough that a slow tool's client soon has its stream and the
/// priming event it would resume from.
pub const HOLD: Duration = Duration::from_millis(50);

/// The same response, whole if its event stream ends within `hold`.
pub async fn gather(response: Response<Body>, hold: Duration) -> Response<Body> {
    let streams_events = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if !streams_events {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match gather_events(body.into_data_stream(), hold).await {
        Gathered::Whole(whole) => Body::from(whole),
        Gathered::Streaming { held, rest } => Body::from_stream(futures::stream::iter([Ok(held)]).chain(rest)),
    };
    Response::from_parts(parts, body)
}

/// An event stream, as far as [`gather_events`] read it.
pub enum Gathered<S> {
    /// It ended within the hold: every event, in one buffer.
    Whole(Bytes),
    /// It goes on: the events read so far, then the rest.
    Streaming { held: Bytes, rest: S },
}

/// The frames after the held ones: a failed frame, if one ended the hold,
/// then the stream.
pub type Rest<S, E> = futures::stream::Chain<futures::stream::Iter<std::option::IntoIter<Result<Bytes, E>>>, S>;

/// Reads SSE frames until the stream ends or `hold` passes, or a frame that
/// must not wait comes. A failed frame ends the hold; it stays in the rest.
pub async fn gather_events<S, E>(mut events: S, hold: Duration) -> Gathered<Rest<S, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut held = BytesMut::new();
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    let failure = loop {
        tokio::select! {
            biased;
            event = events.next() => match event {
                None => return Gathered::Whole(held.freeze()),
                Some(Ok(bytes)) => {
                    held.extend_from_slice(&bytes);
                    // A request may need the client's answer before the stream
                    // can end (elicitation, sampling), and a notification is
                    // news: neither waits.
                    if names_a_method(&bytes) {
                        break None;
                    }
                }
                Some(Err(err)) => break Some(Err(err)),
            },
            () = &mut deadline => break None,
        }
    };
    Gathered::Streaming { held: held.freeze(), rest: futures::stream::iter(failure).chain(events) }
}

/// Whether an event carries a request or notification. Quotes inside JSON
/// strings are escaped, so `"method":` is a key; one nested in an answer only
/// ends the hold early.
fn names_a_method(event: &[u8]) -> bool {
    event.windows(b"\"method\":".len()).any(|window| window == b"\"method\":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use bytes::Bytes;

    fn event_stream(
        events: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    ) -> Response<Body> {
        let mut response = Response::new(Body::from_stream(events));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response
    }

    async fn frames(response: Response<Body>) -> Vec<Bytes> {
        response.into_body().into_data_stream().map(|frame| frame.expect("frame")).collect().await
    }

    #[tokio::test]
    async fn a_stream_that_ends_in_time_is_one_frame_with_its_length() {
        const PRIMING: &str = "data:\nid: 0\n\n";
        const ANSWER: &str = "data: {}\nid: 1\n\n";
        let events = futures::stream::iter([PRIMING, ANSWER]).map(|event| Ok(Bytes::from_static(event.as_bytes())));
        let response = gather(event_stream(events), HOLD).await;
        let whole = format!("{PRIMING}{ANSWER}");
        assert_eq!(axum::body::HttpBody::size_hint(response.body()).exact(), Some(whole.len() as u64));
        assert_eq!(frames(response).await, [Bytes::from(whole)]);
    }

    #[tokio::test]
    async fn a_slow_stream_goes_on_streaming_after_the_hold() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        sender.send(Ok(Bytes::from_static(b"data:\n\n"))).expect("send");
        let response = gather(
            event_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(receiver)),
            Duration::from_millis(10),
        )
        .await;
        assert_eq!(axum::body::HttpBody::size_hint(response.body()).exact(), None, "still a stream");
        sender.send(Ok(Bytes::from_static(b"data: {}\n\n"))).expect("send");
        drop(sender);
        assert_eq!(frames(response).await, [Bytes::from_static(b"data:\n\n"), Bytes::from_static(b"data: {}\n\n")]);
    }

    #[tokio::test]
    async fn a_request_for_the_client_is_not_held() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let elicit = r#"data: {"jsonrpc":"2.0","id":0,"method":"elicitation/create","params":{}}"#;
        sender.send(Ok(Bytes::from(format!("{elicit}\n\n")))).expect("send");
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver);
        let held_for_an_hour = gather(event_stream(stream), Duration::from_secs(3600));
        let response = tokio::time::timeout(Duration::from_secs(5), held_for_an_hour).await.expect("not held");
        drop(sender);
        assert_eq!(frames(response).await, [Bytes::from(format!("{elicit}\n\n"))]);
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        let response = Response::new(Body::from("{\"jsonrpc\":\"2.0\"}"));
        let gathered = gather(response, HOLD).await;
        assert!(gathered.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(frames(gathered).await, [Bytes::from_static(b"{\"jsonrpc\":\"2.0\"}")]);
    }
}
