//! The store core: every query SQLite and PostgreSQL share, written once.
//! (Over 500 lines: the shared `impl Store` is one macro, read best whole.)
//!
//! Both schemas have the same tables and columns ([`crate::rows`]), and
//! sqlx's SQLite driver takes PostgreSQL's `$1`-style parameters, so one SQL
//! text serves both. What a backend still decides is how a write begins (its
//! transaction and locking discipline), which row locks its reads take, and
//! how it records a batch of calls; those stay in `sqlite.rs` and
//! `postgres.rs`.
//!
//! The shared methods are a `macro_rules!` ([`sql_store!`]) that implements
//! [`Store`](crate::Store) for one backend's concrete pool type, rather than
//! generic functions over `sqlx::Database`: every query binds and decodes
//! half a dozen Rust types, and sqlx's bounds for each (`Encode`, `Type`,
//! `Decode`, `FromRow`, `IntoArguments`, `Executor` for the connection)
//! would have to be repeated on every function, since Rust does not carry
//! them over from a trait. `sqlx::Any` would drop sqlx's types (and
//! PostgreSQL's arrays). The macro keeps each backend's own types, checked by
//! the compiler for each, and the code inside reads like the plain code it
//! is.
//!
//! A backend that invokes the macro provides, as inherent items:
//! - a `pool` field, its sqlx pool;
//! - `async fn write(&self)`: a write transaction (dereferencing to the
//!   connection), begun under the backend's write discipline;
//! - `async fn write_one(&self)`: a connection for one write statement in
//!   autocommit (atomic by itself), under the same discipline, without the
//!   round trips of `BEGIN` and `COMMIT`;
//! - `async fn snapshot(&self)`: a read transaction in which a listing's app
//!   check and its rows agree;
//! - `const FOR_UPDATE`: the row lock suffix of a read-merge-write;
//! - `async fn record_batch(&self, calls)`: [`Store::record_calls`] for a
//!   non-empty batch.
//!
//! [`Store::record_calls`]: crate::Store::record_calls

use ferrite_model::CallStatus;

/// Store or replace the log (`$2`) of call `$1`.
pub(crate) const PUT_LOG: &str = "INSERT INTO call_logs (call_id, log) VALUES ($1, $2) \
     ON CONFLICT (call_id) DO UPDATE SET log = excluded.log";

/// Rows in one INSERT of [`Store::insert_calls`](crate::Store::insert_calls):
/// 11 parameters each, well under SQLite's (32,766) and PostgreSQL's
/// (65,535) limits on one statement's parameters, and more than a group
/// commit's batch holds (256).
pub(crate) const INSERT_ROWS: usize = 512;

/// How many times [`Store::create_route`](crate::Store::create_route) tries
/// when its app is deleted under it (see there).
pub(crate) const CREATE_ROUTE_TRIES: u32 = 3;

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

/// The final statuses as an SQL list (`'success', ...`), for purging.
pub(crate) fn final_statuses() -> String {
    CallStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Implement [`Store`](crate::Store) for the SQL backend `$store`, whose
/// pool is of sqlx database `$db`, with the items the module doc lists.
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        // An anonymous const, so that the imports below stay inside.
        const _: () = {
            use ::async_trait::async_trait;
            use ::ferrite_model::{
                ApiError, ApiKey, App, AppInput, Call, CallStatus, Millis, Route, RouteInput,
                RouteVersion,
            };
            use ::sqlx::query::Query;
            use ::sqlx::Database;

            use $crate::rows::{
                signed, to_json, AppRow, CallRow, KeyRow, RouteRow, VersionRow, CALL_COLUMNS,
                KEY_COLUMNS, ROUTE_COLUMNS, VERSION_COLUMNS,
            };
            use $crate::sql::{
                final_statuses, is_foreign_key_violation, is_unique_violation,
                CREATE_ROUTE_TRIES, INSERT_ROWS, PUT_LOG,
            };
            use $crate::{
                now_ms, CallFilter, CallUpdate, KeyBounds, RecordedCall, Store, StoreError,
                StoredKey, MAX_CALLS_PAGE, MAX_VERSIONS_PER_ROUTE,
            };

            type Connection = <$db as Database>::Connection;
            type Bound<'q> = Query<'q, $db, <$db as Database>::Arguments<'q>>;

            impl $store {
                /// App `name`, its row locked with `lock` until the transaction ends.
                async fn app_in(
                    conn: &mut Connection,
                    name: &str,
                    lock: &str,
                ) -> Result<App, StoreError> {
                    let query = format!("SELECT name, config, limits FROM apps WHERE name = $1 {lock}");
                    let row: Option<AppRow> = sqlx::query_as(&query)
                        .bind(name)
                        .fetch_optional(&mut *conn)
                        .await?;
                    row.ok_or_else(|| StoreError::AppNotFound(name.to_string()))?
                        .try_into()
                }

                /// Whether app `name` exists, in the transaction's snapshot.
                async fn app_exists(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
                    let found: Option<(String,)> =
                        sqlx::query_as("SELECT name FROM apps WHERE name = $1")
                            .bind(name)
                            .fetch_optional(&mut *conn)
                            .await?;
                    Ok(found.is_some())
                }

                /// Insert `calls` (at most [`INSERT_ROWS`]) with one statement.
                async fn insert_rows(conn: &mut Connection, calls: &[Call]) -> Result<(), sqlx::Error> {
                    let mut insert =
                        ::sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO calls ({CALL_COLUMNS}) "));
                    insert.push_values(calls, |mut row, call| {
                        row.push_bind(&call.id)
                            .push_bind(&call.app_name)
                            .push_bind(&call.path)
                            .push_bind(call.kind.as_str())
                            .push_bind(call.status.as_str())
                            .push_bind(call.created_at.0)
                            .push_bind(call.started_at.map(|t| t.0))
                            .push_bind(call.completed_at.map(|t| t.0))
                            .push_bind(&call.error)
                            .push_bind(i64::from(call.attempts))
                            .push_bind(call.version.map(i64::from));
                    });
                    insert.build().execute(&mut *conn).await?;
                    Ok(())
                }

                /// What [`Store::insert_calls`] reports for `error`, which
                /// inserted none of `calls`: a missing app (the first, by
                /// name) or a taken id (the first call whose id is recorded
                /// already or appears earlier in the batch), found once the
                /// failed write is over.
                async fn insert_error(&self, calls: &[Call], error: sqlx::Error) -> StoreError {
                    if is_foreign_key_violation(&error) {
                        let mut apps: Vec<&str> = calls.iter().map(|c| c.app_name.as_str()).collect();
                        apps.sort_unstable();
                        apps.dedup();
                        let mut conn = match self.pool.acquire().await {
                            Ok(conn) => conn,
                            Err(e) => return e.into(),
                        };
                        for app in apps {
                            match Self::app_exists(&mut conn, app).await {
                                Ok(true) => {}
                                Ok(false) => return StoreError::AppNotFound(app.to_string()),
                                Err(e) => return e,
                            }
                        }
                    } else if is_unique_violation(&error) {
                        let mut seen = std::collections::HashSet::new();
                        if let Some(c) = calls.iter().find(|c| !seen.insert(c.id.as_str())) {
                            return StoreError::CallExists(c.id.clone());
                        }
                        for c in calls {
                            match self.find_call(&c.id).await {
                                Ok(_) => return StoreError::CallExists(c.id.clone()),
                                Err(StoreError::CallNotFound(_)) => {}
                                Err(e) => return e,
                            }
                        }
                    }
                    error.into()
                }

                /// Bind the fifteen columns of `route` that a PATCH may
                /// change, from `image` to `traffic` in [`ROUTE_COLUMNS`]'
                /// order.
                fn bind_route<'q>(query: Bound<'q>, route: &'q Route) -> Result<Bound<'q>, StoreError> {
                    Ok(query
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
                        .bind(i64::from(route.version))
                        .bind(to_json(&route.traffic)?))
                }

                /// Keep `route`'s definition as its version `route.version`,
                /// and trim its versions to the newest
                /// [`MAX_VERSIONS_PER_ROUTE`] and those its traffic names.
                async fn add_version(conn: &mut Connection, route: &Route, now: i64) -> Result<(), StoreError> {
                    let definition = serde_json::to_string(&route.definition())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(&format!(
                        "INSERT INTO route_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
                    ))
                    .bind(&route.app_name)
                    .bind(&route.path)
                    .bind(i64::from(route.version))
                    .bind(definition)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    let oldest_kept = i64::from(route.version) - i64::from(MAX_VERSIONS_PER_ROUTE);
                    if oldest_kept >= 1 {
                        // The versions are numbers the model checked: a
                        // literal list is safe, and both dialects take it.
                        let serving: String = std::iter::once(0)
                            .chain(route.traffic_versions())
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        sqlx::query(&format!(
                            "DELETE FROM route_versions WHERE app_name = $1 AND path = $2 \
                             AND version <= $3 AND version NOT IN ({serving})"
                        ))
                        .bind(&route.app_name)
                        .bind(&route.path)
                        .bind(oldest_kept)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                }

                /// Refuse `route`'s traffic unless the route keeps every
                /// version it names, none of them a service.
                async fn check_traffic(conn: &mut Connection, route: &Route) -> Result<(), StoreError> {
                    for version in route.traffic_versions() {
                        let row: Option<VersionRow> = sqlx::query_as(&format!(
                            "SELECT {VERSION_COLUMNS} FROM route_versions \
                             WHERE app_name = $1 AND path = $2 AND version = $3"
                        ))
                        .bind(&route.app_name)
                        .bind(&route.path)
                        .bind(i64::from(version))
                        .fetch_optional(&mut *conn)
                        .await?;
                        let Some(row) = row else {
                            return Err(ApiError::bad_request(format!(
                                "route traffic names version {version}, which route {} does not have",
                                route.path
                            ))
                            .into());
                        };
                        if RouteVersion::try_from(row)?.definition.service.is_some() {
                            return Err(ApiError::bad_request(format!(
                                "route traffic names version {version}, which runs as a service: \
                                 a service route's calls cannot be split between versions"
                            ))
                            .into());
                        }
                    }
                    Ok(())
                }

                /// One try of [`Store::create_route`].
                async fn try_create_route(&self, route: &Route) -> Result<(), StoreError> {
                    let now = now_ms();
                    let mut tx = self.write().await?;
                    sqlx::query(
                        "INSERT INTO apps (name, config, created_at, updated_at) \
                         VALUES ($1, NULL, $2, $2) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(&route.app_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let insert = format!(
                        "INSERT INTO routes ({ROUTE_COLUMNS}, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                                 $15, $16, $17, $18, $18)"
                    );
                    // A new route is its version 1, whatever it was given.
                    let route = &Route {
                        version: 1,
                        ..route.clone()
                    };
                    let query = sqlx::query(&insert).bind(&route.app_name).bind(&route.path);
                    Self::bind_route(query, route)?
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
                    Self::add_version(&mut tx, route, now).await?;
                    Self::check_traffic(&mut tx, route).await?;
                    tx.commit().await?;
                    Ok(())
                }
            }

            #[async_trait]
            impl Store for $store {
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
                    let mut conn = self.pool.acquire().await?;
                    Self::app_in(&mut conn, name, "").await
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
                    let mut app = Self::app_in(&mut tx, name, Self::FOR_UPDATE).await?;
                    app.apply(patch)?;
                    sqlx::query(
                        "UPDATE apps SET config = $1, limits = $2, updated_at = $3 WHERE name = $4",
                    )
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
                    // Locked first: a route created meanwhile waits on this
                    // lock (its foreign key check) and so is either counted
                    // here or sees the app gone.
                    Self::app_in(&mut tx, name, Self::FOR_UPDATE).await?;
                    let (count,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM routes WHERE app_name = $1")
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

                /// An existing app is left unlocked by the insert-if-missing
                /// (on PostgreSQL; SQLite's write holds the whole database),
                /// so it can be deleted before the route's foreign key check,
                /// which then fails: the next try creates the app again, as if
                /// the delete came first.
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
                    let query = format!(
                        "SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 AND path = $2"
                    );
                    let row: Option<RouteRow> = sqlx::query_as(&query)
                        .bind(app)
                        .bind(path)
                        .fetch_optional(&self.pool)
                        .await?;
                    match row {
                        Some(row) => row.try_into(),
                        // Only a miss pays for telling a missing app from a
                        // missing route (clients are told which).
                        None => {
                            let mut conn = self.pool.acquire().await?;
                            if Self::app_exists(&mut conn, app).await? {
                                Err(StoreError::RouteNotFound {
                                    app: app.to_string(),
                                    path: path.to_string(),
                                })
                            } else {
                                Err(StoreError::AppNotFound(app.to_string()))
                            }
                        }
                    }
                }

                async fn list_routes(&self, app: &str) -> Result<Vec<Route>, StoreError> {
                    let mut tx = self.snapshot().await?;
                    if !Self::app_exists(&mut tx, app).await? {
                        return Err(StoreError::AppNotFound(app.to_string()));
                    }
                    let query = format!(
                        "SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 ORDER BY path"
                    );
                    let rows: Vec<RouteRow> =
                        sqlx::query_as(&query).bind(app).fetch_all(&mut *tx).await?;
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
                    let query = format!(
                        "SELECT {ROUTE_COLUMNS} FROM routes WHERE app_name = $1 AND path = $2 {}",
                        Self::FOR_UPDATE
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
                    let before = route.clone();
                    route.apply(patch)?;
                    if route == before {
                        // Nothing to write: no version, no change to announce.
                        tx.commit().await?;
                        return Ok(route);
                    }
                    let now = now_ms();
                    let update = sqlx::query(
                        "UPDATE routes SET image = $1, memory = $2, type = $3, format = $4, \
                         max_concurrency = $5, timeout = $6, idle_timeout = $7, headers = $8, \
                         config = $9, jwt_key = $10, max_retries = $11, service = $12, \
                         confinement = $13, version = $14, traffic = $15, updated_at = $16 \
                         WHERE app_name = $17 AND path = $18",
                    );
                    Self::bind_route(update, &route)?
                        .bind(now)
                        .bind(app)
                        .bind(path)
                        .execute(&mut *tx)
                        .await?;
                    if route.version != before.version {
                        Self::add_version(&mut tx, &route, now).await?;
                    }
                    Self::check_traffic(&mut tx, &route).await?;
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

                async fn list_route_versions(
                    &self,
                    app: &str,
                    path: &str,
                ) -> Result<Vec<RouteVersion>, StoreError> {
                    let mut tx = self.snapshot().await?;
                    let query = format!(
                        "SELECT {VERSION_COLUMNS} FROM route_versions \
                         WHERE app_name = $1 AND path = $2 ORDER BY version DESC"
                    );
                    let rows: Vec<VersionRow> =
                        sqlx::query_as(&query).bind(app).bind(path).fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    if rows.is_empty() {
                        // Every route keeps its newest version: none, no route.
                        self.get_route(app, path).await?;
                    }
                    rows.into_iter().map(RouteVersion::try_from).collect()
                }

                async fn get_route_version(
                    &self,
                    app: &str,
                    path: &str,
                    version: u32,
                ) -> Result<RouteVersion, StoreError> {
                    let query = format!(
                        "SELECT {VERSION_COLUMNS} FROM route_versions \
                         WHERE app_name = $1 AND path = $2 AND version = $3"
                    );
                    let row: Option<VersionRow> = sqlx::query_as(&query)
                        .bind(app)
                        .bind(path)
                        .bind(i64::from(version))
                        .fetch_optional(&self.pool)
                        .await?;
                    match row {
                        Some(row) => row.try_into(),
                        None => {
                            self.get_route(app, path).await?;
                            Err(StoreError::VersionNotFound {
                                app: app.to_string(),
                                path: path.to_string(),
                                version,
                            })
                        }
                    }
                }

                async fn insert_call(&self, call: &Call) -> Result<(), StoreError> {
                    self.insert_calls(std::slice::from_ref(call)).await
                }

                async fn insert_calls(&self, calls: &[Call]) -> Result<(), StoreError> {
                    if calls.is_empty() {
                        return Ok(());
                    }
                    // One multi-row INSERT, atomic by itself, with no
                    // transaction around it: the profile of the async
                    // enqueue (docs/benchmarks.md) found its time in round
                    // trips to the database (SQLite's connection thread,
                    // PostgreSQL's socket), one per statement, more than in
                    // the commit's flush. The app check is the foreign key,
                    // which holds the app until the commit. A larger batch
                    // than one statement takes is one transaction.
                    let written = if calls.len() <= INSERT_ROWS {
                        let mut conn = self.write_one().await?;
                        Self::insert_rows(&mut conn, calls).await
                    } else {
                        let mut tx = self.write().await?;
                        let mut written = Ok(());
                        for chunk in calls.chunks(INSERT_ROWS) {
                            written = Self::insert_rows(&mut tx, chunk).await;
                            if written.is_err() {
                                break;
                            }
                        }
                        match written {
                            Ok(()) => tx.commit().await,
                            // Dropped: rolled back, before the error's cause is looked up.
                            Err(e) => Err(e),
                        }
                    };
                    match written {
                        Ok(()) => Ok(()),
                        Err(e) => Err(self.insert_error(calls, e).await),
                    }
                }

                async fn record_calls(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
                    if calls.is_empty() {
                        return Ok(0);
                    }
                    self.record_batch(calls).await
                }

                async fn update_call(
                    &self,
                    id: &str,
                    update: &CallUpdate<'_>,
                ) -> Result<Call, StoreError> {
                    let mut tx = self.write().await?;
                    let query = format!(
                        "SELECT {CALL_COLUMNS} FROM calls WHERE id = $1 {}",
                        Self::FOR_UPDATE
                    );
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
                    if let Some(version) = update.version {
                        call.version = Some(version);
                    }
                    sqlx::query(
                        "UPDATE calls SET status = $1, started_at = $2, completed_at = $3, \
                         error = $4, attempts = $5, output = COALESCE($6, output), \
                         version = COALESCE($8, version) WHERE id = $7",
                    )
                    .bind(call.status.as_str())
                    .bind(call.started_at.map(|t| t.0))
                    .bind(call.completed_at.map(|t| t.0))
                    .bind(&call.error)
                    .bind(i64::from(call.attempts))
                    .bind(update.output)
                    .bind(id)
                    .bind(update.version.map(i64::from))
                    .execute(&mut *tx)
                    .await?;
                    if let Some(log) = update.log {
                        sqlx::query(PUT_LOG)
                            .bind(id)
                            .bind(log)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let Some(letter) = update.dead_letter {
                        sqlx::query(
                            "INSERT INTO dead_letters (call_id, request) VALUES ($1, $2) \
                             ON CONFLICT (call_id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(letter.request)
                        .execute(&mut *tx)
                        .await?;
                        // The app's oldest letters beyond `keep` go (call ids
                        // are UUIDv7: they sort by creation). A LIMIT both
                        // dialects take, since SQLite wants one before OFFSET.
                        let dropped = sqlx::query(
                            "DELETE FROM dead_letters WHERE call_id IN \
                             (SELECT d.call_id FROM dead_letters d \
                              JOIN calls c ON c.id = d.call_id WHERE c.app_name = $1 \
                              ORDER BY d.call_id DESC LIMIT 1000000000 OFFSET $2)",
                        )
                        .bind(&call.app_name)
                        .bind(i64::from(letter.keep))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if dropped > 0 {
                            tracing::warn!(app = %call.app_name, dropped, keep = letter.keep,
                                "dead-letter list full: the oldest letters were dropped");
                        }
                    }
                    tx.commit().await?;
                    Ok(call)
                }

                async fn get_call(&self, app: &str, id: &str) -> Result<Call, StoreError> {
                    let query = format!(
                        "SELECT {CALL_COLUMNS} FROM calls WHERE app_name = $1 AND id = $2"
                    );
                    let row: Option<CallRow> = sqlx::query_as(&query)
                        .bind(app)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.ok_or_else(|| StoreError::CallNotFound(id.to_string()))?
                        .try_into()
                }

                async fn find_call(&self, id: &str) -> Result<Call, StoreError> {
                    let query = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
                    let row: Option<CallRow> = sqlx::query_as(&query)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.ok_or_else(|| StoreError::CallNotFound(id.to_string()))?
                        .try_into()
                }

                async fn call_output(
                    &self,
                    app: &str,
                    id: &str,
                ) -> Result<Option<Vec<u8>>, StoreError> {
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

                async fn list_calls(
                    &self,
                    app: &str,
                    filter: CallFilter,
                ) -> Result<Vec<Call>, StoreError> {
                    if !(1..=MAX_CALLS_PAGE).contains(&filter.limit) {
                        return Err(ApiError::bad_request(format!(
                            "limit must be between 1 and {MAX_CALLS_PAGE}, not {}",
                            filter.limit
                        ))
                        .into());
                    }
                    let mut tx = self.snapshot().await?;
                    if !Self::app_exists(&mut tx, app).await? {
                        return Err(StoreError::AppNotFound(app.to_string()));
                    }
                    // The casts give PostgreSQL the type of a parameter that
                    // may be NULL; to SQLite they change nothing.
                    let query = format!(
                        "SELECT {CALL_COLUMNS} FROM calls WHERE app_name = $1 \
                         AND (CAST($2 AS TEXT) IS NULL OR path = $2) \
                         AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
                         AND (CAST($4 AS TEXT) IS NULL OR id < $4) \
                         AND (CAST($6 AS BIGINT) = 0 OR EXISTS \
                             (SELECT 1 FROM dead_letters d WHERE d.call_id = calls.id)) \
                         AND (CAST($7 AS BIGINT) IS NULL OR created_at >= $7) \
                         AND (CAST($8 AS BIGINT) IS NULL OR created_at <= $8) \
                         ORDER BY id DESC LIMIT $5"
                    );
                    let rows: Vec<CallRow> = sqlx::query_as(&query)
                        .bind(app)
                        .bind(&filter.path)
                        .bind(filter.status.map(CallStatus::as_str))
                        .bind(&filter.cursor)
                        .bind(i64::from(filter.limit))
                        .bind(i64::from(filter.dead_letters))
                        .bind(filter.created_from_ms)
                        .bind(filter.created_to_ms)
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    rows.into_iter().map(Call::try_from).collect()
                }

                /// One statement: the log's foreign key is the check that the
                /// call exists, and holds it until the log is written.
                async fn put_call_log(&self, id: &str, log: &[u8]) -> Result<(), StoreError> {
                    let mut tx = self.write().await?;
                    sqlx::query(PUT_LOG)
                        .bind(id)
                        .bind(log)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            if is_foreign_key_violation(&e) {
                                StoreError::CallNotFound(id.to_string())
                            } else {
                                e.into()
                            }
                        })?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn dead_letter(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError> {
                    let row: Option<(Vec<u8>,)> = sqlx::query_as(
                        "SELECT d.request FROM dead_letters d JOIN calls c ON c.id = d.call_id \
                         WHERE c.app_name = $1 AND d.call_id = $2",
                    )
                    .bind(app)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row
                        .ok_or_else(|| StoreError::DeadLetterNotFound(id.to_string()))?
                        .0)
                }

                async fn delete_dead_letter(&self, app: &str, id: &str) -> Result<(), StoreError> {
                    let mut tx = self.write().await?;
                    let deleted = sqlx::query(
                        "DELETE FROM dead_letters WHERE call_id = $2 AND EXISTS \
                         (SELECT 1 FROM calls c WHERE c.id = $2 AND c.app_name = $1)",
                    )
                    .bind(app)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    if deleted == 0 {
                        return Err(StoreError::DeadLetterNotFound(id.to_string()));
                    }
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
                    let purge = format!(
                        "DELETE FROM calls WHERE completed_at < $1 AND status IN ({})",
                        final_statuses()
                    );
                    let mut tx = self.write().await?;
                    let done = sqlx::query(&purge)
                        .bind(older_than_ms)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected())
                }

                async fn count_queued_calls(&self, app: &str) -> Result<u64, StoreError> {
                    // The status is a literal, so the planner can use the
                    // partial index `calls_queued` (a bound parameter could
                    // not be matched to it).
                    let (count,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM calls WHERE app_name = $1 AND status = 'queued'",
                    )
                    .bind(app)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(u64::try_from(count).unwrap_or(0))
                }

                async fn create_key(
                    &self,
                    key: &ApiKey,
                    secret_hash: &[u8],
                    bounds: KeyBounds,
                ) -> Result<(), StoreError> {
                    let mut tx = self.write().await?;
                    // Locked: two keys of one app made at once are counted
                    // one after the other.
                    Self::app_in(&mut tx, &key.app, Self::FOR_UPDATE).await?;
                    let (of_app,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM api_keys WHERE app_name = $1")
                            .bind(&key.app)
                            .fetch_one(&mut *tx)
                            .await?;
                    if of_app >= i64::from(bounds.per_app) {
                        return Err(StoreError::TooManyKeys {
                            of: format!("app {:?}", key.app),
                            max: bounds.per_app,
                        });
                    }
                    let (all,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
                        .fetch_one(&mut *tx)
                        .await?;
                    if all >= i64::from(bounds.total) {
                        return Err(StoreError::TooManyKeys {
                            of: "the server".to_string(),
                            max: bounds.total,
                        });
                    }
                    sqlx::query(
                        "INSERT INTO api_keys (id, app_name, access, name, secret_hash, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&key.id)
                    .bind(&key.app)
                    .bind(key.access.as_str())
                    .bind(&key.name)
                    .bind(secret_hash)
                    .bind(key.created_at.0)
                    .bind(key.expires_at.map(|t| t.0))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_key(&self, id: &str) -> Result<StoredKey, StoreError> {
                    let query = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
                    let row: Option<KeyRow> = sqlx::query_as(&query)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.ok_or_else(|| StoreError::KeyNotFound(id.to_string()))?
                        .try_into()
                }

                async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
                    let query =
                        format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY app_name, created_at, id");
                    let rows: Vec<KeyRow> = sqlx::query_as(&query).fetch_all(&self.pool).await?;
                    rows.into_iter()
                        .map(|row| StoredKey::try_from(row).map(|stored| stored.key))
                        .collect()
                }

                async fn delete_key(&self, id: &str) -> Result<(), StoreError> {
                    let mut conn = self.write_one().await?;
                    let deleted = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    if deleted == 0 {
                        return Err(StoreError::KeyNotFound(id.to_string()));
                    }
                    Ok(())
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use sql_store;
