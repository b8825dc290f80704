//! Endpoints about the node itself: ping, version, health.

use axum::extract::State;
use axum::Json;
use ferrite_model::{ApiError, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{AppState, Error};

/// The answer of `GET /`.
#[derive(Serialize, ToSchema)]
pub struct Ping {
    /// Always `"world!"`.
    hello: &'static str,
}

/// The answer of `GET /version`.
#[derive(Serialize, ToSchema)]
pub struct Version {
    /// The server's version.
    version: &'static str,
}

/// The answer of `GET /health` when the node can run calls.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `"ok"`.
    status: &'static str,
    /// `"ok"`, or `"unavailable"` while the database cannot be reached.
    store: &'static str,
    /// This node's id.
    node: String,
    memory_budget_mib: u64,
    memory_available_mib: u64,
    prestarted_containers: usize,
    hot_containers_idle: usize,
}

/// `GET /`: answers as long as the process serves HTTP.
#[utoipa::path(get, path = "/", tag = "system",
    responses((status = 200, description = "The process serves HTTP", body = Ping)))]
pub async fn ping() -> Json<Ping> {
    Json(Ping { hello: "world!" })
}

/// `GET /version`
#[utoipa::path(get, path = "/version", tag = "system",
    responses((status = 200, description = "The server's version", body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version {
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /health`: 200 only when the Docker engine answers too, so that a
/// load balancer stops sending calls to a node that cannot run them. A store
/// that cannot be reached leaves it 200 (`"store": "unavailable"`): the node
/// still serves the routes it knows, and a database shared by every node
/// would otherwise take them all out of the balancer at once.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "The node can run calls", body = Health),
        (status = 503, description = "The Docker engine (or the store, failing otherwise than by being away) does not answer",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, Error> {
    let unavailable = |what: String| ApiError::new(ErrorKind::Unavailable, what);
    let store = match state.store.ping().await {
        Ok(()) => "ok",
        Err(e) if e.is_unavailable() => "unavailable",
        Err(e) => return Err(unavailable(format!("store unavailable: {e}")).into()),
    };
    state.engine.docker().ping().await.map_err(|e| {
        unavailable(format!(
            "Docker engine at {} unavailable: {e}",
            state.engine.host()
        ))
    })?;
    Ok(Json(Health {
        status: "ok",
        store,
        node: state.engine.node_id().to_string(),
        memory_budget_mib: state.engine.memory_budget_mib(),
        memory_available_mib: state.engine.memory_available_mib(),
        prestarted_containers: state.engine.prestarted(),
        hot_containers_idle: state.engine.hot_idle(),
    }))
}
