//! Caps on request bodies: `/v1` (`API_MAX_BODY_BYTES`) and function calls
//! (`FN_MAX_REQUEST_BYTES`, for every kind of route: containers, hot, async,
//! services).
//!
//! The cap is put on the body itself, before any handler sees it: reading
//! the body fails at the first byte over the cap, however and wherever it is
//! read, with or without `Content-Length`. A body declared larger than the
//! cap is still read up to it, not refused unread: a client still sending
//! when the server answers and closes gets a reset instead of the 413 (most
//! HTTP clients then report a broken pipe), and up to the cap the server
//! reads anyway for a chunked body. axum's own `DefaultBodyLimit` is
//! switched off under these routes so that there is one cap, and one
//! message.

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use ferrite_model::{ApiError, ErrorKind};
use http_body_util::Limited;

/// One cap: its size, and what the client is told about it.
#[derive(Debug, Clone, Copy)]
pub struct BodyCap {
    pub max_bytes: usize,
    /// The setting that changes it.
    pub setting: &'static str,
    /// Whose bodies it caps, for the message ("function calls").
    pub of: &'static str,
}

impl BodyCap {
    /// The 413 of a body over this cap.
    pub fn too_large(&self) -> ApiError {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "request body is larger than the limit for {}: {} bytes ({})",
                self.of, self.max_bytes, self.setting
            ),
        )
    }

    /// Why a body could not be read: over this cap (413) or broken off (400).
    pub fn body_error(&self, rejection: &BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            self.too_large()
        } else {
            ApiError::bad_request(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

/// Middleware: cap the body. The cap goes with the request (an extension),
/// for the message of whoever reads the body.
pub async fn enforce(State(cap): State<BodyCap>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(cap);
    next.run(request.map(|body| Body::new(Limited::new(body, cap.max_bytes))))
        .await
}
