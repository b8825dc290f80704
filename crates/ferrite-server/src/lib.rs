//! Ferrite's HTTP server: the v1 management API in front of a [`Store`],
//! and function calls, sync and async, admitted here and run through one
//! executor seam (`executor`) by the [`Engine`] or a route's Swarm service.
//!
//! It owns the node's HTTP surface (routes, auth, limits, the one error
//! renderer), the call's lifecycle (admission, queueing, retries, history)
//! and the Swarm services of routes. It must not know how containers are
//! made or spoken to (the engine's), how state is stored or queued (the
//! store's and the queue's), nor the function contract's rules (the model's,
//! shared with the watchdog).
//!
//! The caller binds the listener and owns the shutdown signal, so a test
//! starts a whole server on port 0 in one line and stops it at will.
#![forbid(unsafe_code)]

pub mod api;
mod asynchronous;
mod changes;
mod config;
mod dashboard;
mod executor;
pub mod front;
mod history;
mod limits;
mod metrics;
mod route_cache;
mod schedules;
pub mod services;
mod store_circuit;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrite_engine::{Engine, EngineError};
use ferrite_queue::{Queue, QueueError};
use ferrite_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{BusSettings, LogFormat, NodeIdError, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
    #[error(transparent)]
    Callback(#[from] asynchronous::callback::CallbackConfigError),
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How long shutdown waits for the engine to remove its containers.
const ENGINE_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long shutdown lets running async calls finish before the engine
/// stops (those still running then go back to the queue).
const WORKER_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often old call records are purged, at most (a short retention is
/// kept more closely).
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What a node is built on: where state lives, where async calls wait, and
/// the engine that runs functions.
pub struct Node {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub engine: Arc<Engine>,
    /// How nodes tell each other about changes: over the queue's Redis, or
    /// else the store's PostgreSQL ([`ServerConfig::change_bus`]); none on
    /// SQLite (one node).
    pub bus: Option<ferrite_queue::bus::ChangeBus>,
}

impl Node {
    /// Open the store, the queue and the engine named by the configuration.
    pub async fn open(config: &ServerConfig) -> Result<Node, ServerError> {
        // First: a node without an id must not touch the engine.
        let node_id = config.node_id()?;
        let store = ferrite_store::open(&config.db_url, config.db_timeout).await?;
        let mq_url = config.mq_url();
        let queue = ferrite_queue::open(&mq_url, config.redis_timeout).await?;
        let bus = match config.change_bus() {
            Some(bus) => Some(ferrite_queue::bus::ChangeBus::open(&bus.url, bus.timeout).await?),
            None => None,
        };
        let engine = Engine::start(config.engine_settings(node_id)).await?;
        Ok(Node {
            store,
            queue,
            engine,
            bus,
        })
    }
}

/// Open the node named by the configuration, then serve the API on
/// `listener` and run async calls until `shutdown` completes; in-flight
/// requests are drained and every container this node made is removed.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let node = Node::open(&config).await?;
    serve(&config, node, listener, shutdown).await
}

/// Serve the API and run this node's async workers over an opened node,
/// then shut it down.
pub async fn serve(
    config: &ServerConfig,
    mut node: Node,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // The recorder first, so that nothing recorded from here on is lost.
    metrics::handle();
    let callbacks = Arc::new(asynchronous::Callbacks::new(
        &config.callback_hosts,
        config.callback_key.as_deref(),
    )?);
    let engine = node.engine.clone();
    let tasks = TaskTracker::new();
    let calls = TaskTracker::new();
    let cancel = CancellationToken::new();
    // Everything below reaches the store through the circuit breaker.
    let circuit = store_circuit::StoreCircuit::new(node.store);
    tasks.spawn(circuit.clone().probe(cancel.clone()));
    node.store = circuit;
    let services = services::Services::start(
        config,
        node.store.clone(),
        engine.clone(),
        cancel.clone(),
        &tasks,
    )
    .await;
    // A worker's engine runs no services: its node calls their tasks.
    let relay = match &services {
        Ok(_) => None,
        Err(_) => {
            services::relay::Relay::start(config, engine.node_id(), cancel.clone(), &tasks).await
        }
    };
    // What `GET /v1/services` says on such a node: it calls services, and
    // lists none.
    let services = match (services, &relay) {
        (Err(_), Some(_)) => Err(Arc::from(services::relay::LISTED_BY_MANAGERS)),
        (services, _) => services,
    };
    tracing::info!(
        route_cache_ttl = ?config.route_cache_ttl(node.bus.is_some()),
        change_bus = node.bus.as_ref().map_or("none", |bus| bus.server()),
        "route cache"
    );
    let state = api::AppState::new(node, config, &tasks)
        .with_services(services.clone())
        .with_relay(relay)
        .with_callbacks(callbacks.clone());
    if let Ok(services) = &services {
        tasks.spawn(
            services
                .clone()
                .follow_changes(state.changes.heard(), cancel.clone()),
        );
    }
    let workers = asynchronous::Workers::new(
        state.store.clone(),
        state.queue.clone(),
        state.executor(),
        state.routes.clone(),
        state.wake_workers.clone(),
        callbacks,
        config.worker_settings(engine.node_id(), engine.memory_budget_mib()),
    );
    tasks.spawn(workers.dispatch(calls.clone(), cancel.clone()));
    tasks.spawn(state.changes.clone().listen(cancel.clone()));
    tasks.spawn(metrics::upkeep(metrics::UPKEEP_EVERY, cancel.clone()));
    tasks.spawn(metrics::queue::sample(
        state.queue.clone(),
        metrics::queue::SAMPLE_EVERY,
        cancel.clone(),
    ));
    tasks.spawn(schedules::scheduler::run(
        state.clone(),
        config.schedule_grace,
        cancel.clone(),
    ));
    tasks.spawn(history::purge_loop(
        state.store.clone(),
        config.call_retention,
        (config.call_retention / 2).clamp(Duration::from_secs(1), PURGE_EVERY),
        cancel.clone(),
    ));
    let router = api::router(state);
    tracing::info!(addr = %listener.local_addr()?, "ferrite listening");
    // The peer address goes into every request (`ConnectInfo`, by the
    // front): without a key, `/v1` answers loopback peers only.
    let served = front::serve(listener, router, config.front_settings(), shutdown).await;
    // Stop taking tasks, let running ones finish for a while, then stop the
    // engine: calls still running fail with "shutting down" and go back to
    // the queue for another node (or this one's next start).
    cancel.cancel();
    calls.close();
    if tokio::time::timeout(WORKER_SHUTDOWN_GRACE, calls.wait())
        .await
        .is_err()
    {
        tracing::warn!("async calls still running at shutdown go back to the queue");
    }
    engine.shutdown(ENGINE_SHUTDOWN_GRACE).await;
    let _ = tokio::time::timeout(WORKER_SHUTDOWN_GRACE, calls.wait()).await;
    // The history writer ends once the router (and its state) is gone.
    tasks.close();
    tasks.wait().await;
    tracing::info!("ferrite stopped");
    served?;
    Ok(())
}
