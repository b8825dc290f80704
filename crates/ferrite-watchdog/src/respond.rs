//! The watchdog's own answers: the function's output, and errors as
//! `{"error":{"message":...}}` with the status Ferrite gives the same
//! failure, so a caller cannot tell a service from a cold or hot route.
//! The watchdog is its own small HTTP server inside a function's task, so
//! it states those statuses itself rather than reaching into the server.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrite_model::contract::output_content_type;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The error JSON with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": { "message": message } }))
        .unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A cold function's output: 200, text when it is UTF-8.
pub fn output(stdout: Vec<u8>) -> Response {
    let content_type = HeaderValue::from_static(output_content_type(&stdout));
    let mut response = Response::new(Body::from(stdout));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Wait up to `wait` for one of the slots.
pub async fn take_slot(slots: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout(wait, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Every slot stayed busy for the whole wait.
pub fn busy(slots: usize, waited: Duration) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "all {slots} function processes stayed busy for {} s (--concurrency)",
            waited.as_secs()
        ),
    )
}
