//! The error a client sees, as data: what kind of failure it is, and a
//! message for people.
//!
//! The kinds say what happened (a validation rule broken, an object missing
//! or already there, a component away); which HTTP status and body each
//! kind is answered with is decided by the server's API layer alone.

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a validation rule.
    BadRequest,
    /// Missing or invalid credentials.
    Unauthorized,
    /// Valid credentials that do not reach this object or action (an app
    /// key used on another app, or beyond its access).
    Forbidden,
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

/// The kind and message of a failure that the API layer renders for the
/// client; libraries build it, only the server turns it into an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What went wrong; it alone decides how the failure is answered.
    pub kind: ErrorKind,
    /// What the client reads, so it says what to fix or what to do.
    pub message: String,
}

impl ApiError {
    /// A failure of `kind`, told to the client as `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// The request breaks a rule: [`ErrorKind::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// [`ErrorKind::Unauthorized`].
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    /// [`ErrorKind::Forbidden`].
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// The messages of the failures IronFunctions had, word for word: clients
/// written for it compare error texts, so Ferrite answers these cases with
/// them (and its own statuses). Failures IronFunctions did not have keep
/// Ferrite's own wording. docs/compatibility.md lists them all.
pub mod text {
    pub const INVALID_JSON: &str = "Invalid JSON";
    pub const APP_NOT_FOUND: &str = "App not found";
    pub const APP_EXISTS: &str = "App already exists";
    pub const APP_HAS_ROUTES: &str = "Cannot remove apps with routes";
    pub const APP_NAME_MISSING: &str = "Missing app name";
    /// With IronFunctions' (and Ferrite's) limit of 30 characters.
    pub const APP_NAME_TOO_LONG: &str = "App name must be 30 characters or less";
    pub const APP_NAME_INVALID: &str = "Invalid app name";
    pub const APP_NAME_IMMUTABLE: &str = "Could not update app - name is immutable";
    pub const APP_MISSING_NEW: &str = "Missing new application";
    pub const ROUTE_NOT_FOUND: &str = "Route not found";
    /// A call to a route the app does not have (`/r/{app}/{path}`).
    pub const CALLED_ROUTE_NOT_FOUND: &str = "Route not found on that application";
    pub const ROUTE_EXISTS: &str = "Route already exists";
    pub const ROUTE_MISSING_NEW: &str = "Missing new route";
    pub const ROUTE_PATH_IMMUTABLE: &str = "Could not update route - path is immutable";
    pub const ROUTE_PATH_MISSING: &str = "Missing route Path";
    pub const ROUTE_PATH_INVALID: &str = "Invalid Path format";
    pub const ROUTE_PATH_DYNAMIC: &str = "Dynamic URL is not allowed";
    pub const ROUTE_IMAGE_MISSING: &str = "Missing route Image";
    pub const ROUTE_TYPE_INVALID: &str = "Invalid route Type";
    pub const ROUTE_FORMAT_INVALID: &str = "Invalid route Format";
    pub const ROUTE_TIMEOUT_NEGATIVE: &str = "Negative timeout";
    pub const ROUTE_IDLE_TIMEOUT_NEGATIVE: &str = "Negative idle timeout";
    pub const ROUTE_MAX_CONCURRENCY_NEGATIVE: &str = "Negative MaxConcurrency";
    /// A call that ran past its route's timeout.
    pub const TIMED_OUT: &str = "Timed out";
    /// Fn's text (IronFunctions had no call history).
    pub const CALL_NOT_FOUND: &str = "Call not found";
    /// Ferrite's own (no peer has a dead-letter list).
    pub const DEAD_LETTER_NOT_FOUND: &str = "Dead letter not found";
    /// Ferrite's own (no peer has schedules).
    pub const SCHEDULE_NOT_FOUND: &str = "Schedule not found";
    /// A fault of the node whose cause is for its log, not for the client.
    pub const INTERNAL: &str = "Something unexpected happened on the server";
}

/// Asserts that `result` refuses the request with a message holding
/// `needle`, and gives the refusal for more checks.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, ApiError>,
    needle: &str,
) -> ApiError {
    let err = result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest, "{}", err.message);
    assert!(
        err.message.contains(needle),
        "{needle:?} not in {:?}",
        err.message
    );
    err
}
