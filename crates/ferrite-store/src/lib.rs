//! Where Ferrite keeps its durable state: apps and routes (call records come
//! later). One [`Store`] trait, one implementation per backend, and one
//! [`conformance`] suite that every implementation must pass.
#![forbid(unsafe_code)]

pub mod conformance;
mod error;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use ferrite_model::{App, AppInput, Route, RouteInput};

pub use error::StoreError;

/// Durable apps and routes. Every method is atomic: an update reads, merges
/// (with the model's rules) and writes in one transaction, so two nodes
/// patching different config keys of one app at once both win.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Insert a new app; [`StoreError::AppExists`] if the name is taken.
    async fn create_app(&self, app: &App) -> Result<(), StoreError>;
    async fn get_app(&self, name: &str) -> Result<App, StoreError>;
    /// Every app, by name.
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    /// Apply a PATCH with [`App::apply`] and return the result.
    async fn update_app(&self, name: &str, patch: AppInput) -> Result<App, StoreError>;
    /// Delete an app. With routes left it fails with
    /// [`StoreError::AppHasRoutes`] unless `cascade`, which deletes them too.
    async fn delete_app(&self, name: &str, cascade: bool) -> Result<(), StoreError>;

    /// Insert a new route, creating its app (with no config) when missing, as
    /// IronFunctions did; [`StoreError::RouteExists`] if the path is taken.
    async fn create_route(&self, route: &Route) -> Result<(), StoreError>;
    async fn get_route(&self, app: &str, path: &str) -> Result<Route, StoreError>;
    /// Routes of an existing app, by path; [`StoreError::AppNotFound`] otherwise.
    async fn list_routes(&self, app: &str) -> Result<Vec<Route>, StoreError>;
    /// Apply a PATCH with [`Route::apply`] and return the result.
    async fn update_route(
        &self,
        app: &str,
        path: &str,
        patch: RouteInput,
    ) -> Result<Route, StoreError>;
    async fn delete_route(&self, app: &str, path: &str) -> Result<(), StoreError>;

    /// Check that the backend answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Open the store named by a `DB_URL`, running its migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::Config(format!(
            "DB_URL {url:?}: unsupported database {scheme:?}; use sqlite://path/to/file.db"
        )))
    }
}

/// Milliseconds since the Unix epoch, the time unit of every table.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
