//! HTTP/1.1 over a hot function's stdin and stdout (`format: http`): the
//! client side of the contract, one request at a time on one connection.
//!
//! Shared by the hot containers of a node (ferrite-engine) and by the
//! watchdog, which runs the same kind of function as a child process inside
//! a Swarm service's task: both hand a byte stream to [`handshake`] and send
//! each call with [`exchange`], so a function behaves the same under both.
//! A node's sync hot calls may instead take the answer's head with [`send`]
//! and pass a chunked body on as it comes ([`Framing`]); everything else
//! reads it whole, capped ([`collect`]).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
pub use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;

/// What one exchange with a hot function gave.
#[derive(Debug)]
pub enum HotOutcome {
    /// The function's own answer (any status).
    Response(http::Response<Bytes>),
    /// Past the call's deadline (set by the caller: [`exchange`] has none);
    /// the function is not to be used again.
    TimedOut,
    /// The function died or broke the HTTP framing; it is not to be used
    /// again.
    Broken(String),
    /// The response body was over the cap; the function is not to be used
    /// again.
    TooLarge,
}

/// The connection to a function could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("HTTP handshake with the function: {0}")]
pub struct HandshakeError(#[source] hyper::Error);

/// The sending half of a connection to a hot function.
pub type Sender = SendRequest<Full<Bytes>>;

/// Open an HTTP/1.1 connection over `io` (the function's stdout to read,
/// its stdin to write). The connection's driver runs on `tracker` until the
/// function's output ends or the [`Sender`] is dropped.
pub async fn handshake<T>(io: T, tracker: &TaskTracker) -> Result<Sender, HandshakeError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(HandshakeError)?;
    tracker.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "hot function connection ended");
        }
    });
    Ok(sender)
}

/// How a function's answer says where its body ends, which decides how it
/// is passed on (docs/streaming.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`, or a status that has no body (1xx, 204, 304): read
    /// whole, within the response cap.
    Sized,
    /// `Transfer-Encoding` ending in `chunked` (which wins over a
    /// `Content-Length`, as RFC 9112 says): the function writes its answer
    /// as it goes, so it may be passed on as it comes.
    Chunked,
}

/// The function answered without saying where its body ends: such a body
/// could only end when the function exits, so the function is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the function's response has no Content-Length")]
pub struct Unframed;

/// The framing of an answer with `status` and `headers`.
pub fn framing(status: http::StatusCode, headers: &http::HeaderMap) -> Result<Framing, Unframed> {
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // The last coding applied says where the body ends.
        .rfind(|coding| !coding.is_empty())
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
    if chunked {
        return Ok(Framing::Chunked);
    }
    if headers.contains_key(http::header::CONTENT_LENGTH)
        || status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Sized);
    }
    Err(Unframed)
}

/// The function died or broke the HTTP framing before its answer's head
/// was whole; it is not to be used again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Broken(pub String);

impl From<Broken> for HotOutcome {
    fn from(broken: Broken) -> HotOutcome {
        HotOutcome::Broken(broken.0)
    }
}

/// An answer whose head has come; its body comes as the function writes
/// it.
#[derive(Debug)]
pub struct Head {
    pub response: http::Response<Incoming>,
    pub framing: Framing,
}

/// Send one request and read its answer's head, checked for framing.
/// Never times out: the caller owns the deadline.
pub async fn send(sender: &mut Sender, request: http::Request<Bytes>) -> Result<Head, Broken> {
    if let Err(e) = sender.ready().await {
        return Err(Broken(format!("the function is gone: {e}")));
    }
    let response = sender
        .send_request(request.map(Full::new))
        .await
        .map_err(|e| Broken(format!("the function did not answer with valid HTTP: {e}")))?;
    let framing = framing(response.status(), response.headers())
        .map_err(|unframed| Broken(unframed.to_string()))?;
    Ok(Head { response, framing })
}

/// The whole body of `response`, at most `cap` bytes, whatever its framing.
pub async fn collect(response: http::Response<Incoming>, cap: usize) -> HotOutcome {
    let (parts, body) = response.into_parts();
    match Limited::new(body, cap).collect().await {
        Ok(body) => HotOutcome::Response(http::Response::from_parts(parts, body.to_bytes())),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            HotOutcome::TooLarge
        }
        Err(e) => HotOutcome::Broken(format!("the function's response broke off: {e}")),
    }
}

/// One request and its whole response (at most `cap` bytes of body),
/// checked for framing ([`send`], then [`collect`]): for callers that need
/// the whole answer (async calls, the watchdog).
/// Never [`HotOutcome::TimedOut`]: the caller owns the deadline.
pub async fn exchange(
    sender: &mut Sender,
    request: http::Request<Bytes>,
    cap: usize,
) -> HotOutcome {
    match send(sender, request).await {
        Ok(head) => collect(head.response, cap).await,
        Err(broken) => broken.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake function on the other end of an in-memory pipe: reads one
    /// request's head and answers `reply` verbatim.
    async fn call_with_reply(reply: &'static [u8], cap: usize) -> HotOutcome {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let tracker = TaskTracker::new();
        let mut sender = handshake(ours, &tracker).await.unwrap();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match theirs.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = theirs.write_all(reply).await;
            let _ = theirs.shutdown().await;
        });
        let request = http::Request::post("/x").body(Bytes::new()).unwrap();
        exchange(&mut sender, request, cap).await
    }

    #[tokio::test]
    async fn status_headers_and_body_come_back() {
        let outcome = call_with_reply(
            b"HTTP/1.1 418 I'm a teapot\r\nX-Fn: yes\r\nContent-Length: 3\r\n\r\nhey",
            1024,
        )
        .await;
        let HotOutcome::Response(response) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(response.status(), 418);
        assert_eq!(response.headers()["x-fn"], "yes");
        assert_eq!(response.body().as_ref(), b"hey");
    }

    #[tokio::test]
    async fn unframed_oversized_and_garbage_are_told_apart() {
        let unframed = call_with_reply(b"HTTP/1.1 200 OK\r\n\r\nhey", 1024).await;
        assert!(
            matches!(&unframed, HotOutcome::Broken(m) if m.contains("Content-Length")),
            "{unframed:?}"
        );
        let large = call_with_reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            4,
        )
        .await;
        assert!(matches!(large, HotOutcome::TooLarge), "{large:?}");
        let garbage = call_with_reply(b"hello there\r\n\r\n", 1024).await;
        assert!(matches!(garbage, HotOutcome::Broken(_)), "{garbage:?}");
    }

    #[test]
    fn chunked_answers_may_stream_and_sized_ones_are_read_whole() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        let ok = http::StatusCode::OK;
        for (status, pairs, expected) in [
            (
                ok,
                vec![("transfer-encoding", "chunked")],
                Ok(Framing::Chunked),
            ),
            (
                ok,
                vec![("transfer-encoding", "Chunked")],
                Ok(Framing::Chunked),
            ),
            (
                ok,
                vec![("transfer-encoding", "gzip, chunked")],
                Ok(Framing::Chunked),
            ),
            (
                ok,
                vec![
                    ("transfer-encoding", "gzip"),
                    ("transfer-encoding", "chunked"),
                ],
                Ok(Framing::Chunked),
            ),
            // Transfer-Encoding wins over Content-Length (RFC 9112, 6.3).
            (
                ok,
                vec![("content-length", "5"), ("transfer-encoding", "chunked")],
                Ok(Framing::Chunked),
            ),
            (ok, vec![("content-length", "5")], Ok(Framing::Sized)),
            (ok, vec![("content-length", "0")], Ok(Framing::Sized)),
            (http::StatusCode::NO_CONTENT, vec![], Ok(Framing::Sized)),
            (http::StatusCode::NOT_MODIFIED, vec![], Ok(Framing::Sized)),
            (ok, vec![], Err(Unframed)),
            (
                ok,
                vec![("content-type", "text/event-stream")],
                Err(Unframed),
            ),
            // A coding other than chunked last: the body ends at EOF only.
            (
                ok,
                vec![("transfer-encoding", "chunked, gzip")],
                Err(Unframed),
            ),
            (ok, vec![("transfer-encoding", "gzip")], Err(Unframed)),
        ] {
            assert_eq!(
                framing(status, &headers(&pairs)),
                expected,
                "{status} {pairs:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_chunked_answer_s_head_comes_before_its_body_is_written() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let tracker = TaskTracker::new();
        let mut sender = handshake(ours, &tracker).await.unwrap();
        let (go_on, told) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = theirs.read(&mut buf).await;
            let _ = theirs
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
                .await;
            // The rest only once the first piece has been read.
            let _ = told.await;
            let _ = theirs.write_all(b"3\r\ntwo\r\n0\r\n\r\n").await;
        });
        let request = http::Request::get("/x").body(Bytes::new()).unwrap();
        let head = send(&mut sender, request).await.unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let mut body = head.response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.as_ref(), b"one");
        go_on.send(()).unwrap();
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second.as_ref(), b"two");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_chunked_answer_read_whole_is_capped_too() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
        let whole = call_with_reply(reply, 1024).await;
        assert!(
            matches!(&whole, HotOutcome::Response(r) if r.body().as_ref() == b"0123456789"),
            "{whole:?}"
        );
        let capped = call_with_reply(reply, 6).await;
        assert!(matches!(capped, HotOutcome::TooLarge), "{capped:?}");
    }
}
