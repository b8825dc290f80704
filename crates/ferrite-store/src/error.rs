//! Store errors: what the store refused or could not do, and the kind of
//! failure each is for a client.

use ferrite_model::error::text;
use ferrite_model::{ApiError, CallStatus, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The texts of the failures IronFunctions had are its own, word for
    // word (clients compare them); the names stay in the fields for logs.
    #[error("{}", text::APP_NOT_FOUND)]
    AppNotFound(String),
    #[error("{}", text::ROUTE_NOT_FOUND)]
    RouteNotFound { app: String, path: String },
    #[error("{}", text::APP_EXISTS)]
    AppExists(String),
    #[error("{}", text::ROUTE_EXISTS)]
    RouteExists { app: String, path: String },
    #[error("{}", text::CALL_NOT_FOUND)]
    CallNotFound(String),
    #[error("{}", text::DEAD_LETTER_NOT_FOUND)]
    DeadLetterNotFound(String),
    /// The route exists but has no such version (never made, or trimmed).
    #[error("route {path} has no version {version}")]
    VersionNotFound {
        app: String,
        path: String,
        version: u32,
    },
    #[error("no API key has the id {0:?}")]
    KeyNotFound(String),
    /// A new key over [`KeyBounds`](crate::KeyBounds): `of` says whose.
    #[error("{of} has {max} API keys already, the most allowed: revoke one first")]
    TooManyKeys { of: String, max: u32 },
    #[error("{}", text::SCHEDULE_NOT_FOUND)]
    ScheduleNotFound(String),
    #[error("call {0:?} already exists")]
    CallExists(String),
    /// A status change the call's lifecycle does not allow (it was, for
    /// example, already final).
    #[error("call {id:?} is {from} and cannot become {to}")]
    IllegalTransition {
        id: String,
        from: CallStatus,
        to: CallStatus,
    },
    /// Deleting an app with routes without `?cascade=true`.
    #[error("{}", text::APP_HAS_ROUTES)]
    AppHasRoutes { app: String, count: i64 },
    /// An update that the model's rules refused.
    #[error(transparent)]
    Invalid(#[from] ApiError),
    /// A bad `DB_URL` or an unusable data directory.
    #[error("{0}")]
    Config(String),
    /// A stored value that does not decode: the database was changed by hand
    /// or by an incompatible version.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database is known not to answer (a node stops asking it until it
    /// answers a probe again): nothing was tried.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

/// SQLSTATE classes and codes that say the server, not the request, is the
/// trouble: connection exceptions (class 08), a server shutting down or
/// starting up (57P01 to 57P03), and no connection slot left (53300).
fn is_server_gone(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, out of
    /// connections, or no connection within the pool's timeout), as opposed
    /// to a request it refused: the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| is_server_gone(&code)),
                _ => false,
            },
            _ => false,
        }
    }

    /// What kind of failure this is for a client: a refused request (missing,
    /// already there, against a rule), the database away, or a fault.
    pub fn kind(&self) -> ErrorKind {
        if self.is_unavailable() {
            return ErrorKind::Unavailable;
        }
        match self {
            StoreError::AppNotFound(_)
            | StoreError::RouteNotFound { .. }
            | StoreError::CallNotFound(_)
            | StoreError::DeadLetterNotFound(_)
            | StoreError::KeyNotFound(_)
            | StoreError::VersionNotFound { .. }
            | StoreError::ScheduleNotFound(_) => ErrorKind::NotFound,
            StoreError::AppExists(_)
            | StoreError::RouteExists { .. }
            | StoreError::CallExists(_)
            | StoreError::IllegalTransition { .. }
            | StoreError::TooManyKeys { .. } => ErrorKind::Conflict,
            StoreError::AppHasRoutes { .. } => ErrorKind::BadRequest,
            StoreError::Invalid(api) => api.kind,
            StoreError::Config(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Unavailable(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_database_is_unavailable() {
        for gone in [
            StoreError::Unavailable("down".into()),
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::PoolClosed),
            StoreError::Database(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            )),
        ] {
            assert!(gone.is_unavailable(), "{gone}");
            assert_eq!(gone.kind(), ErrorKind::Unavailable);
        }
        for refused in [
            StoreError::AppNotFound("a".into()),
            StoreError::Corrupt("x".into()),
            StoreError::Database(sqlx::Error::RowNotFound),
        ] {
            assert!(!refused.is_unavailable(), "{refused}");
            assert_ne!(refused.kind(), ErrorKind::Unavailable);
        }
    }
}
