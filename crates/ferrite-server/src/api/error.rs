//! The one place a failure becomes an HTTP answer: each [`ErrorKind`]'s
//! status, the `{"error":{"message":...}}` body with `Content-Type:
//! application/json`, and the headers some statuses call for
//! (`WWW-Authenticate`, `Retry-After`). Libraries say what went wrong as a
//! kind; only this module knows HTTP.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrite_model::contract;
use ferrite_model::error::text;
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
        Error(store_failure(err))
    }
}

/// A store's error as the client sees it: its kind, and its own words except
/// when the database is away or failed, whose cause is for the node's log
/// (a fault is told in IronFunctions' words).
pub fn store_failure(err: StoreError) -> ApiError {
    let kind = err.kind();
    let message = match (kind, err) {
        (_, StoreError::Invalid(api)) => api.message,
        (ErrorKind::Unavailable, _) => {
            "the database is unavailable (it may be restarting); try again in a few seconds"
                .to_string()
        }
        (ErrorKind::Internal, err) => {
            tracing::error!(error = %err, "the store failed");
            text::INTERNAL.to_string()
        }
        (_, err) => err.to_string(),
    };
    ApiError::new(kind, message)
}

/// The HTTP status each kind of failure is answered with.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
        ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body clients receive for a failure.
pub fn body(message: &str) -> serde_json::Value {
    contract::error_body(message, None)
}

/// The body of a failed call: [`body`] with the call's id as `request_id`,
/// where IronFunctions put it (clients look the call up with it).
pub fn call_body(message: &str, call_id: &str) -> serde_json::Value {
    contract::error_body(message, Some(call_id))
}

/// The error answer of a call that was given an id ([`call_body`]).
#[derive(utoipa::ToSchema)]
#[cfg_attr(test, derive(serde::Deserialize), serde(deny_unknown_fields))]
#[allow(dead_code)] // built only by the test that holds it to `call_body`
pub struct CallErrorBody {
    /// The call's id (`Fn-Call-Id`): `/v1/calls/{call}` finds it.
    request_id: String,
    #[schema(inline)]
    error: ErrorMessage,
}

/// Every error answer: what went wrong, under `error`. (What [`body`]
/// writes, as the OpenAPI document shows it.)
#[derive(utoipa::ToSchema)]
#[cfg_attr(test, derive(serde::Deserialize), serde(deny_unknown_fields))]
#[allow(dead_code)] // built only by the test that holds it to `body`
pub struct ErrorBody {
    #[schema(inline)]
    error: ErrorMessage,
}

#[derive(utoipa::ToSchema)]
#[cfg_attr(test, derive(serde::Deserialize), serde(deny_unknown_fields))]
#[allow(dead_code)] // as above
pub struct ErrorMessage {
    /// What went wrong, and often what to do about it.
    message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

impl Error {
    /// The answer to a call that has an id: the body carries it
    /// ([`call_body`]).
    pub fn for_call(self, call_id: &str) -> Response {
        self.respond(Some(call_id))
    }

    /// The answer with the message as plain text: OpenFaaS' gateway answers
    /// its errors so, and its clients print the body as it is. Status and
    /// headers are the same as the JSON answer's.
    pub fn as_text(self) -> Response {
        let message = self.0.message.clone();
        let mut response = self.respond(None);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = axum::body::Body::from(message);
        response
    }

    fn respond(self, call_id: Option<&str>) -> Response {
        let status = status(self.0.kind);
        // A 503 is a passing state the node expects (and says so in its own
        // log line); other server errors are the node's failures.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(status = status.as_u16(), error = %self.0.message, "request refused");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.0.message, "request failed");
        }
        let body = match call_id {
            Some(id) => call_body(&self.0.message, id),
            None => body(&self.0.message),
        };
        let mut response = (status, Json(body)).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_keep_their_words_except_an_absent_database() {
        let missing = store_failure(StoreError::AppNotFound("a".into()));
        assert_eq!(status(missing.kind), StatusCode::NOT_FOUND);
        assert_eq!(missing.message, "App not found");
        let broken = store_failure(StoreError::Corrupt("bad row".into()));
        assert_eq!(status(broken.kind), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(broken.message, text::INTERNAL);
        let taken = store_failure(StoreError::AppExists("a".into()));
        assert_eq!(status(taken.kind), StatusCode::CONFLICT);
        let invalid = store_failure(StoreError::Invalid(ApiError::bad_request("no")));
        assert_eq!(
            (status(invalid.kind), invalid.message.as_str()),
            (StatusCode::BAD_REQUEST, "no")
        );
        let away = store_failure(StoreError::Unavailable("connection refused".into()));
        assert_eq!(status(away.kind), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!away.message.contains("refused"), "{}", away.message);
    }

    #[test]
    fn the_body_is_the_message_under_error() {
        assert_eq!(
            serde_json::to_string(&body("App not found")).unwrap(),
            r#"{"error":{"message":"App not found"}}"#
        );
        // The document's schema is this body, field for field.
        let read: ErrorBody = serde_json::from_value(body("no")).unwrap();
        assert_eq!(read.error.message, "no");
        let read: CallErrorBody = serde_json::from_value(call_body("Timed out", "c1")).unwrap();
        assert_eq!(
            (read.request_id.as_str(), read.error.message.as_str()),
            ("c1", "Timed out")
        );
    }
}
