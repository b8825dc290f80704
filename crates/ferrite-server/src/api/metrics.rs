//! `GET /metrics`: the node's metrics in Prometheus' text format, from
//! memory (a scrape asks nothing of the store).

use axum::http::header;
use axum::response::IntoResponse;

pub async fn scrape() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}
