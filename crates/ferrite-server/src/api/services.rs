//! `/v1/services`: the routes that run as Swarm services on this node.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::services::ServiceView;

/// The answer of `GET /v1/services`.
#[derive(Serialize, ToSchema)]
pub struct ServiceList {
    services: Vec<ServiceView>,
    /// Why this node runs no services, when it runs none by design.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Every service this node runs (none when it runs no services: `reason`
/// says why).
#[utoipa::path(get, path = "/services", tag = "services",
    responses((status = 200, description = "This node's services, by app and path", body = ServiceList)))]
pub async fn list(State(state): State<AppState>) -> Json<ServiceList> {
    Json(match &state.services {
        Ok(services) => ServiceList {
            services: services.list(),
            reason: None,
        },
        Err(reason) => ServiceList {
            services: Vec::new(),
            reason: Some(reason.to_string()),
        },
    })
}
