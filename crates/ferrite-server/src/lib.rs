//! Ferrite's HTTP server: the v1 management API in front of a [`Store`],
//! and function calls run by the [`Engine`].
//!
//! The caller binds the listener and owns the shutdown signal, so a test
//! starts a whole server on port 0 in one line and stops it at will.
#![forbid(unsafe_code)]

pub mod api;
mod config;
mod contract;
mod route_cache;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrite_engine::{Engine, EngineError};
use ferrite_store::{Store, StoreError};
use tokio::net::TcpListener;

pub use config::{LogFormat, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How long shutdown waits for the engine to remove its containers.
const ENGINE_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Open the store and the engine named by the configuration, then serve the
/// API on `listener` until `shutdown` completes; in-flight requests are
/// drained and every container this node made is removed.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = ferrite_store::open(&config.db_url).await?;
    let engine = Engine::start(config.engine_settings()).await?;
    let served = serve(&config, store, engine.clone(), listener, shutdown).await;
    engine.shutdown(ENGINE_SHUTDOWN_GRACE).await;
    tracing::info!("ferrite stopped");
    served
}

/// Serve the API over an opened store and a started engine.
pub async fn serve(
    config: &ServerConfig,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let router = api::router(api::AppState::new(store, engine, config));
    tracing::info!(addr = %listener.local_addr()?, "ferrite listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
