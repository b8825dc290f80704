//! How an [`ApiError`] becomes an HTTP answer: its status and
//! `{"error":{"message":...}}` with `Content-Type: application/json`, and
//! the headers some statuses call for (`WWW-Authenticate`, `Retry-After`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrite_model::{ApiError, ErrorKind};
use ferrite_store::StoreError;

/// Seconds a client is told to wait after a 503 (`Retry-After`): the
/// engine's probe sees it back within a second of its answering again.
pub const UNAVAILABLE_RETRY_AFTER_S: u64 = 1;

/// A handler's error. A newtype because neither [`ApiError`] nor
/// [`IntoResponse`] belongs to this crate.
#[derive(Debug)]
pub struct Error(pub ApiError);

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Error {
        Error(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        Error(err.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A 503 is a passing state the node expects (and says so in its own
        // log line); other server errors are the node's failures.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(status = status.as_u16(), error = %self.0.message, "request refused");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.0.message, "request failed");
        }
        let mut response = (status, Json(self.0.body())).into_response();
        match self.0.kind {
            ErrorKind::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorKind::TooManyRequests { retry_after_s } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            }
            // Every 503 is a passing state (the engine or the store away, the
            // node full or stopping): a client may try again shortly.
            ErrorKind::Unavailable => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_S),
                );
            }
            _ => {}
        }
        response
    }
}
