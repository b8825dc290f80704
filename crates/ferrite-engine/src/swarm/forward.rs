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
use http::header::{self, HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{Addresses, Balancer, Lease};

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
}

impl Default for ForwardSettings {
    fn default() -> ForwardSettings {
        ForwardSettings {
            connect_timeout: Duration::from_secs(1),
            max_attempts: 3,
            retry_pause: Duration::from_millis(100),
            idle_timeout: Duration::from_secs(30),
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
        strip_hop_by_hop(&mut headers);
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
                    strip_hop_by_hop(&mut head.headers);
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

/// Headers about one connection (RFC 9110 §7.6.1), not the message: they
/// must not cross a proxy. Those named in `Connection` go too.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// An error with its causes, `a: b: c` (hyper-util's own message is only
/// "client error (Connect)").
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
