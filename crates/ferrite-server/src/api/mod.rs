//! The HTTP API: the router, the state handlers share, and one module per
//! resource.

mod apps;
mod auth;
mod body_cap;
mod calls;
pub(crate) mod error;
mod extract;
mod invoke;
mod metrics;
mod routes;
mod services;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::routing::{any, get};
use axum::{middleware, Router};
use ferrite_engine::Engine;
use ferrite_model::ApiError;
use ferrite_queue::Queue;
use ferrite_store::Store;
use tokio::sync::Notify;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::changes::Changes;
use crate::executor::Executor;
use crate::history::Recorder;
use crate::limits::Limiter;
use crate::route_cache::RouteCache;
use crate::services::ServiceState;
use crate::{Node, ServerConfig};
use body_cap::BodyCap;
pub use error::Error;
use tokio_util::task::TaskTracker;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    /// Where async calls wait for a worker.
    pub queue: Arc<dyn Queue>,
    /// Wakes this node's workers when a call is queued here.
    pub(crate) wake_workers: Arc<Notify>,
    /// Writes the history of sync calls.
    history: Recorder,
    /// Routes for the invoke path (and the workers), cached briefly.
    pub(crate) routes: Arc<RouteCache>,
    /// Drops what this node and the others cached of a changed route or app.
    pub(crate) changes: Arc<Changes>,
    /// Routes with a service section run here, or why not.
    pub(crate) services: ServiceState,
    /// Who may use `/v1`: loopback clients, or holders of a token signed
    /// with `JWT_AUTH_KEY` when it is set.
    management: Arc<auth::Management>,
    /// The cap on `/v1` request bodies.
    api_body: BodyCap,
    /// The cap on function call bodies.
    pub(crate) call_body: BodyCap,
    /// Largest function response.
    max_response_bytes: usize,
}

impl AppState {
    /// The state of a node's API; the writer of the call history runs on
    /// `tasks` until the last clone of the state is dropped.
    pub fn new(node: Node, config: &ServerConfig, tasks: &TaskTracker) -> AppState {
        let routes = Arc::new(RouteCache::new(
            Duration::from_millis(config.route_cache_ttl_ms),
            Limiter::new(config.app_limit_defaults()),
        ));
        let changes = Arc::new(Changes::new(
            node.engine.node_id(),
            routes.clone(),
            node.engine.clone(),
            node.bus,
        ));
        AppState {
            history: Recorder::start(
                node.store.clone(),
                usize::try_from(config.history_buffer).unwrap_or(usize::MAX),
                tasks,
            ),
            store: node.store,
            engine: node.engine,
            queue: node.queue,
            wake_workers: Arc::default(),
            routes,
            changes,
            services: Err(Arc::from("Swarm services are not started on this node")),
            management: Arc::new(auth::Management::new(config.jwt_auth_key.as_deref())),
            api_body: BodyCap {
                max_bytes: config.api_max_body_bytes,
                setting: "API_MAX_BODY_BYTES",
                of: "the API",
            },
            call_body: BodyCap {
                max_bytes: config.max_request_bytes,
                setting: "FN_MAX_REQUEST_BYTES",
                of: "function calls",
            },
            max_response_bytes: config.max_response_bytes,
        }
    }
}

/// The whole HTTP surface of a node.
impl AppState {
    /// The same state, with this node's Swarm services.
    pub fn with_services(mut self, services: ServiceState) -> AppState {
        self.services = services;
        self
    }

    /// What runs this node's calls, sync and async.
    pub(crate) fn executor(&self) -> Executor {
        Executor {
            engine: self.engine.clone(),
            services: self.services.clone(),
            max_response_bytes: self.max_response_bytes,
        }
    }
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{app}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route("/apps/{app}/routes", get(routes::list).post(routes::create))
        .route(
            "/apps/{app}/routes/{*path}",
            get(routes::get)
                .patch(routes::update)
                .delete(routes::delete),
        )
        .route("/apps/{app}/calls", get(calls::list))
        .route(
            "/apps/{app}/calls/{id}",
            get(calls::get).delete(calls::cancel),
        )
        .route("/apps/{app}/calls/{id}/log", get(calls::log))
        .route("/apps/{app}/calls/{id}/output", get(calls::output))
        .route("/services", get(services::list))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.api_body,
            body_cap::enforce,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::guard_management,
        ))
        // Outside the guard, so that refused requests are counted too.
        .route_layer(middleware::from_fn(crate::metrics::api::record));

    let calls = Router::new()
        .route("/{app}/{*path}", any(invoke::invoke))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.call_body,
            body_cap::enforce,
        ));

    // Behind the same gate as `/v1`: what a node serves, and how often, is
    // the operator's business.
    let metrics = Router::new()
        .route("/metrics", get(metrics::scrape))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::guard_management,
        ))
        .route_layer(middleware::from_fn(crate::metrics::api::record));

    Router::new()
        .route("/", get(system::ping))
        .route("/version", get(system::version))
        .route("/health", get(system::health))
        .nest("/v1", v1)
        .nest("/r", calls)
        .merge(metrics)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // A 5xx of a function (exit code, timeout) is a result, not our
        // failure: the invoke path logs calls itself.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(state)
}

async fn not_found(OriginalUri(uri): OriginalUri) -> Error {
    ApiError::not_found(format!("no such endpoint: {}", uri.path())).into()
}

async fn method_not_allowed(method: axum::http::Method, OriginalUri(uri): OriginalUri) -> Error {
    ApiError::new(
        ferrite_model::ErrorKind::MethodNotAllowed,
        format!("method {method} is not allowed on {}", uri.path()),
    )
    .into()
}
