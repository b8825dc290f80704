//! Forwarding one HTTP request to a service's task, chosen by its
//! [`Balancer`], over pooled keep-alive connections.
//!
//! Only a connection that could not be made is retried (on another task):
//! once a request may have reached a task it is never sent again, since the
//! function may have acted on it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{Addresses, Balancer, Lease};
use ferrite_wire::hop_by_hop;

/// How requests reach tasks.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSettings {
    /// Longest wait for a connection to a task; past it the task counts as
    /// unreachable and another one is tried. Tasks are on the same overlay
    /// network, so a healthy one answers in well under this.
    pub connect_timeout: Duration,
    /// Most connection attempts per request, over different tasks.
    pub max_attempts: usize,
    /// Pause before trying again once every task has failed to connect: a
    /// task that Swarm reports running may not listen yet (no health check),
    /// which is the common case of a service just scaled up from zero.
    pub retry_pause: Duration,
    /// Idle keep-alive connections to tasks are closed after this.
    pub idle_timeout: Duration,
    /// TCP keep-alive on every connection to a task: after this long
    /// without a byte, probes every [`ForwardSettings::probe_every`], and
    /// the connection fails after [`ForwardSettings::probes`] unanswered.
    /// A task whose node died (killed, cut off) never answers nor resets
    /// its connections: without probes a call it was running would wait
    /// for the route's timeout; with them it fails within seconds. A live
    /// task's kernel answers probes, however long its function runs.
    pub probe_after: Duration,
    pub probe_every: Duration,
    pub probes: u32,
    /// Longest time a request's bytes may stay unacknowledged by the task's
    /// kernel (`TCP_USER_TIMEOUT`): a request written to a pooled
    /// connection of a task whose node just died is retransmitted for
    /// minutes otherwise, past any route's timeout. A live task's kernel
    /// acknowledges at once, however slow its function.
    pub unacknowledged: Duration,
}

impl Default for ForwardSettings {
    fn default() -> ForwardSettings {
        ForwardSettings {
            connect_timeout: Duration::from_secs(1),
            max_attempts: 3,
            retry_pause: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(30),
            probe_after: Duration::from_secs(2),
            probe_every: Duration::from_secs(1),
            probes: 3,
            unacknowledged: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The service has no running task (scaled to zero, or none started yet).
    #[error("the service has no running task")]
    NoTasks,
    /// No connection could be made to any task tried; nothing was sent.
    #[error("cannot connect to the service's tasks ({attempts} attempts, last {addr}: {reason})")]
    Connect {
        attempts: usize,
        addr: SocketAddr,
        reason: String,
    },
    /// The request may have reached the task, which failed it (closed the
    /// connection, sent a broken answer): not retried.
    #[error("the task at {addr} failed the request: {reason}")]
    Request { addr: SocketAddr, reason: String },
    /// The task stopped answering while it had the request: its kernel
    /// acknowledged neither the connection's keep-alive probes nor the
    /// request's bytes in time, so its node is gone (killed, cut off), not
    /// only its function. The function may have run part of the call.
    #[error("the task at {addr} stopped answering while it had the request (its node is gone): {reason}")]
    Lost { addr: SocketAddr, reason: String },
    /// The request cannot be sent at all (its URI, say).
    #[error("cannot forward the request: {0}")]
    BadRequest(String),
}

/// A task's answer, with where it came from.
#[derive(Debug)]
pub struct Forwarded {
    /// The task's response; its body holds the request's [`Lease`], so the
    /// request counts as outstanding until the body is read or dropped.
    pub response: http::Response<LeasedBody>,
    pub addr: SocketAddr,
    /// Connection attempts it took (1 when the first task answered).
    pub attempts: usize,
}

/// Forwards requests to tasks; one per server, shared by every service (the
/// connection pool is keyed by task address).
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
    settings: ForwardSettings,
}

impl Forwarder {
    pub fn new(settings: ForwardSettings) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(settings.probe_after));
        connector.set_keepalive_interval(Some(settings.probe_every));
        connector.set_keepalive_retries(Some(settings.probes));
        connector.set_tcp_user_timeout(Some(settings.unacknowledged));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_timeout)
            .build(connector);
        Forwarder { client, settings }
    }

    /// Send `request` (its URI's path and query, method, headers, body) to
    /// a task of the service at `http://IP:PORT`, the task chosen by
    /// `balancer` among `addresses()` (called again before each retry, so
    /// tasks that appeared meanwhile are seen). Hop-by-hop headers are
    /// dropped both ways. A connection that cannot be made is retried on
    /// another task, up to [`ForwardSettings::max_attempts`]; nothing else is.
    /// The caller applies its own deadline around this and the body.
    pub async fn forward(
        &self,
        balancer: &Arc<Balancer>,
        addresses: impl Fn() -> Addresses,
        request: http::Request<Bytes>,
    ) -> Result<Forwarded, ForwardError> {
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let mut headers = parts.headers;
        hop_by_hop::strip(&mut headers);
        // The body is whole here: its length is set again when sent.
        headers.remove(header::CONTENT_LENGTH);
        let max_attempts = self.settings.max_attempts.max(1);

        let mut tried: Vec<SocketAddr> = Vec::new();
        let mut lease = balancer
            .pick(&addresses(), &tried)
            .ok_or(ForwardError::NoTasks)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let addr = lease.addr();
            let uri: http::Uri = format!("http://{addr}{path}")
                .parse()
                .map_err(|e| ForwardError::BadRequest(format!("URI {path:?}: {e}")))?;
            let mut outgoing = http::Request::new(Full::new(body.clone()));
            *outgoing.method_mut() = parts.method.clone();
            *outgoing.uri_mut() = uri;
            *outgoing.headers_mut() = headers.clone();
            match self.client.request(outgoing).await {
                Ok(response) => {
                    let (mut head, incoming) = response.into_parts();
                    hop_by_hop::strip(&mut head.headers);
                    let body = LeasedBody {
                        inner: incoming,
                        lease: Some(lease),
                    };
                    return Ok(Forwarded {
                        response: http::Response::from_parts(head, body),
                        addr,
                        attempts,
                    });
                }
                Err(e) if e.is_connect() => {
                    let reason = chain(&e);
                    tracing::debug!(task = %addr, attempt = attempts, error = %reason, "cannot connect to task");
                    if attempts >= max_attempts {
                        balancer.connect_failed(lease);
                        return Err(ForwardError::Connect {
                            attempts,
                            addr,
                            reason,
                        });
                    }
                    tried.push(addr);
                    let current = addresses();
                    lease = match balancer.repick(lease, &current, &tried) {
                        Some(next) => next,
                        None => {
                            // Every task failed once: perhaps they are only
                            // starting. Wait a little and go round again.
                            tokio::time::sleep(self.settings.retry_pause).await;
                            tried.clear();
                            let current = addresses();
                            balancer
                                .pick_again(&current)
                                .ok_or_else(|| ForwardError::Connect {
                                    attempts,
                                    addr,
                                    reason: reason.clone(),
                                })?
                        }
                    };
                }
                Err(e) => {
                    let reason = chain(&e);
                    tracing::debug!(task = %addr, error = %reason, "request to task failed");
                    if timed_out(&e) {
                        return Err(ForwardError::Lost { addr, reason });
                    }
                    return Err(ForwardError::Request { addr, reason });
                }
            }
        }
    }
}

/// A task's response body that keeps its request outstanding on the task
/// until the body ends or is dropped.
#[derive(Debug)]
pub struct LeasedBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl Body for LeasedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            // Done with the task: it counts as free before the body is dropped.
            self.lease = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An error with its causes, `a: b: c` (hyper-util's own message is only
/// "client error (Connect)").
/// Whether `e` comes from the connection timing out: keep-alive probes (or
/// data) left unacknowledged by the task's kernel. A function cannot cause
/// that (its kernel answers for it whatever it does); a closed or reset
/// connection, which it can cause, is not this.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// How a test task behaves once a request has arrived.
    #[derive(Clone, Copy)]
    enum Task {
        /// Answers `METHOD PATH x-test=... body` (keep-alive).
        Echo,
        /// Reads the request, then closes without answering.
        Hangs,
    }

    /// A task on 127.0.0.1, and how many connections it accepted.
    async fn task(kind: Task) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(connection(stream, kind));
            }
        });
        (addr, accepted)
    }

    async fn connection(mut stream: TcpStream, kind: Task) {
        let mut buffer = Vec::new();
        loop {
            let Some((head, body)) = read_request(&mut stream, &mut buffer).await else {
                return;
            };
            if let Task::Hangs = kind {
                return;
            }
            let line = head.lines().next().unwrap_or_default();
            let mut words = line.split(' ');
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let header = head
                .lines()
                .find_map(|l| l.strip_prefix("x-test: "))
                .unwrap_or("-");
            let answer = format!("{method} {path} x-test={header} {body}");
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-task: yes\r\n\r\n{answer}",
                answer.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// One request's head and body (by its content-length), or `None` at EOF.
    async fn read_request(
        stream: &mut TcpStream,
        buffer: &mut Vec<u8>,
    ) -> Option<(String, String)> {
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let mut chunk = [0; 4096];
                    let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
                buffer.drain(..end + 4 + length);
                return Some((head, body));
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
            buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// An address nobody listens on (a listener bound, then closed).
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn only_a_connection_timing_out_counts_as_a_task_lost() {
        use std::io::{Error, ErrorKind};
        assert!(timed_out(&Wrapped(Error::from(ErrorKind::TimedOut))));
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::UnexpectedEof,
            ErrorKind::BrokenPipe,
        ] {
            assert!(!timed_out(&Wrapped(Error::from(kind))), "{kind:?}");
        }
    }

    async fn dead() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn request() -> http::Request<Bytes> {
        http::Request::post("http://ferrite/r/app/fn?x=1")
            .header("x-test", "42")
            .header("connection", "keep-alive")
            .body(Bytes::from_static(b"payload"))
            .unwrap()
    }

    fn fixed(addrs: Vec<SocketAddr>) -> impl Fn() -> Addresses {
        let addrs: Addresses = Arc::from(addrs);
        move || addrs.clone()
    }

    fn forwarder() -> Forwarder {
        Forwarder::new(ForwardSettings {
            retry_pause: Duration::from_millis(20),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_connect_failure_is_retried_on_another_task() {
        let dead = dead().await;
        let (live, accepted) = task(Task::Echo).await;
        let balancer = Balancer::new();
        // Equal load: the first address of the list is tried first.
        let forwarded = forwarder()
            .forward(&balancer, fixed(vec![dead, live]), request())
            .await
            .unwrap();
        assert_eq!(forwarded.addr, live);
        assert_eq!(forwarded.attempts, 2);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(balancer.connect_failures_total(), 1);
        assert_eq!(balancer.requests_total(), 1);
        assert_eq!(
            balancer.in_flight(),
            1,
            "outstanding until the body is read"
        );
        let response = forwarded.response;
        assert_eq!(response.headers()["x-task"], "yes");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"POST /r/app/fn?x=1 x-test=42 payload");
        assert_eq!(balancer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_request_that_reached_a_task_is_never_sent_again() {
        let (first, accepted_first) = task(Task::Hangs).await;
        let (second, accepted_second) = task(Task::Hangs).await;
        let balancer = Balancer::new();
        let err = forwarder()
            .forward(&balancer, fixed(vec![first, second]), request())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ForwardError::Request { addr, .. } if addr == first),
            "{err}"
        );
        let total = accepted_first.load(Ordering::SeqCst) + accepted_second.load(Ordering::SeqCst);
        assert_eq!(total, 1, "one task saw the request, no other");
        assert_eq!(balancer.in_flight(), 0);
    }

    #[tokio::test]
    async fn unreachable_tasks_fail_after_the_last_attempt() {
        let addrs = vec![dead().await, dead().await];
        let balancer = Balancer::new();
        let err = forwarder()
            .forward(&balancer, fixed(addrs), request())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ForwardError::Connect { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(balancer.connect_failures_total(), 3);
        assert_eq!(balancer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_task_that_starts_listening_late_is_tried_again() {
        // Swarm reports a task running before its server listens: the only
        // task refuses the first connection, then accepts.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let balancer = Balancer::new();
        let forwarder = Forwarder::new(ForwardSettings {
            retry_pause: Duration::from_millis(300),
            ..Default::default()
        });
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let listener = TcpListener::bind(addr).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            connection(stream, Task::Echo).await;
        });
        let forwarded = forwarder
            .forward(&balancer, fixed(vec![addr]), request())
            .await
            .unwrap();
        assert_eq!(forwarded.attempts, 2);
        drop(forwarded);
        late.abort();
    }

    #[tokio::test]
    async fn no_task_is_its_own_error() {
        let err = forwarder()
            .forward(&Balancer::new(), fixed(vec![]), request())
            .await
            .unwrap_err();
        assert!(matches!(err, ForwardError::NoTasks));
    }
}
