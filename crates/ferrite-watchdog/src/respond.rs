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
use ferrite_model::contract::{error_body, output_content_type};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the watchdog itself said went wrong, kept on its error answers so
/// that the answer to a call can name the call ([`call_error`]), while a
/// function's own answer, whatever its status, is left as it is.
#[derive(Debug, Clone)]
pub struct OwnError(pub String);

/// The error JSON with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    json_error(status, message, None)
}

/// The error JSON of a call, with its id as `request_id`, as the server
/// answers a failed call (and IronFunctions did).
pub fn call_error(status: StatusCode, message: &str, call_id: &str) -> Response {
    json_error(status, message, Some(call_id))
}

fn json_error(status: StatusCode, message: &str, call_id: Option<&str>) -> Response {
    let body = error_body(message, call_id);
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response();
    response
        .extensions_mut()
        .insert(OwnError(message.to_string()));
    response
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
