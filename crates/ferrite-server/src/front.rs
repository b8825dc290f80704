//! The HTTP front: Ferrite's own accept loop over hyper, so that what a
//! client may hold is bounded before any handler runs.
//!
//! - A client has [`FrontSettings::header_read_timeout`] to send a request's
//!   head; the same timer runs while a kept-alive connection waits for its
//!   next request (hyper re-arms it when a response is done), so idle and
//!   half-open connections are closed, never held.
//! - A request head larger than [`FrontSettings::max_header_bytes`], or with
//!   more than [`FrontSettings::max_headers`] headers, is answered 431 by
//!   hyper, which then closes the connection.
//! - At most [`FrontSettings::max_connections`] connections are served at
//!   once: the next one is accepted only when one closes, so the others
//!   wait in the kernel's listen backlog, and the process keeps file
//!   descriptors for its own work (the cap is fit to the open-files limit).
//! - Every request carries the peer's address as axum's
//!   `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info`
//!   would put it.
//! - On shutdown the listener closes, idle connections close, and requests
//!   in flight are answered before their connections close.
//!
//! HTTP/1.1 only, as before (axum's `serve` served HTTP/1.1 only here: its
//! `http2` feature is off).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// hyper's own bound on headers per request. Setting it explicitly moves
/// hyper's header array from the stack to the heap on every request, so it
/// is only set when the setting differs.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
/// Pause after an accept failure that is not the client's doing (out of
/// file descriptors, say), so the loop does not spin while it lasts.
const ACCEPT_TROUBLE_PAUSE: Duration = Duration::from_millis(200);
/// Share of the open-files limit the connection cap may take: the rest is
/// for the store, the engine's connections, hot containers' sockets.
const CONNECTIONS_SHARE_OF_OPEN_FILES: (u64, u64) = (3, 4);

/// What the front allows a client.
#[derive(Debug, Clone, Copy)]
pub struct FrontSettings {
    /// Time to send a request head, and most idle time between requests.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most connections served at once.
    pub max_connections: usize,
}

/// Serve `router` on `listener` until `shutdown` completes, then drain: no
/// new connection, requests in flight answered, then return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: FrontSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = fit_to_open_files(settings.max_connections);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(settings.max_header_bytes)
        .keep_alive(true);
    if settings.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http.max_headers(settings.max_headers);
    }
    let graceful = GracefulShutdown::new();
    tracing::info!(
        max_connections,
        header_read_timeout_ms = settings.header_read_timeout.as_millis() as u64,
        max_header_bytes = settings.max_header_bytes,
        max_headers = settings.max_headers,
        "HTTP front"
    );
    tokio::pin!(shutdown);
    loop {
        // A slot first: past the cap, connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept connections");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_TROUBLE_PAUSE) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers go out at once, not after Nagle's delay.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Timeouts, oversized heads, clients gone: theirs, not ours.
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one incoming connection (gone before it was accepted), not of
/// the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// The connection cap, lowered to a share of the open-files limit, after
/// raising the soft limit to the hard one (as Go's runtime does at start): a
/// full house of connections must not leave the process without descriptors
/// for its store, its engine and its containers.
fn fit_to_open_files(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), hard) = (limit.current, limit.maximum) {
        let raised = hard.unwrap_or(u64::MAX).min(1 << 20);
        if raised > soft {
            limit.current = Some(raised);
            if setrlimit(Resource::Nofile, limit).is_err() {
                limit.current = Some(soft);
            }
        }
    }
    let Some(open_files) = limit.current else {
        return wanted; // unlimited
    };
    let (num, den) = CONNECTIONS_SHARE_OF_OPEN_FILES;
    let fits = usize::try_from(open_files.saturating_mul(num) / den)
        .unwrap_or(usize::MAX)
        .max(1);
    if fits < wanted {
        tracing::warn!(
            wanted,
            open_files,
            max_connections = fits,
            "FERRITE_MAX_CONNECTIONS lowered to fit the open-files limit (ulimit -n)"
        );
    }
    wanted.min(fits)
}
