//! Store errors, and how the API shows them.

use ferrite_model::{ApiError, CallStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("app {0:?} not found")]
    AppNotFound(String),
    #[error("route {path:?} of app {app:?} not found")]
    RouteNotFound { app: String, path: String },
    #[error("app {0:?} already exists")]
    AppExists(String),
    #[error("route {path:?} of app {app:?} already exists")]
    RouteExists { app: String, path: String },
    #[error("call {0:?} not found")]
    CallNotFound(String),
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
    #[error("app {app:?} still has {count} route(s); delete them first or delete the app with cascade (?cascade=true)")]
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
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::AppNotFound(_)
            | StoreError::RouteNotFound { .. }
            | StoreError::CallNotFound(_) => ApiError::not_found(err.to_string()),
            StoreError::AppExists(_)
            | StoreError::RouteExists { .. }
            | StoreError::CallExists(_)
            | StoreError::IllegalTransition { .. } => ApiError::conflict(err.to_string()),
            StoreError::AppHasRoutes { .. } => ApiError::bad_request(err.to_string()),
            StoreError::Invalid(api) => api,
            StoreError::Config(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)
            | StoreError::Migrate(_) => ApiError::internal(err.to_string()),
        }
    }
}
