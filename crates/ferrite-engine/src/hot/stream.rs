//! A hot function's chunked answer, passed on as the function writes it
//! (docs/streaming.md).
//!
//! The body holds the call's container ([`Lease`]) until it is over, so the
//! container serves no other call meanwhile: it goes back to its pool when
//! the function has written the last chunk, and is removed when the answer
//! is cut (past the call's deadline, over the streamed-bytes cap, broken
//! framing) or abandoned (the body dropped before its end: the caller went
//! away), since its pipe may hold the rest of an answer nobody reads.
//!
//! Nothing is queued here: a chunk is read from the function only when the
//! caller's side asks for the next one, so a slow caller slows the function
//! down (its pipe fills) rather than the node's memory growing; what is in
//! flight is hyper's read buffer and the pipe's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferrite_wire::stdio_http::Incoming;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::Lease;

/// How a streamed answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The function wrote its last chunk.
    Complete,
    /// The call's deadline passed mid-answer.
    TimedOut,
    /// The function wrote more than the cap (in bytes) allows.
    TooLarge(u64),
    /// The function's chunked framing broke, or the function died.
    Broken(String),
    /// The body was dropped before its end: the caller went away.
    Abandoned,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamEnd::Complete => write!(f, "complete"),
            StreamEnd::TimedOut => write!(f, "timed out"),
            StreamEnd::TooLarge(cap) => {
                write!(
                    f,
                    "the streamed answer is larger than the limit of {cap} bytes"
                )
            }
            StreamEnd::Broken(why) => write!(f, "the function's answer broke off: {why}"),
            StreamEnd::Abandoned => write!(f, "the client went away"),
        }
    }
}

/// The body's error when it is cut: its caller sees the answer end without
/// its last chunk.
#[derive(Debug, thiserror::Error)]
#[error("hot function answer cut: {0}")]
pub struct StreamCut(pub StreamEnd);

/// Says how a streamed answer ended, once it has.
#[derive(Debug)]
pub struct StreamEnded(oneshot::Receiver<StreamEnd>);

impl StreamEnded {
    pub async fn wait(self) -> StreamEnd {
        self.0.await.unwrap_or(StreamEnd::Abandoned)
    }
}

/// A chunked answer's body, read from the function as it is polled.
pub struct HotBody {
    body: Incoming,
    /// The call's container until the answer is over.
    lease: Option<Lease>,
    deadline: Pin<Box<Sleep>>,
    /// Data bytes passed on so far, and the most allowed.
    sent: u64,
    cap: u64,
    ended: Option<oneshot::Sender<StreamEnd>>,
}

impl fmt::Debug for HotBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HotBody")
            .field("sent", &self.sent)
            .field("cap", &self.cap)
            .field("over", &self.lease.is_none())
            .finish()
    }
}

impl HotBody {
    pub(super) fn new(
        body: Incoming,
        lease: Lease,
        deadline: Instant,
        cap: u64,
    ) -> (HotBody, StreamEnded) {
        let (ended, receiver) = oneshot::channel();
        let body = HotBody {
            body,
            lease: Some(lease),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            sent: 0,
            cap,
            ended: Some(ended),
        };
        (body, StreamEnded(receiver))
    }

    /// The answer is over: the container goes back to its pool only when it
    /// is complete.
    fn finish(&mut self, end: StreamEnd) {
        if let Some(lease) = self.lease.take() {
            lease.end(end == StreamEnd::Complete);
        }
        if let Some(ended) = self.ended.take() {
            // The caller may no longer wait: nothing to tell then.
            let _ = ended.send(end);
        }
    }

    fn cut(&mut self, end: StreamEnd) -> Poll<Option<Result<Frame<Bytes>, StreamCut>>> {
        tracing::debug!(end = %end, sent = self.sent, "hot function answer cut");
        self.finish(end.clone());
        Poll::Ready(Some(Err(StreamCut(end))))
    }
}

impl Body for HotBody {
    type Data = Bytes;
    type Error = StreamCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamCut>>> {
        let this = self.get_mut();
        if this.lease.is_none() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.cut(StreamEnd::TimedOut);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finish(StreamEnd::Complete);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => this.cut(StreamEnd::Broken(e.to_string())),
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                this.sent = this.sent.saturating_add(len);
                if this.sent > this.cap {
                    return this.cut(StreamEnd::TooLarge(this.cap));
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.lease.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for HotBody {
    fn drop(&mut self) {
        if self.lease.is_some() {
            tracing::debug!(
                sent = self.sent,
                "hot function answer abandoned by its caller"
            );
        }
        self.finish(StreamEnd::Abandoned);
    }
}
