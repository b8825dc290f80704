//! Ferrite's HTTP server: the v1 management API in front of a [`Store`].
//!
//! The caller binds the listener and owns the shutdown signal, so a test
//! starts a whole server on port 0 in one line and stops it at will.
#![forbid(unsafe_code)]

pub mod api;
mod config;

use std::future::Future;
use std::sync::Arc;

use ferrite_store::{Store, StoreError};
use tokio::net::TcpListener;

pub use config::{LogFormat, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Open the store named by the configuration, then serve the API on
/// `listener` until `shutdown` completes; in-flight requests are drained.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = ferrite_store::open(&config.db_url).await?;
    serve(config, store, listener, shutdown).await
}

/// Serve the API over an already opened store.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let router = api::router(api::AppState::new(store, &config));
    tracing::info!(addr = %listener.local_addr()?, "ferrite listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("ferrite stopped");
    Ok(())
}
