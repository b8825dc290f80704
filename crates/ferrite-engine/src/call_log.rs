//! Which call a hot container's stderr belongs to.
//!
//! A hot container serves one call at a time, but its stderr reaches the
//! node on its own stream (the engine's attach stream), usually a little
//! after the response, which comes over the call's socket. So a call's log
//! is what the container writes from the start of the call until the next
//! call starts there, the container goes away, or [`SETTLE`] has passed
//! since the response, whichever comes first. The caller gets a
//! [`PendingLog`] to await: recording a log never delays an answer.
//! Output outside any call is logged with the route.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

/// How long after a response its container's stderr still counts as the
/// call's.
pub const SETTLE: Duration = Duration::from_millis(50);

/// A call's stderr, capped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedLog {
    pub bytes: Bytes,
    /// Bytes past the cap, dropped.
    pub dropped: u64,
}

/// A call's log, complete once its capture closes.
#[derive(Debug)]
pub struct PendingLog(oneshot::Receiver<CapturedLog>);

impl PendingLog {
    pub async fn wait(self) -> CapturedLog {
        self.0.await.unwrap_or_default()
    }
}

struct Open {
    /// Tells this capture from a later one, for the settle timer.
    id: u64,
    bytes: Vec<u8>,
    dropped: u64,
    done: oneshot::Sender<CapturedLog>,
}

struct State {
    open: Option<Open>,
    next_id: u64,
}

/// The stderr capture of one hot container.
#[derive(Clone)]
pub struct LogCapture {
    state: Arc<Mutex<State>>,
    max: usize,
    app: Arc<str>,
    path: Arc<str>,
}

impl LogCapture {
    pub fn new(max: usize, app: &str, path: &str) -> LogCapture {
        LogCapture {
            state: Arc::new(Mutex::new(State {
                open: None,
                next_id: 0,
            })),
            max,
            app: app.into(),
            path: path.into(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes the container wrote to stderr.
    pub fn write(&self, bytes: &[u8]) {
        let mut state = self.state();
        if let Some(open) = state.open.as_mut() {
            let room = self.max.saturating_sub(open.bytes.len());
            let kept = bytes.len().min(room);
            open.bytes.extend_from_slice(&bytes[..kept]);
            open.dropped += (bytes.len() - kept) as u64;
            return;
        }
        drop(state);
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::info!(app = %self.app, path = %self.path, log = %text, "hot function log outside a call");
        }
    }

    /// A call starts: the previous call's log is complete.
    pub fn begin(&self) -> (u64, PendingLog) {
        let (done, receiver) = oneshot::channel();
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let previous = state.open.replace(Open {
            id,
            bytes: Vec::new(),
            dropped: 0,
            done,
        });
        drop(state);
        if let Some(previous) = previous {
            finish(previous);
        }
        (id, PendingLog(receiver))
    }

    /// The call `id` has its response: close its capture after [`SETTLE`]
    /// unless another call has closed it first.
    pub fn settle(&self, id: u64) {
        let capture = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            capture.close_if(Some(id));
        });
    }

    /// The container is gone: whatever call is open is complete.
    pub fn close(&self) {
        self.close_if(None);
    }

    fn close_if(&self, id: Option<u64>) {
        let mut state = self.state();
        let current = state.open.as_ref().map(|o| o.id);
        if current.is_some() && (id.is_none() || id == current) {
            if let Some(open) = state.open.take() {
                drop(state);
                finish(open);
            }
        }
    }
}

fn finish(open: Open) {
    // The caller may have stopped waiting: nothing to do then.
    let _ = open.done.send(CapturedLog {
        bytes: Bytes::from(open.bytes),
        dropped: open.dropped,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_gets_what_arrives_until_the_next_call() {
        let capture = LogCapture::new(1024, "app", "/p");
        capture.write(b"before any call\n");
        let (first, log1) = capture.begin();
        capture.write(b"one\n");
        capture.settle(first);
        capture.write(b"late one\n");
        let (_, log2) = capture.begin();
        capture.write(b"two\n");
        capture.close();
        assert_eq!(log1.wait().await.bytes, &b"one\nlate one\n"[..]);
        assert_eq!(log2.wait().await.bytes, &b"two\n"[..]);
    }

    #[tokio::test]
    async fn settle_closes_and_caps_apply() {
        let capture = LogCapture::new(4, "app", "/p");
        let (id, log) = capture.begin();
        capture.write(b"123456");
        capture.settle(id);
        let got = log.wait().await;
        assert_eq!(got.bytes, &b"1234"[..]);
        assert_eq!(got.dropped, 2);
        // After the settle time, output belongs to no call.
        capture.write(b"stray\n");
        let (_, next) = capture.begin();
        capture.close();
        assert!(next.wait().await.bytes.is_empty());
    }
}
