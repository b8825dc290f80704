//! Schedules: a route's cron expressions, each enqueuing an async call at
//! its ticks. The store keeps them and lets the nodes' schedulers claim a
//! tick with a compare-and-set on [`Schedule::next_run_ms`]; what a cron
//! expression means (its ticks, its time zone) is the server's business.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::StoreError;

/// What a schedule does with ticks that passed while no node could enqueue
/// them (every node down, or the database away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Drop them: the next call is the next tick to come.
    Skip,
    /// One call for the most recent of them, then on to the next tick.
    Once,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
        }
    }

    /// The stored text back; `None` for anything else.
    pub fn parse(text: &str) -> Option<CatchUp> {
        match text {
            "skip" => Some(CatchUp::Skip),
            "once" => Some(CatchUp::Once),
            _ => None,
        }
    }
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// A UUIDv7, so that an app's schedules list in creation order.
    pub id: String,
    pub app_name: String,
    /// The route whose calls it makes; the schedule goes with the route.
    pub path: String,
    /// The cron expression, as given (checked by the server).
    pub cron: String,
    /// The IANA time zone its fields are read in.
    pub timezone: String,
    /// The body of each tick's call.
    pub payload: Vec<u8>,
    /// Request headers of each tick's call.
    pub headers: BTreeMap<String, String>,
    pub catch_up: CatchUp,
    pub enabled: bool,
    /// The next tick not yet enqueued (ms since the Unix epoch); `None`
    /// while paused or when the expression has no tick left.
    pub next_run_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Durable schedules, shared by every node of a cluster.
#[async_trait]
pub trait Schedules: Send + Sync + 'static {
    /// Insert a new schedule of an existing route, unless its app has
    /// `max_per_app` schedules already ([`StoreError::Invalid`], a 400);
    /// [`StoreError::RouteNotFound`] or [`StoreError::AppNotFound`] without
    /// the route.
    async fn create_schedule(
        &self,
        schedule: &Schedule,
        max_per_app: u32,
    ) -> Result<(), StoreError>;
    /// A schedule of `app`; [`StoreError::ScheduleNotFound`] if none has `id`.
    async fn get_schedule(&self, app: &str, id: &str) -> Result<Schedule, StoreError>;
    /// An existing app's schedules, oldest first; [`StoreError::AppNotFound`]
    /// otherwise.
    async fn list_schedules(&self, app: &str) -> Result<Vec<Schedule>, StoreError>;
    /// Write every field a change may touch (all but id, app, path and
    /// creation time) of an existing schedule; [`StoreError::ScheduleNotFound`]
    /// if it is gone.
    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError>;
    async fn delete_schedule(&self, app: &str, id: &str) -> Result<(), StoreError>;
    /// Enabled schedules whose next tick is at or before `now_ms`, earliest
    /// first, at most `limit`.
    async fn due_schedules(&self, now_ms: i64, limit: u32) -> Result<Vec<Schedule>, StoreError>;
    /// Move schedule `id`'s next tick from `from_ms` to `to_ms`, only if it
    /// is still `from_ms` and the schedule is enabled: whether this call
    /// moved it (another node, or a change through the API, may have).
    async fn advance_schedule(
        &self,
        id: &str,
        from_ms: i64,
        to_ms: Option<i64>,
    ) -> Result<bool, StoreError>;
}

/// A row of `schedules`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ScheduleRow {
    pub id: String,
    pub app_name: String,
    pub path: String,
    pub cron: String,
    pub timezone: String,
    pub payload: Vec<u8>,
    pub headers: String,
    pub catch_up: String,
    pub enabled: bool,
    pub next_run: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Column list of `schedules`, in [`ScheduleRow`]'s order.
pub(crate) const SCHEDULE_COLUMNS: &str = "id, app_name, path, cron, timezone, payload, \
     headers, catch_up, enabled, next_run, created_at, updated_at";

impl TryFrom<ScheduleRow> for Schedule {
    type Error = StoreError;

    fn try_from(row: ScheduleRow) -> Result<Schedule, StoreError> {
        let catch_up = CatchUp::parse(&row.catch_up).ok_or_else(|| {
            StoreError::Corrupt(format!("schedule {}: catch_up {:?}", row.id, row.catch_up))
        })?;
        let headers = serde_json::from_str(&row.headers)
            .map_err(|e| StoreError::Corrupt(format!("schedule {}: headers: {e}", row.id)))?;
        Ok(Schedule {
            id: row.id,
            app_name: row.app_name,
            path: row.path,
            cron: row.cron,
            timezone: row.timezone,
            payload: row.payload,
            headers,
            catch_up,
            enabled: row.enabled,
            next_run_ms: row.next_run,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        })
    }
}

/// The headers of `schedule` as stored.
pub(crate) fn headers_json(schedule: &Schedule) -> Result<String, StoreError> {
    serde_json::to_string(&schedule.headers)
        .map_err(|e| StoreError::Corrupt(format!("schedule {}: headers: {e}", schedule.id)))
}

/// Implement [`Schedules`] for the SQL backend `$store` (pool of sqlx
/// database `$db`), with the items `sql.rs`' module doc lists.
macro_rules! sql_schedules {
    ($store:ty, $db:ty) => {
        const _: () = {
            use ::async_trait::async_trait;
            use ::ferrite_model::{ApiError, ErrorKind};

            use $crate::schedules::{
                headers_json, Schedule, ScheduleRow, Schedules, SCHEDULE_COLUMNS,
            };
            use $crate::sql::is_foreign_key_violation;
            use $crate::{Store, StoreError};

            #[async_trait]
            impl Schedules for $store {
                async fn create_schedule(
                    &self,
                    s: &Schedule,
                    max_per_app: u32,
                ) -> Result<(), StoreError> {
                    // The route first, locked: a delete of it (or of its
                    // app) waits for this insert or comes before it.
                    let route = self.get_route(&s.app_name, &s.path).await?;
                    let mut tx = self.write().await?;
                    let lock = format!(
                        "SELECT path FROM routes WHERE app_name = $1 AND path = $2 {}",
                        Self::FOR_UPDATE
                    );
                    let found: Option<(String,)> = sqlx::query_as(&lock)
                        .bind(&route.app_name)
                        .bind(&route.path)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        return Err(StoreError::RouteNotFound {
                            app: s.app_name.clone(),
                            path: s.path.clone(),
                        });
                    }
                    let (count,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM schedules WHERE app_name = $1")
                            .bind(&s.app_name)
                            .fetch_one(&mut *tx)
                            .await?;
                    if count >= i64::from(max_per_app) {
                        return Err(StoreError::Invalid(ApiError::new(
                            ErrorKind::BadRequest,
                            format!(
                                "app {} has {count} schedules, its most \
                                 (FERRITE_APP_MAX_SCHEDULES, {max_per_app})",
                                s.app_name
                            ),
                        )));
                    }
                    let insert = format!(
                        "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    );
                    sqlx::query(&insert)
                        .bind(&s.id)
                        .bind(&s.app_name)
                        .bind(&s.path)
                        .bind(&s.cron)
                        .bind(&s.timezone)
                        .bind(&s.payload)
                        .bind(headers_json(s)?)
                        .bind(s.catch_up.as_str())
                        .bind(s.enabled)
                        .bind(s.next_run_ms)
                        .bind(s.created_at_ms)
                        .bind(s.updated_at_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            if is_foreign_key_violation(&e) {
                                StoreError::RouteNotFound {
                                    app: s.app_name.clone(),
                                    path: s.path.clone(),
                                }
                            } else {
                                e.into()
                            }
                        })?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_schedule(&self, app: &str, id: &str) -> Result<Schedule, StoreError> {
                    let query = format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE app_name = $1 AND id = $2"
                    );
                    let row: Option<ScheduleRow> = sqlx::query_as(&query)
                        .bind(app)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.ok_or_else(|| StoreError::ScheduleNotFound(id.to_string()))?
                        .try_into()
                }

                async fn list_schedules(&self, app: &str) -> Result<Vec<Schedule>, StoreError> {
                    let mut tx = self.snapshot().await?;
                    let found: Option<(String,)> =
                        sqlx::query_as("SELECT name FROM apps WHERE name = $1")
                            .bind(app)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if found.is_none() {
                        return Err(StoreError::AppNotFound(app.to_string()));
                    }
                    let query = format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE app_name = $1 ORDER BY id"
                    );
                    let rows: Vec<ScheduleRow> =
                        sqlx::query_as(&query).bind(app).fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    rows.into_iter().map(Schedule::try_from).collect()
                }

                async fn update_schedule(&self, s: &Schedule) -> Result<(), StoreError> {
                    let mut conn = self.write_one().await?;
                    let done = sqlx::query(
                        "UPDATE schedules SET cron = $1, timezone = $2, payload = $3, \
                         headers = $4, catch_up = $5, enabled = $6, next_run = $7, \
                         updated_at = $8 WHERE app_name = $9 AND id = $10",
                    )
                    .bind(&s.cron)
                    .bind(&s.timezone)
                    .bind(&s.payload)
                    .bind(headers_json(s)?)
                    .bind(s.catch_up.as_str())
                    .bind(s.enabled)
                    .bind(s.next_run_ms)
                    .bind(s.updated_at_ms)
                    .bind(&s.app_name)
                    .bind(&s.id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::ScheduleNotFound(s.id.clone()));
                    }
                    Ok(())
                }

                async fn delete_schedule(&self, app: &str, id: &str) -> Result<(), StoreError> {
                    let mut conn = self.write_one().await?;
                    let done = sqlx::query("DELETE FROM schedules WHERE app_name = $1 AND id = $2")
                        .bind(app)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::ScheduleNotFound(id.to_string()));
                    }
                    Ok(())
                }

                async fn due_schedules(
                    &self,
                    now_ms: i64,
                    limit: u32,
                ) -> Result<Vec<Schedule>, StoreError> {
                    let query = format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules \
                         WHERE enabled AND next_run <= $1 ORDER BY next_run LIMIT $2"
                    );
                    let rows: Vec<ScheduleRow> = sqlx::query_as(&query)
                        .bind(now_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.into_iter().map(Schedule::try_from).collect()
                }

                async fn advance_schedule(
                    &self,
                    id: &str,
                    from_ms: i64,
                    to_ms: Option<i64>,
                ) -> Result<bool, StoreError> {
                    let mut conn = self.write_one().await?;
                    let done = sqlx::query(
                        "UPDATE schedules SET next_run = $1 \
                         WHERE id = $2 AND next_run = $3 AND enabled",
                    )
                    .bind(to_ms)
                    .bind(id)
                    .bind(from_ms)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }
            }
        };
    };
}

pub(crate) use sql_schedules;
