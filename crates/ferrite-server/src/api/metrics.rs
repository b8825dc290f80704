//! `GET /metrics`: the node's metrics in Prometheus' text format, from
//! memory (a scrape asks nothing of the store, the queue or the engine's
//! API; the engine's pools are read in memory).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "The node's metrics (Prometheus text format 0.0.4)",
        content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state.engine),
    )
}
