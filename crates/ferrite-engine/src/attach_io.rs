//! A container's attached stdin and stdout as one byte stream, for talking
//! HTTP to a hot function through the engine (remote engines, where no
//! socket of the container can be reached directly). stderr frames are the
//! function's log and are passed to a callback instead.

use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::container::LogOutput;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
/// Where the function's stderr goes.
pub type StderrSink = Box<dyn Fn(&[u8]) + Send>;

pub struct AttachIo {
    output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    /// stdout bytes received but not read yet.
    pending: Bytes,
    on_stderr: StderrSink,
}

impl AttachIo {
    pub fn new(
        output: Output,
        input: Pin<Box<dyn AsyncWrite + Send>>,
        on_stderr: StderrSink,
    ) -> AttachIo {
        AttachIo {
            output,
            input,
            pending: Bytes::new(),
            on_stderr,
        }
    }
}

impl AsyncRead for AttachIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.output.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())), // end of stream
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(LogOutput::StdOut { message }))) => self.pending = message,
                Poll::Ready(Some(Ok(LogOutput::StdErr { message }))) => (self.on_stderr)(&message),
                Poll::Ready(Some(Ok(_))) => {}
            }
        }
    }
}

impl AsyncWrite for AttachIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.input.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_shutdown(cx)
    }
}
