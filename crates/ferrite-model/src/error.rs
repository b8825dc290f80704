//! The API error: a kind that knows its HTTP status, and a message for people.
//!
//! Every failure a client can see is built here, so the status codes of the
//! deliberate fixes over IronFunctions (400 for validation, 404 for missing,
//! 409 for duplicates) are decided in one place.

use serde_json::json;

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a validation rule.
    BadRequest,
    /// Missing or invalid credentials.
    Unauthorized,
    /// The app, route or path does not exist.
    NotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The object already exists.
    Conflict,
    /// The request body is over the configured limit.
    PayloadTooLarge,
    /// A limit on the app's calls (in flight, per second, queued) is
    /// reached; the client may try again after `retry_after_s` seconds
    /// (answered as `Retry-After`).
    TooManyRequests { retry_after_s: u64 },
    /// The function or a component behind us answered badly.
    BadGateway,
    /// The function did not answer in time.
    GatewayTimeout,
    /// The feature exists in the API but not in this version.
    NotImplemented,
    /// The node cannot take the request now (overload, shutting down).
    Unavailable,
    /// A fault of ours or of a component we depend on.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code this kind is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::TooManyRequests { .. } => 429,
            ErrorKind::BadGateway => 502,
            ErrorKind::GatewayTimeout => 504,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// An error answered to an API client as `{"error":{"message":...}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The JSON body clients receive.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message } })
    }
}
