//! How an [`ApiError`] becomes an HTTP answer: its status and
//! `{"error":{"message":...}}` with `Content-Type: application/json`, and
//! the headers some statuses call for (`WWW-Authenticate`, `Retry-After`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrite_model::{ApiError, ErrorKind};
use ferrite_store::StoreError;

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
        if status.is_server_error() {
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
            // What the node waits on (store, engine) is usually back within
            // seconds.
            ErrorKind::Unavailable => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            _ => {}
        }
        response
    }
}
