//! HTTP/1.1 over a hot function's stdin and stdout (`format: http`): the
//! client side of the contract, one request at a time on one connection.
//!
//! Shared by the hot containers of a node (ferrite-engine) and by the
//! watchdog, which runs the same kind of function as a child process inside
//! a Swarm service's task: both hand a byte stream to [`handshake`] and send
//! each call with [`exchange`], so a function behaves the same under both.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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

/// One request and its whole response (at most `cap` bytes of body),
/// checked for framing: a response without `Content-Length` (or chunking)
/// could only end when the function exits, so it is a broken function.
/// Never [`HotOutcome::TimedOut`]: the caller owns the deadline.
pub async fn exchange(
    sender: &mut Sender,
    request: http::Request<Bytes>,
    cap: usize,
) -> HotOutcome {
    if let Err(e) = sender.ready().await {
        return HotOutcome::Broken(format!("the function is gone: {e}"));
    }
    let response = match sender.send_request(request.map(Full::new)).await {
        Ok(response) => response,
        Err(e) => {
            return HotOutcome::Broken(format!("the function did not answer with valid HTTP: {e}"))
        }
    };
    let framed = response
        .headers()
        .contains_key(http::header::CONTENT_LENGTH)
        || response
            .headers()
            .contains_key(http::header::TRANSFER_ENCODING)
        || response.status().is_informational()
        || response.status() == http::StatusCode::NO_CONTENT
        || response.status() == http::StatusCode::NOT_MODIFIED;
    if !framed {
        return HotOutcome::Broken("the function's response has no Content-Length".to_string());
    }
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
}
