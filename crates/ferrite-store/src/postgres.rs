//! The shared store: one PostgreSQL database behind every node, with the
//! same tables and columns as SQLite (`migrations/postgres`, rows in
//! [`crate::rows`]).
//!
//! Atomicity: writes run in READ COMMITTED transactions that lock the rows
//! they depend on. A read-merge-write reads its row `FOR UPDATE`, so
//! concurrent updates of one app or route (from any node) queue behind each
//! other and each merges into the latest committed version. A row that must
//! not vanish under a write (the app of a new call, the apps of a batch of
//! recorded calls) is read `FOR KEY SHARE`, which holds off its deletion but
//! not other writers. A listing that checks its app and then reads the rows
//! runs in one REPEATABLE READ snapshot, so the two agree.
//!
//! Migrations run when a store opens, on a connection of their own, under
//! sqlx's migrator, which holds a PostgreSQL advisory lock (keyed by the
//! database's name) while it checks and applies them: nodes that start at
//! once against an older schema wait for each other, one applies the new
//! versions and the others find them applied.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ferrite_model::{ApiError, App, AppInput, Call, CallStatus, Millis, Route, RouteInput};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::PgConnection;

use crate::rows::{signed, to_json, AppRow, CallRow, RouteRow, CALL_COLUMNS, ROUTE_COLUMNS};
use crate::{now_ms, CallFilter, CallUpdate, RecordedCall, Store, StoreError, MAX_CALLS_PAGE};

/// The schema's versions; several nodes may run them at once (see the module doc).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Store or replace the log (`$2`) of call `$1`.
const PUT_LOG: &str = "INSERT INTO call_logs (call_id, log) VALUES ($1, $2) \
     ON CONFLICT (call_id) DO UPDATE SET log = excluded.log";

/// Connections per node: enough for the API and the async workers of one
/// node, few enough that a dozen nodes stay under PostgreSQL's default
/// `max_connections` (100).
const MAX_CONNECTIONS: u32 = 8;

/// How long opening waits for a server that refuses connections or is still
/// starting up, as when a whole stack starts at once. Any other error (a
/// bad password, a missing database, an unknown host) fails at once.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// How many times [`Store::create_route`] tries when its app is deleted
/// under it (see there).
const CREATE_ROUTE_TRIES: u32 = 3;

/// The named lock modes a transaction takes on the row it reads.
const FOR_UPDATE: &str = "FOR UPDATE";
const FOR_KEY_SHARE: &str = "FOR KEY SHARE";

/// A snapshot for a listing: its checks and its rows agree, and, being read
/// only, it never fails on a serialization conflict.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

pub struct PostgresStore {
    pool: PgPool,
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

impl PostgresStore {
    /// Connect to the database of a `postgres://` (or `postgresql://`) URL
    /// and bring its schema up to date. Once open, a query waits at most
    /// `timeout` for a connection (a new one included, while the server is
    /// away) before it fails with an error that
    /// [`StoreError::is_unavailable`].
    pub async fn open(url: &str, timeout: Duration) -> Result<PostgresStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Config(format!(
                "DB_URL {:?} is not a valid PostgreSQL URL: {e}",
                ferrite_model::redact::url(url)
            ))
        })?;
        if options.get_application_name().is_none() {
            // So that an operator tells Ferrite's sessions apart in pg_stat_activity.
            options = options.application_name("ferrite");
        }
        let unreachable = |e: sqlx::Error| {
            StoreError::Config(format!(
                "DB_URL {:?}: cannot connect to PostgreSQL: {e}",
                ferrite_model::redact::url(url)
            ))
        };
        // A connection of its own, closed at once even when a migration
        // fails: the migrator's advisory lock belongs to its session, and
        // must not stay with a connection of the pool.
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(STARTUP_WAIT)
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
        let migrated = MIGRATOR.run(&migrating).await;
        migrating.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
        tracing::info!(
            host = options.get_host(),
            port = options.get_port(),
            database = options.get_database(),
            "postgres store ready"
        );
        Ok(PostgresStore { pool })
    }

    /// App `name`, its row locked with `lock` until the transaction ends.
    async fn app_in(conn: &mut PgConnection, name: &str, lock: &str) -> Result<App, StoreError> {
        let query = format!("SELECT name, config, limits FROM apps WHERE name = $1 {lock}");
        let row: Option<AppRow> = sqlx::query_as(&query)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        row.ok_or_else(|| StoreError::AppNotFound(name.to_string()))?
            .try_into()
    }

    /// Whether app `name` exists, in the transaction's snapshot.
    async fn app_exists(conn: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
        let found: Option<(String,)> = sqlx::query_as("SELECT name FROM apps WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(found.is_some())
    }

    /// One try of [`Store::create_route`].
    async fn try_create_route(&self, route: &Route) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
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
impl Store for PostgresStore {
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
        let mut tx = self.pool.begin().await?;
        let mut app = Self::app_in(&mut tx, name, FOR_UPDATE).await?;
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
        let mut tx = self.pool.begin().await?;
        // Locked first: a route created meanwhile waits on this lock (its
        // foreign key check) and so is either counted here or sees the app gone.
        Self::app_in(&mut tx, name, FOR_UPDATE).await?;
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
        // Routes, calls and call logs go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM apps WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An existing app is left unlocked by the insert-if-missing, so it can
    /// be deleted before the route's foreign key check, which then fails:
    /// the next try creates the app again, as if the delete came first.
    async fn create_route(&self, route: &Route) -> Result<(), StoreError> {
        let mut tries = 1;
        loop {
            match self.try_create_route(route).await {
                Err(StoreError::Database(e))
                    if is_foreign_key_violation(&e) && tries < CREATE_ROUTE_TRIES =>
                {
                    tries += 1;
                }
                result => return result,
            }
        }
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
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        if !Self::app_exists(&mut tx, app).await? {
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
        let mut tx = self.pool.begin().await?;
        let query = format!(
            "SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 AND path = $2 {FOR_UPDATE}"
        );
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
        let mut tx = self.pool.begin().await?;
        // The app first, as SQLite does, so a call of a missing app is
        // AppNotFound whatever its id; locked so it stays until the commit.
        Self::app_in(&mut tx, &call.app_name, FOR_KEY_SHARE).await?;
        sqlx::query(&format!(
            "INSERT INTO calls ({CALL_COLUMNS}, output) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
        ))
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

    /// Two statements whatever the batch's size (the calls, then their
    /// logs), each taking the batch as arrays, so a batch costs a few round
    /// trips to a remote database rather than one per call.
    async fn record_calls(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
        if calls.is_empty() {
            return Ok(0);
        }
        let app_names: BTreeSet<&str> = calls.iter().map(|c| c.call.app_name.as_str()).collect();
        let app_names: Vec<&str> = app_names.into_iter().collect();
        let mut tx = self.pool.begin().await?;
        // The batch's apps that exist, held until the commit: a call of an
        // app deleted before this point is skipped here, and one cannot be
        // deleted after it, so no foreign key fails (one error would abort
        // the whole PostgreSQL transaction).
        let existing: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM apps WHERE name = ANY($1) FOR KEY SHARE")
                .bind(&app_names)
                .fetch_all(&mut *tx)
                .await?;
        let existing: HashSet<String> = existing.into_iter().map(|(name,)| name).collect();
        // The first of the calls sharing an id is the one inserted (with its log).
        let mut seen = HashSet::new();
        let batch: Vec<&RecordedCall> = calls
            .iter()
            .filter(|c| existing.contains(&c.call.app_name) && seen.insert(c.call.id.as_str()))
            .collect();
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let column = |f: fn(&Call) -> &str| batch.iter().map(|c| f(&c.call)).collect::<Vec<_>>();
        let inserted: Vec<(String,)> = sqlx::query_as(&format!(
            "INSERT INTO calls ({CALL_COLUMNS}, output) \
             SELECT id, app_name, path, type, status, created_at, started_at, completed_at, \
                    error, attempts, NULL \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[]) \
                  WITH ORDINALITY AS batch (id, app_name, path, type, status, created_at, \
                                            started_at, completed_at, error, attempts, n) \
             ORDER BY n \
             ON CONFLICT (id) DO NOTHING \
             RETURNING id"
        ))
        .bind(column(|c| &c.id))
        .bind(column(|c| &c.app_name))
        .bind(column(|c| &c.path))
        .bind(column(|c| c.kind.as_str()))
        .bind(column(|c| c.status.as_str()))
        .bind(
            batch
                .iter()
                .map(|c| c.call.created_at.0)
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|c| c.call.started_at.map(|t| t.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|c| c.call.completed_at.map(|t| t.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|c| c.call.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|c| i64::from(c.call.attempts))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
        let inserted: HashSet<String> = inserted.into_iter().map(|(id,)| id).collect();
        let logs: HashMap<&str, &[u8]> = batch
            .iter()
            .filter(|c| inserted.contains(&c.call.id))
            .filter_map(|c| {
                let log = c.log.as_deref().filter(|l| !l.is_empty())?;
                Some((c.call.id.as_str(), log))
            })
            .collect();
        if !logs.is_empty() {
            let (ids, logs): (Vec<&str>, Vec<&[u8]>) = logs.into_iter().unzip();
            sqlx::query(
                "INSERT INTO call_logs (call_id, log) \
                 SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (call_id) DO UPDATE SET log = excluded.log",
            )
            .bind(ids)
            .bind(logs)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted.len() as u64)
    }

    async fn update_call(&self, id: &str, update: &CallUpdate<'_>) -> Result<Call, StoreError> {
        let mut tx = self.pool.begin().await?;
        let query = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 {FOR_UPDATE}");
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
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        if !Self::app_exists(&mut tx, app).await? {
            return Err(StoreError::AppNotFound(app.to_string()));
        }
        let query = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE app_name = $1 \
             AND ($2::text IS NULL OR path = $2) AND ($3::text IS NULL OR status = $3) \
             AND ($4::text IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
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

    /// One statement: the log's foreign key is the check that the call
    /// exists, and holds it until the log is written.
    async fn put_call_log(&self, id: &str, log: &[u8]) -> Result<(), StoreError> {
        sqlx::query(PUT_LOG)
            .bind(id)
            .bind(log)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::CallNotFound(id.to_string())
                } else {
                    e.into()
                }
            })?;
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
        // One statement; the logs go with their calls (ON DELETE CASCADE).
        let done = sqlx::query(&format!(
            "DELETE FROM calls WHERE completed_at < $1 AND status IN ({})",
            final_statuses()
        ))
        .bind(older_than_ms)
        .execute(&self.pool)
        .await?;
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
