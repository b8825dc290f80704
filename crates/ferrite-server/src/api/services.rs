//! `/v1/services`: the routes that run as Swarm services on this node.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// Every service this node runs (none when it runs no services: `reason`
/// says why).
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    match &state.services {
        Ok(services) => Json(json!({ "services": services.list() })),
        Err(reason) => Json(json!({ "services": [], "reason": &**reason })),
    }
}
