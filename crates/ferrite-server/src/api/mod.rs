//! The HTTP API: the router, the state handlers share, and one module per
//! resource.
//!
//! The router is built with utoipa-axum's `OpenApiRouter`: `routes!` serves
//! each handler at the path and methods of its `#[utoipa::path]` and adds it
//! to the OpenAPI document (`openapi`), so the two cannot disagree.

mod apps;
mod auth;
mod body_cap;
mod calls;
mod dead_letters;
pub(crate) mod error;
mod extract;
pub(crate) mod invoke;
mod key_gate;
mod keys;
mod metrics;
mod openapi;
mod openfaas;
pub mod request_id;
mod routes;
mod schedules;
mod services;
mod system;
mod versions;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::routing::any;
use axum::{middleware, Extension, Router};
use ferrite_engine::Engine;
use ferrite_model::ApiError;
use ferrite_queue::Queue;
use ferrite_store::Store;
use serde::Serialize;
use tokio::sync::Notify;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::asynchronous::{intake, Callbacks, Intake};
use crate::changes::Changes;
use crate::executor::Executor;
use crate::history::Recorder;
use crate::limits::Limiter;
use crate::route_cache::RouteCache;
use crate::services::relay::Relay;
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
    /// Accepts async calls, many per commit.
    pub(crate) intake: Intake,
    /// Routes for the invoke path (and the workers), cached briefly.
    pub(crate) routes: Arc<RouteCache>,
    /// Drops what this node and the others cached of a changed route or app.
    pub(crate) changes: Arc<Changes>,
    /// Routes with a service section run here, or why not.
    pub(crate) services: ServiceState,
    /// On a Swarm worker's node: calls to service routes go to their tasks.
    pub(crate) relay: Option<Arc<Relay>>,
    /// Who may use `/v1`: loopback clients, or holders of a token signed
    /// with `JWT_AUTH_KEY` when it is set; also, for one app, holders of
    /// one of its keys (`key_gate`).
    management: Arc<auth::Management>,
    /// The cap on `/v1` request bodies.
    api_body: BodyCap,
    /// The cap on function call bodies.
    pub(crate) call_body: BodyCap,
    /// Largest function response.
    max_response_bytes: usize,
    /// Largest streamed hot answer.
    max_streamed_bytes: u64,
    /// Where async calls may have their results sent (off unless the
    /// operator opened it).
    pub(crate) callbacks: Arc<Callbacks>,
    /// Schedules of one app, at most (`FERRITE_APP_MAX_SCHEDULES`).
    pub(crate) max_schedules: u32,
}

impl AppState {
    /// The state of a node's API; the writer of the call history runs on
    /// `tasks` until the last clone of the state is dropped.
    pub fn new(node: Node, config: &ServerConfig, tasks: &TaskTracker) -> AppState {
        let routes = Arc::new(RouteCache::new(
            config.route_cache_ttl(node.bus.is_some()),
            config.route_cache_capacity,
            Limiter::new(config.app_limit_defaults()),
            Some(node.engine.clone()),
        ));
        let changes = Arc::new(Changes::new(
            node.engine.node_id(),
            routes.clone(),
            node.engine.clone(),
            node.bus,
        ));
        let wake_workers = Arc::<Notify>::default();
        let intake = Intake::start(
            node.store.clone(),
            node.queue.clone(),
            wake_workers.clone(),
            intake::writers_for(&config.db_url, &config.mq_url()),
            tasks,
        );
        AppState {
            intake,
            history: Recorder::start(
                node.store.clone(),
                usize::try_from(config.history_buffer).unwrap_or(usize::MAX),
                tasks,
            ),
            store: node.store,
            engine: node.engine,
            queue: node.queue,
            wake_workers,
            routes,
            changes,
            services: Err(Arc::from("Swarm services are not started on this node")),
            relay: None,
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
            max_streamed_bytes: config.max_streamed_bytes,
            callbacks: Arc::new(Callbacks::off()),
            max_schedules: config.app_max_schedules,
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

    /// The same state, calling services through `relay` (a worker's node).
    pub(crate) fn with_relay(mut self, relay: Option<Arc<Relay>>) -> AppState {
        self.relay = relay;
        self
    }

    /// The same state, sending callbacks as `callbacks` allows.
    pub(crate) fn with_callbacks(mut self, callbacks: Arc<Callbacks>) -> AppState {
        self.callbacks = callbacks;
        self
    }

    /// What runs this node's calls, sync and async.
    pub(crate) fn executor(&self) -> Executor {
        Executor {
            engine: self.engine.clone(),
            services: self.services.clone(),
            relay: self.relay.clone(),
            max_response_bytes: self.max_response_bytes,
            max_streamed_bytes: self.max_streamed_bytes,
        }
    }
}

/// The whole HTTP surface of a node: every route is registered with
/// `routes!` (see the module's doc), so it is in the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let v1 = OpenApiRouter::new()
        .routes(routes!(apps::list, apps::create))
        .routes(routes!(apps::get, apps::update, apps::delete))
        .routes(routes!(routes::list, routes::create))
        .routes(routes!(routes::get, routes::update, routes::delete))
        .routes(routes!(versions::list))
        .routes(routes!(versions::get))
        .routes(routes!(versions::compare))
        .routes(routes!(calls::list))
        .routes(routes!(calls::get, calls::cancel))
        .routes(routes!(calls::log))
        .routes(routes!(calls::output))
        .routes(routes!(calls::list_route))
        .routes(routes!(calls::find))
        .routes(routes!(calls::find_log))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::get, dead_letters::delete))
        .routes(routes!(dead_letters::replay))
        .routes(routes!(dead_letters::replay_all))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::get, keys::delete))
        .routes(routes!(schedules::list, schedules::create))
        .routes(routes!(
            schedules::get,
            schedules::update,
            schedules::delete
        ))
        .routes(routes!(services::list))
        .routes(routes!(openapi::document))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.api_body,
            body_cap::enforce,
        ));

    let calls = OpenApiRouter::new()
        // Every method reaches the function; the document names the eight
        // that OpenAPI knows.
        .routes(routes!(invoke::invoke).map(|_| any(invoke::invoke)))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.call_body,
            body_cap::enforce,
        ));

    // Behind the same gate as `/v1`: what a node serves, and how often, is
    // the operator's business.
    let metrics = OpenApiRouter::new().routes(routes!(metrics::scrape));

    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(system::ping))
        .routes(routes!(system::version))
        .routes(routes!(system::health))
        .nest("/v1", management(v1, &state))
        .nest("/r", calls)
        .merge(management(metrics, &state))
        .merge(crate::dashboard::router())
        .split_for_parts();
    openapi::finish(&mut document);

    router
        // OpenFaaS' gateway API: described by OpenFaaS' swagger, not here.
        .merge(openfaas::router(&state))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(Extension(openapi::Document::new(document)))
        // A 5xx of a function (exit code, timeout) is a result, not our
        // failure: the invoke path logs calls itself.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        // Outermost, so that every answer has the id, refusals included.
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// Put `routes` behind the management gate (`JWT_AUTH_KEY`, or loopback
/// clients only), in the router and in the document.
fn management(routes: OpenApiRouter<AppState>, state: &AppState) -> OpenApiRouter<AppState> {
    let mut routes = routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::guard_management,
        ))
        // Outside the guard, so that refused requests are counted too.
        .route_layer(middleware::from_fn(crate::metrics::api::record));
    openapi::require_management_token(routes.get_openapi_mut());
    routes
}

/// The answer of a change that has nothing else to show (deletes).
#[derive(Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
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
