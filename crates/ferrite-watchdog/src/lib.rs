//! `ferrite watchdog`: the entry point of a function image made into a
//! service image (docs/watchdog.md). It serves HTTP on a port and turns
//! every request into one call of the image's own command, under the
//! function contract of docs/function-format.md, so that any IronFunctions-style
//! image can run as a Swarm service that Ferrite proxies calls to.
//!
//! Two steps, so that a port that accepts connections means a watchdog that
//! can take calls: [`Watchdog::start`] starts the reaper and, for
//! `format: http`, the first hot process; the caller binds the port only
//! then and hands the listener to [`Watchdog::serve`], with the signal that
//! ends it.
//!
//! It runs inside a task, far from the node: it knows the function contract
//! (ferrite-model) and what travels on the wire (ferrite-wire: HTTP over a
//! hot function's stdio, the `Fn-*` headers, the key's names), and nothing
//! of Docker, Swarm, the store or how Ferrite chose this task.
#![forbid(unsafe_code)]

pub mod access;
mod children;
mod cold;
pub mod config;
pub mod facts;
mod hot;
mod respond;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::{lock_down, Access};
pub use config::{WatchdogConfig, WatchdogFormat};

use children::Children;
use cold::Cold;
use facts::{Defaults, Facts};
use hot::{Hot, HotSettings};

/// The reserved readiness path: 200 when calls can be taken, else 503.
pub const HEALTH_PATH: &str = "/_ferrite/health";

/// How long the processes killed at the end of a shutdown may take to be
/// collected.
const REAP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot talk HTTP with the function: {0}")]
    Protocol(String),
    #[error("cannot serve HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    NoKey(#[from] access::NoKey),
}

/// How calls are run.
enum Runner {
    Cold(Cold),
    Hot(Arc<Hot>),
}

struct Inner {
    /// Whom calls are taken from: Ferrite alone, by its key.
    access: Access,
    runner: Runner,
    defaults: Defaults,
    max_request_bytes: usize,
    /// Cleared at SIGTERM: the health check fails from then on.
    accepting: AtomicBool,
}

/// A started watchdog, ready to serve.
pub struct Watchdog {
    inner: Arc<Inner>,
    children: Children,
    tracker: TaskTracker,
    stop_reaper: CancellationToken,
    grace: Duration,
}

impl Watchdog {
    /// Start reaping and, for `format: http`, the hot processes.
    pub async fn start(config: &WatchdogConfig) -> Result<Watchdog, WatchdogError> {
        let access = Access::new(config.key.clone(), config.no_key)?;
        let children = Children::new();
        let tracker = TaskTracker::new();
        let stop_reaper = CancellationToken::new();
        tracker.spawn(children.clone().reap_forever(stop_reaper.clone()));
        let defaults = Defaults {
            app_name: config.app_name.clone(),
            route: config.route.clone(),
            format: config.format.format(),
            memory_mib: config.memory.or_else(config::cgroup_memory_mib),
            timeout_secs: config.timeout,
        };
        let concurrency = config.concurrency();
        let runner = match config.format {
            WatchdogFormat::Default => Runner::Cold(Cold {
                children: children.clone(),
                command: config.command.clone(),
                slots: Arc::new(Semaphore::new(concurrency)),
                concurrency,
                timeout: config.timeout(),
                max_response_bytes: config.max_response_bytes,
            }),
            WatchdogFormat::Http => {
                let settings = HotSettings {
                    command: config.command.clone(),
                    env: defaults.hot_environment(),
                    concurrency,
                    timeout: config.timeout(),
                    max_response_bytes: config.max_response_bytes,
                };
                match Hot::start(children.clone(), tracker.clone(), settings).await {
                    Ok(hot) => Runner::Hot(hot),
                    Err(e) => {
                        stop_reaper.cancel();
                        return Err(e);
                    }
                }
            }
        };
        tracing::info!(
            format = %defaults.format, concurrency, timeout_s = config.timeout,
            command = ?config.command, only_ferrite = matches!(access, Access::Key(_)),
            "watchdog started"
        );
        Ok(Watchdog {
            inner: Arc::new(Inner {
                access,
                runner,
                defaults,
                max_request_bytes: config.max_request_bytes,
                accepting: AtomicBool::new(true),
            }),
            children,
            tracker,
            stop_reaper,
            grace: config.grace(),
        })
    }

    /// Serve calls on `listener` until `shutdown` completes; then stop
    /// accepting, let running calls finish for up to the grace period, kill
    /// every function process and return.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WatchdogError> {
        let router = Router::new()
            .route(HEALTH_PATH, get(health).fallback(call))
            .fallback(call)
            .with_state(self.inner.clone());
        let stop_serving = CancellationToken::new();
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(stop_serving.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { server.await });
        let result = tokio::select! {
            result = &mut server => Some(result),
            () = shutdown => None,
        };
        self.inner.accepting.store(false, Ordering::SeqCst);
        stop_serving.cancel();
        let result = match result {
            Some(result) => result,
            None => {
                tracing::info!(
                    grace_s = self.grace.as_secs(),
                    "stopping: running calls may finish"
                );
                match tokio::time::timeout(self.grace, &mut server).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("calls still running after the grace period: killing them");
                        server.abort();
                        Ok(Ok(()))
                    }
                }
            }
        };
        if let Runner::Hot(hot) = &self.inner.runner {
            hot.close().await;
        }
        self.children.kill_all();
        let deadline = tokio::time::Instant::now() + REAP_WAIT;
        while self.children.running() > 0 && tokio::time::Instant::now() < deadline {
            self.children.reap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop_reaper.cancel();
        self.tracker.close();
        tracing::info!("watchdog stopped");
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WatchdogError::Serve(e)),
            Err(e) => Err(WatchdogError::Serve(std::io::Error::other(e))),
        }
    }
}

async fn health(State(inner): State<Arc<Inner>>) -> Response {
    let ready = inner.accepting.load(Ordering::SeqCst)
        && match &inner.runner {
            Runner::Cold(_) => true,
            Runner::Hot(hot) => hot.ready(),
        };
    if ready {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        respond::error(StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Every request but the health check is a call, taken only with the key
/// (checked before the body is read).
async fn call(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Err(refused) = inner.access.check(&mut parts.headers) {
        return refused.response();
    }
    let body = match axum::body::to_bytes(body, inner.max_request_bytes).await {
        Ok(body) => body,
        Err(e) => {
            return if is_too_large(&e) {
                respond::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "request body is larger than the limit of {} bytes",
                        inner.max_request_bytes
                    ),
                )
            } else {
                respond::error(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the request: {e}"),
                )
            };
        }
    };
    let facts = Facts::of(&parts, &inner.defaults);
    let response = match &inner.runner {
        Runner::Cold(cold) => {
            let env = facts.environment(&parts.headers, &inner.defaults);
            // IronFunctions: a GET's input is its `payload` query parameter.
            let stdin = if parts.method == Method::GET {
                ferrite_model::contract::payload_parameter(parts.uri.query().unwrap_or_default())
                    .into()
            } else {
                body
            };
            cold.call(&facts.call_id, &env, stdin).await
        }
        Runner::Hot(hot) => hot.call(&facts, Request::from_parts(parts, body)).await,
    };
    // The watchdog's own failures name the call, as the server's do.
    let response = match response.extensions().get::<respond::OwnError>().cloned() {
        Some(respond::OwnError(message)) => {
            respond::call_error(response.status(), &message, &facts.call_id)
        }
        None => response,
    };
    tracing::debug!(call_id = %facts.call_id, status = response.status().as_u16(), "call finished");
    response
}

/// Whether reading the body failed on the size limit.
fn is_too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
