//! Endpoints about the node itself: ping, version, health.

use axum::extract::State;
use axum::Json;
use ferrite_model::{ApiError, ErrorKind};
use serde_json::{json, Value};

use super::{AppState, Error};

/// `GET /`: answers as long as the process serves HTTP.
pub async fn ping() -> Json<Value> {
    Json(json!({ "hello": "world!" }))
}

/// `GET /version`
pub async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /health`: 200 only when the Docker engine answers too, so that a
/// load balancer stops sending calls to a node that cannot run them. A store
/// that cannot be reached leaves it 200 (`"store": "unavailable"`): the node
/// still serves the routes it knows, and a database shared by every node
/// would otherwise take them all out of the balancer at once.
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, Error> {
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
    Ok(Json(json!({
        "status": "ok",
        "store": store,
        "node": state.engine.node_id(),
        "memory_budget_mib": state.engine.memory_budget_mib(),
        "memory_available_mib": state.engine.memory_available_mib(),
        "prestarted_containers": state.engine.prestarted(),
        "hot_containers_idle": state.engine.hot_idle(),
    })))
}
