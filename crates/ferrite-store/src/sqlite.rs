//! The embedded store: one SQLite file (WAL mode) under the data directory.
//!
//! Durability: `synchronous = FULL`, so a commit is on disk before it
//! returns (an async call acknowledged as recorded survives a power cut).
//! It is SQLite's own default, which sqlx leaves alone; it is set here
//! explicitly so that a different SQLite build cannot weaken it silently.
//! Its cost (one WAL fsync per commit) is why the call history is written
//! in batches ([`Store::record_calls`]).
//!
//! Writes take the database lock up front (`BEGIN IMMEDIATE`) so that a
//! read-merge-write never fails half way on a lock upgrade; readers are not
//! blocked by writers in WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferrite_model::{ApiError, App, AppInput, Call, CallStatus, Millis, Route, RouteInput};
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::rows::{signed, to_json, AppRow, CallRow, RouteRow, CALL_COLUMNS, ROUTE_COLUMNS};
use crate::{now_ms, CallFilter, CallUpdate, RecordedCall, Store, StoreError, MAX_CALLS_PAGE};

/// Store or replace the log (`$2`) of call `$1`.
const PUT_LOG: &str = "INSERT INTO call_logs (call_id, log) VALUES ($1, $2) \
     ON CONFLICT (call_id) DO UPDATE SET log = excluded.log";

/// How long a writer waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStore {
    pool: SqlitePool,
    /// One writer at a time in this process (see [`SqliteStore::write`]).
    writes: Arc<Mutex<()>>,
}

/// A write transaction and this process's write turn, released together.
struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl WriteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Create the database file (mode 0600) and its directory (0700) when
/// missing: only Ferrite's user may read them. SQLite gives its `-wal` and
/// `-shm` files the database file's mode. An existing file or directory is
/// left as it is.
fn private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if file.as_os_str() == ":memory:" || file.exists() {
        return Ok(());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)
        .map(drop)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl SqliteStore {
    /// Close every connection: later queries fail as on a database that went
    /// away (for tests of what callers do then).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Open (creating when missing) the database of a `sqlite:` URL and
    /// bring its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Config(format!("DB_URL {url:?} is not a valid SQLite URL: {e}"))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        private_file(options.get_filename()).map_err(|e| {
            StoreError::Config(format!(
                "DB_URL: cannot create the database file {} in a private directory: {e}",
                options.get_filename().display()
            ))
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Config(format!(
                    "DB_URL {url:?}: cannot open the SQLite database: {e}"
                ))
            })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        tracing::info!(url, "sqlite store ready");
        Ok(SqliteStore {
            pool,
            writes: Arc::default(),
        })
    }

    /// A write transaction, begun once this process's previous writer is
    /// done. SQLite allows one writer at a time; writers of one process that
    /// collide would each retry through SQLite's busy handler, whose growing
    /// sleeps (1, 2, 5, 10 ... ms) add tens of milliseconds to the unlucky
    /// ones. Waiting in line here hands the lock over at once.
    async fn write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.writes.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    async fn app_in(conn: &mut SqliteConnection, name: &str) -> Result<App, StoreError> {
        let row: Option<AppRow> =
            sqlx::query_as("SELECT name, config, limits FROM apps WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        row.ok_or_else(|| StoreError::AppNotFound(name.to_string()))?
            .try_into()
    }

    /// Whether call `id` exists, and (when `app` is given) belongs to it.
    async fn call_exists(
        conn: &mut sqlx::SqliteConnection,
        app: Option<&str>,
        id: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM calls WHERE id = $1 AND ($2 IS NULL OR app_name = $2)")
                .bind(id)
                .bind(app)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(found.is_some())
    }
}

/// Bind `call` to the ten parameters of an insert of [`CALL_COLUMNS`].
fn bind_call<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    call: &'q Call,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    query
        .bind(&call.id)
        .bind(&call.app_name)
        .bind(&call.path)
        .bind(call.kind.as_str())
        .bind(call.status.as_str())
        .bind(call.created_at.0)
        .bind(call.started_at.map(|t| t.0))
        .bind(call.completed_at.map(|t| t.0))
        .bind(&call.error)
        .bind(i64::from(call.attempts))
}

/// The final statuses as an SQL list (`'success', ...`), for purging.
fn final_statuses() -> String {
    CallStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_app(&self, app: &App) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO apps (name, config, limits, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&app.name)
        .bind(to_json(&app.config)?)
        .bind(to_json(&app.limits)?)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AppExists(app.name.clone())
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn get_app(&self, name: &str) -> Result<App, StoreError> {
        let row: Option<AppRow> =
            sqlx::query_as("SELECT name, config, limits FROM apps WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| StoreError::AppNotFound(name.to_string()))?
            .try_into()
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let rows: Vec<AppRow> =
            sqlx::query_as("SELECT name, config, limits FROM apps ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(App::try_from).collect()
    }

    async fn update_app(&self, name: &str, patch: AppInput) -> Result<App, StoreError> {
        let mut tx = self.write().await?;
        let mut app = Self::app_in(&mut tx, name).await?;
        app.apply(patch)?;
        sqlx::query("UPDATE apps SET config = $1, limits = $2, updated_at = $3 WHERE name = $4")
            .bind(to_json(&app.config)?)
            .bind(to_json(&app.limits)?)
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(app)
    }

    async fn delete_app(&self, name: &str, cascade: bool) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        Self::app_in(&mut tx, name).await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM routes WHERE app_name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 && !cascade {
            return Err(StoreError::AppHasRoutes {
                app: name.to_string(),
                count,
            });
        }
        sqlx::query("DELETE FROM routes WHERE app_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM call_logs WHERE call_id IN (SELECT id FROM calls WHERE app_name = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM calls WHERE app_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM apps WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_route(&self, route: &Route) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO apps (name, config, created_at, updated_at) VALUES ($1, NULL, $2, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&route.app_name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let insert = format!(
            "INSERT INTO routes ({ROUTE_COLUMNS}, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)"
        );
        sqlx::query(&insert)
            .bind(&route.app_name)
            .bind(&route.path)
            .bind(&route.image)
            .bind(signed(route.memory))
            .bind(route.kind.as_str())
            .bind(route.format.as_str())
            .bind(signed(route.max_concurrency))
            .bind(signed(route.timeout))
            .bind(signed(route.idle_timeout))
            .bind(to_json(&route.headers)?)
            .bind(to_json(&route.config)?)
            .bind(&route.jwt_key)
            .bind(i64::from(route.max_retries))
            .bind(to_json(&route.service)?)
            .bind(to_json(&route.confinement)?)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::RouteExists {
                        app: route.app_name.clone(),
                        path: route.path.clone(),
                    }
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_route(&self, app: &str, path: &str) -> Result<Route, StoreError> {
        let query = format!("SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 AND path = $2");
        let row: Option<RouteRow> = sqlx::query_as(&query)
            .bind(app)
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| StoreError::RouteNotFound {
            app: app.to_string(),
            path: path.to_string(),
        })?
        .try_into()
    }

    async fn list_routes(&self, app: &str) -> Result<Vec<Route>, StoreError> {
        // One read transaction, so the app check and the listing agree.
        let mut tx = self.pool.begin().await?;
        let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM apps WHERE name = $1")
            .bind(app)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::AppNotFound(app.to_string()));
        }
        let query = format!("SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 ORDER BY path");
        let rows: Vec<RouteRow> = sqlx::query_as(&query).bind(app).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.into_iter().map(Route::try_from).collect()
    }

    async fn update_route(
        &self,
        app: &str,
        path: &str,
        patch: RouteInput,
    ) -> Result<Route, StoreError> {
        let mut tx = self.write().await?;
        let query = format!("SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 AND path = $2");
        let row: Option<RouteRow> = sqlx::query_as(&query)
            .bind(app)
            .bind(path)
            .fetch_optional(&mut *tx)
            .await?;
        let mut route: Route = row
            .ok_or_else(|| StoreError::RouteNotFound {
                app: app.to_string(),
                path: path.to_string(),
            })?
            .try_into()?;
        route.apply(patch)?;
        sqlx::query(
            "UPDATE routes SET image = $1, memory = $2, type = $3, format = $4, max_concurrency = $5, \
             timeout = $6, idle_timeout = $7, headers = $8, config = $9, jwt_key = $10, \
             max_retries = $11, service = $12, confinement = $13, updated_at = $14 \
             WHERE app_name = $15 AND path = $16",
        )
        .bind(&route.image)
        .bind(signed(route.memory))
        .bind(route.kind.as_str())
        .bind(route.format.as_str())
        .bind(signed(route.max_concurrency))
        .bind(signed(route.timeout))
        .bind(signed(route.idle_timeout))
        .bind(to_json(&route.headers)?)
        .bind(to_json(&route.config)?)
        .bind(&route.jwt_key)
        .bind(i64::from(route.max_retries))
        .bind(to_json(&route.service)?)
        .bind(to_json(&route.confinement)?)
        .bind(now_ms())
        .bind(app)
        .bind(path)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(route)
    }

    async fn delete_route(&self, app: &str, path: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM routes WHERE app_name = $1 AND path = $2")
            .bind(app)
            .bind(path)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RouteNotFound {
                app: app.to_string(),
                path: path.to_string(),
            });
        }
        Ok(())
    }

    async fn insert_call(&self, call: &Call) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        Self::app_in(&mut tx, &call.app_name).await?;
        let insert = format!(
            "INSERT INTO calls ({CALL_COLUMNS}, output) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
        );
        bind_call(sqlx::query(&insert), call)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::CallExists(call.id.clone())
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_calls(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
        if calls.is_empty() {
            return Ok(0);
        }
        // The app check is part of the insert, so a call of a deleted app is
        // skipped like a duplicate instead of failing the batch on the
        // foreign key. The same query text every time: sqlx prepares it once
        // per connection and reuses it for the rest of the batch.
        let insert = format!(
            "INSERT INTO calls ({CALL_COLUMNS}, output) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL \
             WHERE EXISTS (SELECT 1 FROM apps WHERE name = $2) \
             ON CONFLICT (id) DO NOTHING"
        );
        let mut tx = self.write().await?;
        let mut inserted = 0;
        for RecordedCall { call, log } in calls {
            let done = bind_call(sqlx::query(&insert), call)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            inserted += 1;
            if let Some(log) = log.as_deref().filter(|l| !l.is_empty()) {
                sqlx::query(PUT_LOG)
                    .bind(&call.id)
                    .bind(log)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn update_call(&self, id: &str, update: &CallUpdate<'_>) -> Result<Call, StoreError> {
        let mut tx = self.write().await?;
        let query = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let row: Option<CallRow> = sqlx::query_as(&query)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut call: Call = row
            .ok_or_else(|| StoreError::CallNotFound(id.to_string()))?
            .try_into()?;
        call.advance(update.next, Millis(update.at_ms), update.error)
            .map_err(|e| StoreError::IllegalTransition {
                id: id.to_string(),
                from: e.from,
                to: e.to,
            })?;
        sqlx::query(
            "UPDATE calls SET status = $1, started_at = $2, completed_at = $3, error = $4, \
             attempts = $5, output = COALESCE($6, output) WHERE id = $7",
        )
        .bind(call.status.as_str())
        .bind(call.started_at.map(|t| t.0))
        .bind(call.completed_at.map(|t| t.0))
        .bind(&call.error)
        .bind(i64::from(call.attempts))
        .bind(update.output)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(log) = update.log {
            sqlx::query(PUT_LOG)
                .bind(id)
                .bind(log)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(call)
    }

    async fn get_call(&self, app: &str, id: &str) -> Result<Call, StoreError> {
        let query = format!("SELECT {CALL_COLUMNS} FROM calls WHERE app_name = $1 AND id = $2");
        let row: Option<CallRow> = sqlx::query_as(&query)
            .bind(app)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| StoreError::CallNotFound(id.to_string()))?
            .try_into()
    }

    async fn call_output(&self, app: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT output FROM calls WHERE app_name = $1 AND id = $2")
                .bind(app)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .ok_or_else(|| StoreError::CallNotFound(id.to_string()))?
            .0)
    }

    async fn list_calls(&self, app: &str, filter: CallFilter) -> Result<Vec<Call>, StoreError> {
        if !(1..=MAX_CALLS_PAGE).contains(&filter.limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_CALLS_PAGE}, not {}",
                filter.limit
            ))
            .into());
        }
        // One read transaction, so the app check and the listing agree.
        let mut tx = self.pool.begin().await?;
        let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM apps WHERE name = $1")
            .bind(app)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::AppNotFound(app.to_string()));
        }
        let query = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE app_name = $1 \
             AND ($2 IS NULL OR path = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<CallRow> = sqlx::query_as(&query)
            .bind(app)
            .bind(&filter.path)
            .bind(filter.status.map(CallStatus::as_str))
            .bind(&filter.cursor)
            .bind(i64::from(filter.limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter().map(Call::try_from).collect()
    }

    async fn put_call_log(&self, id: &str, log: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        if !Self::call_exists(&mut tx, None, id).await? {
            return Err(StoreError::CallNotFound(id.to_string()));
        }
        sqlx::query(PUT_LOG)
            .bind(id)
            .bind(log)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_call_log(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
            "SELECT l.log FROM calls c LEFT JOIN call_logs l ON l.call_id = c.id \
             WHERE c.app_name = $1 AND c.id = $2",
        )
        .bind(app)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (log,) = row.ok_or_else(|| StoreError::CallNotFound(id.to_string()))?;
        Ok(log.unwrap_or_default())
    }

    async fn purge_calls(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let old = format!(
            "SELECT id FROM calls WHERE completed_at < $1 AND status IN ({})",
            final_statuses()
        );
        let mut tx = self.write().await?;
        sqlx::query(&format!("DELETE FROM call_logs WHERE call_id IN ({old})"))
            .bind(older_than_ms)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(&format!("DELETE FROM calls WHERE id IN ({old})"))
            .bind(older_than_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn count_queued_calls(&self, app: &str) -> Result<u64, StoreError> {
        // The status is a literal, so the planner can use the partial index
        // `calls_queued` (a bound parameter could not be matched to it).
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM calls WHERE app_name = $1 AND status = 'queued'")
                .bind(app)
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pragmas every pooled connection runs with: WAL, and
    /// `synchronous = FULL` (2) so that a committed call survives a power cut.
    #[tokio::test]
    async fn connections_are_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("ferrite.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(store.pool.acquire().await.expect("connection"));
        }
        for conn in &mut conns {
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .expect("journal_mode");
            assert_eq!(mode, "wal");
            let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .expect("synchronous");
            assert_eq!(sync, 2, "FULL");
        }
    }
}
