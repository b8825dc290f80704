//! Endpoints about the node itself: ping, version, health.

use axum::extract::State;
use axum::Json;
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

/// `GET /health`: 200 only when the store answers too.
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    state.store.ping().await.map_err(|e| {
        ferrite_model::ApiError::new(
            ferrite_model::ErrorKind::Unavailable,
            format!("store unavailable: {e}"),
        )
    })?;
    Ok(Json(json!({ "status": "ok" })))
}
