//! `GET /metrics`: the node's metrics in Prometheus' text format, from
//! memory (a scrape asks nothing of the store).

use axum::http::header;
use axum::response::IntoResponse;

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "The node's metrics (Prometheus text format 0.0.4)",
        content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn scrape() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}
