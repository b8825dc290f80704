//! `format: http`: up to `concurrency` long-lived processes, each serving
//! one HTTP/1.1 request at a time over its stdin and stdout (the codec is
//! Ferrite's, [`ferrite_wire::stdio_http`], so a function behaves as
//! it does in Ferrite's hot containers). A call takes a free process or
//! waits; the function's status, headers and body go back as they are. A
//! process that dies, breaks the framing or passes the timeout is killed
//! and replaced at once, and its call gets 502 (504 for the timeout).
//!
//! Every process is made while a slot is held, and a slot holds at most one
//! process, so there are never more than `concurrency` of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use ferrite_wire::stdio_http::{self, HotOutcome, Sender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::children::{Child, Children};
use crate::facts::Facts;
use crate::respond;
use crate::WatchdogError;
use ferrite_model::contract::{set_fact_headers, CallFacts};
use ferrite_wire::hop_by_hop;

/// How long an idle process may take to exit after its input closes, at
/// shutdown, before it is killed.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A running hot process and the connection to it.
struct HotChild {
    sender: Sender,
    /// Killed (with its group) when dropped.
    child: Child,
}

pub struct Hot {
    children: Children,
    command: Vec<String>,
    /// The hot environment (route facts); per-call facts are headers.
    env: Vec<(String, String)>,
    slots: Arc<Semaphore>,
    concurrency: usize,
    idle: Mutex<Vec<HotChild>>,
    /// Processes started and not yet found dead: the readiness signal.
    live: AtomicUsize,
    /// Drivers of the HTTP connections and replacement starts.
    tracker: TaskTracker,
    timeout: Duration,
    max_response_bytes: usize,
}

/// What [`Hot::start`] needs.
pub struct HotSettings {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

impl Hot {
    /// Start every process. The first must start, or the watchdog has
    /// nothing to serve with; a later one that fails is tried again when a
    /// call needs it.
    pub async fn start(
        children: Children,
        tracker: TaskTracker,
        settings: HotSettings,
    ) -> Result<Arc<Hot>, WatchdogError> {
        let hot = Arc::new(Hot {
            children,
            command: settings.command,
            env: settings.env,
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            concurrency: settings.concurrency,
            idle: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            tracker,
            timeout: settings.timeout,
            max_response_bytes: settings.max_response_bytes,
        });
        for n in 0..settings.concurrency {
            match hot.start_one().await {
                Ok(child) => hot.lock_idle().push(child),
                Err(e) if n == 0 => return Err(e),
                Err(e) => tracing::warn!(error = %e, "cannot start a hot function process"),
            }
        }
        Ok(hot)
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<HotChild>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call can be served: some process is up.
    pub fn ready(&self) -> bool {
        self.live.load(Ordering::SeqCst) > 0
    }

    async fn start_one(&self) -> Result<HotChild, WatchdogError> {
        let mut child = self
            .children
            .spawn(&self.command, &self.env)
            .map_err(|source| WatchdogError::Spawn {
                command: self.command.join(" "),
                source,
            })?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(WatchdogError::Protocol("the function has no stdio".into()));
        };
        let sender = stdio_http::handshake(tokio::io::join(stdout, stdin), &self.tracker)
            .await
            .map_err(|e| WatchdogError::Protocol(e.to_string()))?;
        self.live.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(pid = child.pid, "hot function process started");
        Ok(HotChild { sender, child })
    }

    /// A process gone for good (it is killed with its group on drop).
    fn discard(&self, child: HotChild) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(pid = child.child.pid, "hot function process removed");
        drop(child);
    }

    /// A free process for a call that holds a slot: an idle one that is
    /// still alive, or a new one.
    async fn take(&self) -> Result<HotChild, WatchdogError> {
        loop {
            let Some(child) = self.lock_idle().pop() else {
                break;
            };
            if child.sender.is_closed() {
                tracing::warn!(
                    pid = child.child.pid,
                    "a hot function process ended between calls"
                );
                self.discard(child);
                continue;
            }
            return Ok(child);
        }
        self.start_one().await
    }

    /// Replace a removed process in the background, in the slot of the
    /// call that lost it (so its caller is answered at once).
    fn replace(self: &Arc<Self>, slot: OwnedSemaphorePermit) {
        let hot = self.clone();
        self.tracker.spawn(async move {
            match hot.start_one().await {
                Ok(child) => hot.lock_idle().push(child),
                Err(e) => tracing::warn!(error = %e, "cannot start a hot function process"),
            }
            drop(slot);
        });
    }

    /// Serve one call.
    pub async fn call(self: &Arc<Self>, facts: &Facts, request: Request<Bytes>) -> Response {
        let Some(slot) = respond::take_slot(&self.slots, self.timeout).await else {
            return respond::busy(self.concurrency, self.timeout);
        };
        let mut child = match self.take().await {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(call_id = %facts.call_id, error = %e, "no hot function process");
                return respond::error(StatusCode::BAD_GATEWAY, &e.to_string());
            }
        };
        let request = to_function(facts, request);
        let outcome = tokio::time::timeout(
            self.timeout,
            stdio_http::exchange(&mut child.sender, request, self.max_response_bytes),
        )
        .await
        .unwrap_or(HotOutcome::TimedOut);
        let pid = child.child.pid;
        let answer = match outcome {
            HotOutcome::Response(response) if !child.sender.is_closed() => {
                self.lock_idle().push(child);
                drop(slot);
                return from_function(response);
            }
            // It answered, then hung up: the answer stands, the process goes.
            HotOutcome::Response(response) => from_function(response),
            HotOutcome::TimedOut => respond::error(StatusCode::GATEWAY_TIMEOUT, "Timed out"),
            HotOutcome::Broken(why) => respond::error(StatusCode::BAD_GATEWAY, &why),
            HotOutcome::TooLarge => respond::error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "function response is larger than the limit of {} bytes",
                    self.max_response_bytes
                ),
            ),
        };
        tracing::debug!(call_id = %facts.call_id, pid, status = answer.status().as_u16(), "hot function process replaced");
        self.discard(child);
        self.replace(slot);
        answer
    }

    /// Shutdown: close the idle processes' input (a function may finish
    /// cleanly on EOF), give them a moment, then kill what is left.
    pub async fn close(&self) {
        let idle: Vec<HotChild> = self.lock_idle().drain(..).collect();
        let waits = idle
            .into_iter()
            .map(|HotChild { sender, mut child }| async move {
                drop(sender);
                let _ = tokio::time::timeout(CLOSE_WAIT, &mut child.exit).await;
            });
        for wait in waits {
            wait.await;
        }
    }
}

/// The client's request as the function gets it: its own method, path and
/// headers (less those of the connection), plus Ferrite's `Fn-*` facts.
fn to_function(facts: &Facts, request: Request<Bytes>) -> Request<Bytes> {
    let (mut parts, body) = request.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    // The codec sets the length of the body it sends.
    parts.headers.remove(header::CONTENT_LENGTH);
    let call = CallFacts {
        call_id: &facts.call_id,
        method: &facts.method,
        request_url: &facts.request_url,
    };
    set_fact_headers(&mut parts.headers, &facts.app_name, &facts.route, &call);
    // Only the path and query go on the function's request line.
    if let Some(path) = parts.uri.path_and_query().cloned() {
        parts.uri = path.into();
    }
    Request::from_parts(parts, body)
}

/// The function's answer as the client gets it: status, headers (less
/// those of the connection) and body.
fn from_function(response: http::Response<Bytes>) -> Response {
    let (mut parts, body) = response.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    // The server sets the length of the body it sends.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_wire::headers::{FN_CALL_ID, FN_REQUEST_URL};

    #[test]
    fn requests_carry_the_facts_and_no_connection_headers() {
        let facts = Facts {
            call_id: "c1".into(),
            app_name: "a".into(),
            route: "/r".into(),
            request_url: "http://h/r/a/r".into(),
            method: "POST".into(),
        };
        let request = Request::post("http://task:8080/r?x=1")
            .header("connection", "keep-alive")
            .header("content-length", "3")
            .header("x-mine", "1")
            .header(FN_CALL_ID, "forged")
            .body(Bytes::from_static(b"abc"))
            .unwrap();
        let request = to_function(&facts, request);
        assert_eq!(request.uri(), "/r?x=1");
        assert_eq!(request.headers()[FN_CALL_ID], "c1");
        assert_eq!(request.headers()[FN_REQUEST_URL], "http://h/r/a/r");
        assert_eq!(request.headers()["x-mine"], "1");
        assert!(request.headers().get("connection").is_none());
        assert!(request.headers().get("content-length").is_none());
    }
}
