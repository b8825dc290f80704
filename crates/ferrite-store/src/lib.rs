//! Where Ferrite keeps its durable state: apps, routes with their versions,
//! call records with their logs, and schedules ([`Schedules`]). One [`Store`] trait, one
//! implementation per backend ([`sqlite`]
//! embedded, [`postgres`] shared by every node), and one conformance suite
//! (in `tests/`) that every implementation must pass.
//!
//! It must not know how calls run or how they are served: nothing here knows
//! containers, HTTP or the queue. It keeps what it is given and says what
//! went wrong as a [`StoreError`], whose [`kind`](StoreError::kind) the
//! server's API layer answers with a status.
#![forbid(unsafe_code)]

mod error;
pub mod postgres;
mod rows;
pub mod schedules;
mod sql;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferrite_model::{ApiKey, App, AppInput, Call, CallStatus, Route, RouteInput, RouteVersion};

pub use error::StoreError;
pub use schedules::{CatchUp, Schedule, Schedules};

/// Durable apps and routes. Every method is atomic: an update reads, merges
/// (with the model's rules) and writes in one transaction, so two nodes
/// patching different config keys of one app at once both win.
#[async_trait]
pub trait Store: Schedules + Send + Sync + 'static {
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
    /// IronFunctions did, and its version 1 in the same transaction;
    /// [`StoreError::RouteExists`] if the path is taken.
    async fn create_route(&self, route: &Route) -> Result<(), StoreError>;
    /// A route of `app`; [`StoreError::RouteNotFound`] if the app has no
    /// such route, [`StoreError::AppNotFound`] if there is no such app.
    async fn get_route(&self, app: &str, path: &str) -> Result<Route, StoreError>;
    /// Routes of an existing app, by path; [`StoreError::AppNotFound`] otherwise.
    async fn list_routes(&self, app: &str) -> Result<Vec<Route>, StoreError>;
    /// Apply a PATCH with [`Route::apply`] and return the result. A change
    /// of the route's definition keeps it as a new version in the same
    /// transaction (older versions beyond [`MAX_VERSIONS_PER_ROUTE`] go,
    /// unless its traffic names them); a `traffic` may name only versions
    /// the route keeps, none with a service section
    /// ([`StoreError::Invalid`] otherwise).
    async fn update_route(
        &self,
        app: &str,
        path: &str,
        patch: RouteInput,
    ) -> Result<Route, StoreError>;
    async fn delete_route(&self, app: &str, path: &str) -> Result<(), StoreError>;
    /// The versions a route keeps, newest first (see
    /// [`MAX_VERSIONS_PER_ROUTE`]); the errors of [`Store::get_route`].
    async fn list_route_versions(
        &self,
        app: &str,
        path: &str,
    ) -> Result<Vec<RouteVersion>, StoreError>;
    /// Version `version` of a route; [`StoreError::VersionNotFound`] if the
    /// route does not keep it, else the errors of [`Store::get_route`].
    async fn get_route_version(
        &self,
        app: &str,
        path: &str,
        version: u32,
    ) -> Result<RouteVersion, StoreError>;

    /// Record a new call; [`StoreError::CallExists`] if the id is taken,
    /// [`StoreError::AppNotFound`] if its app does not exist.
    async fn insert_call(&self, call: &Call) -> Result<(), StoreError>;
    /// Record new calls in one write transaction (one commit, one disk
    /// flush for the lot): all of them or, on any error, none. The errors
    /// are [`Store::insert_call`]'s, for the first call that has one.
    async fn insert_calls(&self, calls: &[Call]) -> Result<(), StoreError>;
    /// Record calls that already happened (the history of sync calls, written
    /// after they end), each with its log when it has a non-empty one, in
    /// one write transaction: at many calls per second, one commit per call
    /// would queue writers behind each other's disk flushes. A call whose app
    /// no longer exists (deleted meanwhile) or whose id is already recorded
    /// is skipped, not an error, so one such call cannot lose the rest of the
    /// batch. Returns how many calls were inserted.
    async fn record_calls(&self, calls: &[RecordedCall]) -> Result<u64, StoreError>;
    /// Move a call along its lifecycle as [`CallUpdate`] says, with
    /// [`Call::advance`], in one transaction, and return the result;
    /// [`StoreError::CallNotFound`] if there is no such call,
    /// [`StoreError::IllegalTransition`] (nothing written, not even the log
    /// or the output) if its lifecycle forbids the move.
    async fn update_call(&self, id: &str, update: &CallUpdate<'_>) -> Result<Call, StoreError>;
    /// A call of `app`; [`StoreError::CallNotFound`] if none has this id there.
    async fn get_call(&self, app: &str, id: &str) -> Result<Call, StoreError>;
    /// A call by its id alone, whatever its app (Fn's `/v1/calls/{call}`);
    /// [`StoreError::CallNotFound`] if none has this id.
    async fn find_call(&self, id: &str) -> Result<Call, StoreError>;
    /// The stored output of a call of `app` (`None` if none was kept).
    async fn call_output(&self, app: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Calls of an existing app, newest first, one page at a time;
    /// [`StoreError::AppNotFound`] otherwise.
    async fn list_calls(&self, app: &str, filter: CallFilter) -> Result<Vec<Call>, StoreError>;
    /// Store (or replace) a call's log; [`StoreError::CallNotFound`] if the
    /// call does not exist.
    async fn put_call_log(&self, id: &str, log: &[u8]) -> Result<(), StoreError>;
    /// A call's log, empty if none was written;
    /// [`StoreError::CallNotFound`] if `app` has no such call.
    async fn get_call_log(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError>;
    /// How many calls of `app` are queued (waiting for a worker, first or
    /// again), for the cap on queued async calls; 0 for an unknown app.
    async fn count_queued_calls(&self, app: &str) -> Result<u64, StoreError>;
    /// The request kept with a dead letter of `app`;
    /// [`StoreError::DeadLetterNotFound`] if `app` has none with this id.
    async fn dead_letter(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError>;
    /// Take call `id` of `app` out of the dead-letter list (the call record
    /// stays); [`StoreError::DeadLetterNotFound`] if it is not there.
    async fn delete_dead_letter(&self, app: &str, id: &str) -> Result<(), StoreError>;
    /// Delete final calls completed before `older_than_ms`, with their logs;
    /// returns how many calls went.
    async fn purge_calls(&self, older_than_ms: i64) -> Result<u64, StoreError>;

    /// Keep a new API key of an existing app with the hash of its secret;
    /// [`StoreError::AppNotFound`] without the app,
    /// [`StoreError::TooManyKeys`] over `bounds`.
    async fn create_key(
        &self,
        key: &ApiKey,
        secret_hash: &[u8],
        bounds: KeyBounds,
    ) -> Result<(), StoreError>;
    /// A key with the hash of its secret, to check a presented one;
    /// [`StoreError::KeyNotFound`] if none has this id (or it was revoked).
    async fn get_key(&self, id: &str) -> Result<StoredKey, StoreError>;
    /// Every key, by app, then by when it was made.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revoke a key: its row goes; [`StoreError::KeyNotFound`] if none has
    /// this id.
    async fn delete_key(&self, id: &str) -> Result<(), StoreError>;

    /// Check that the backend answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Versions a route keeps besides those its traffic names: the newest.
/// Enough to roll back through months of deploys; few enough that a route
/// changed by every CI run does not grow without end.
pub const MAX_VERSIONS_PER_ROUTE: u32 = 100;

/// A key as kept: what the API shows of it, and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key: ApiKey,
    /// SHA-256 of the secret, to compare a presented secret's hash with.
    pub secret_hash: Vec<u8>,
}

/// How many keys [`Store::create_key`] lets there be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBounds {
    /// Keys of one app.
    pub per_app: u32,
    /// Keys of all apps. Checked in the same transaction as the app's
    /// count; two nodes creating keys of different apps at once may pass
    /// it by one each.
    pub total: u32,
}

/// A call that already happened, with its log, for [`Store::record_calls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// The record as it ends up (any status, typically final).
    pub call: Call,
    /// What the function wrote to stderr; `None` or empty stores no log.
    pub log: Option<Vec<u8>>,
}

/// One step of a call's life, as [`Store::update_call`] writes it.
///
/// The result of an attempt (status, error, output, log) travels together so
/// that finishing an async call is one commit: a reader never sees a final
/// call whose log or output is still missing, and a crash between two writes
/// cannot leave one without the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallUpdate<'a> {
    /// The state to move to.
    pub next: CallStatus,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Replaces the call's error (`None` clears it, so a call that succeeds
    /// on retry carries no stale error).
    pub error: Option<&'a str>,
    /// When given, replaces the call's stored output; `None` keeps it.
    pub output: Option<&'a [u8]>,
    /// When given, stores or replaces the call's log; `None` keeps it.
    pub log: Option<&'a [u8]>,
    /// When given, the version of its route that serves the call (set as
    /// an attempt starts); `None` keeps it.
    pub version: Option<u32>,
    /// When given, the request that made the call, kept in the dead-letter
    /// list with the move, in the same transaction: for a call that ends in
    /// error or timeout for good.
    pub dead_letter: Option<DeadLetter<'a>>,
}

/// A call's entry in its app's dead-letter list, as it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The request that made the call (the queued call, encoded).
    pub request: &'a [u8],
    /// How many letters the app keeps: writing this one drops the app's
    /// oldest beyond it, so that a function failing every call cannot grow
    /// the list without end.
    pub keep: u32,
}

impl<'a> DeadLetter<'a> {
    /// A letter of `request`, the app keeping [`MAX_DEAD_LETTERS_PER_APP`].
    pub fn new(request: &'a [u8]) -> Self {
        DeadLetter {
            request,
            keep: MAX_DEAD_LETTERS_PER_APP,
        }
    }
}

/// The dead letters an app keeps: the newest, by the calls' creation.
pub const MAX_DEAD_LETTERS_PER_APP: u32 = 10_000;

impl CallUpdate<'_> {
    /// A move to `next` at `at_ms` that clears the error and keeps the
    /// output and the log; set the other fields for more.
    pub fn new(next: CallStatus, at_ms: i64) -> Self {
        CallUpdate {
            next,
            at_ms,
            error: None,
            output: None,
            log: None,
            version: None,
            dead_letter: None,
        }
    }
}

/// The largest page [`Store::list_calls`] returns.
pub const MAX_CALLS_PAGE: u32 = 1000;

/// Which calls [`Store::list_calls`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls of this route.
    pub path: Option<String>,
    /// Only calls in this state.
    pub status: Option<CallStatus>,
    /// Only calls older than this id (exclusive): the last id of the
    /// previous page.
    pub cursor: Option<String>,
    /// Only calls in the dead-letter list.
    pub dead_letters: bool,
    /// Only calls created at or after this time (ms since the Unix epoch).
    pub created_from_ms: Option<i64>,
    /// Only calls created at or before this time (ms since the Unix epoch).
    pub created_to_ms: Option<i64>,
    /// Page size, `1..=`[`MAX_CALLS_PAGE`]; anything else is
    /// [`StoreError::Invalid`].
    pub limit: u32,
}

impl Default for CallFilter {
    fn default() -> Self {
        CallFilter {
            path: None,
            status: None,
            cursor: None,
            dead_letters: false,
            created_from_ms: None,
            created_to_ms: None,
            limit: 100,
        }
    }
}

/// How long a query of a PostgreSQL store waits for a connection by default
/// (`FERRITE_DB_TIMEOUT`): long enough for a loaded pool, short enough that
/// a request fails fast while the server is away.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Open the store named by a `DB_URL` (`sqlite:`, `postgres://` or
/// `postgresql://`), running its migrations. `timeout` bounds how long a
/// query waits for a PostgreSQL connection; a SQLite file is always there.
pub async fn open(url: &str, timeout: Duration) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::open(url).await?)),
        "postgres" | "postgresql" => {
            Ok(Arc::new(postgres::PostgresStore::open(url, timeout).await?))
        }
        _ => Err(StoreError::Config(format!(
            "DB_URL: unsupported database {scheme:?}; use sqlite://path/to/file.db \
             or postgres://user:password@host/database"
        ))),
    }
}

/// Milliseconds since the Unix epoch, the time unit of every table.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
