//! The embedded queue: one SQLite file (WAL mode), e.g. `data/queue.db`,
//! opened as [`ferrite_sqlite`] opens every embedded database.
//!
//! Every operation is one SQL statement, atomic by itself: SQLite takes the
//! write lock at the start of a write statement, so two workers reserving at
//! once never pick the same task (`reserve` is one `UPDATE ... RETURNING`).
//! A lease is the pair (`lease_token`, `visible_at`): the
//! task is hidden until `visible_at`, and only the current token may ack,
//! extend or release it.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use ferrite_sqlite::OpenError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::Mutex;

use crate::{millis, new_token, now_ms, Lease, Queue, QueueError, Task};

/// The schema's versions.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteQueue {
    pool: SqlitePool,
    /// One writing statement at a time in this process: SQLite has one
    /// writer, and statements that collide would each retry through its busy
    /// handler, whose growing sleeps (1, 2, 5, 10 ... ms) add tens of
    /// milliseconds to the unlucky ones. Waiting in line here is immediate.
    writes: Mutex<()>,
}

/// Tasks in one INSERT of [`Queue::push_many`]: 5 parameters each, well
/// under SQLite's limit of 32,766 on one statement's parameters.
const PUSH_ROWS: usize = 1024;

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl SqliteQueue {
    /// Open (creating when missing) the database of a `sqlite:` URL, e.g.
    /// `sqlite://./data/queue.db`, and bring its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteQueue, QueueError> {
        // sqlx would take any other string for a file name.
        if !url.starts_with("sqlite:") {
            return Err(QueueError::Config(format!(
                "queue URL {url:?} is not a SQLite URL; use sqlite://path/to/queue.db"
            )));
        }
        let pool = ferrite_sqlite::open(url, "queue URL", &MIGRATOR)
            .await
            .map_err(|e| match e {
                OpenError::Config(message) => QueueError::Config(message),
                OpenError::Migrate(e) => QueueError::Migrate(e),
            })?;
        tracing::info!(url, "sqlite queue ready");
        Ok(SqliteQueue {
            pool,
            writes: Mutex::new(()),
        })
    }

    /// The [`QueueError::Duplicate`] of a push of `tasks` that failed on a
    /// taken id: the first task whose id appears earlier in `tasks` or is
    /// queued already.
    async fn duplicate(&self, tasks: &[Task]) -> QueueError {
        let mut seen = HashSet::new();
        if let Some(task) = tasks.iter().find(|t| !seen.insert(t.id.as_str())) {
            return QueueError::Duplicate(task.id.clone());
        }
        for task in tasks {
            let found: Result<Option<(i64,)>, _> =
                sqlx::query_as("SELECT seq FROM tasks WHERE id = $1")
                    .bind(&task.id)
                    .fetch_optional(&self.pool)
                    .await;
            match found {
                Ok(Some(_)) => return QueueError::Duplicate(task.id.clone()),
                Ok(None) => {}
                Err(e) => return e.into(),
            }
        }
        // Taken when the push ran, gone since (acked): still a duplicate.
        QueueError::Duplicate(tasks.first().map(|t| t.id.clone()).unwrap_or_default())
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn push_many(&self, tasks: &[Task]) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let _turn = self.writes.lock().await;
        let now = now_ms();
        // One multi-row INSERT, atomic by itself, with no transaction
        // around it (a larger batch than one statement takes is one
        // transaction): every statement is a round trip to the connection's
        // thread, and the profile of the async enqueue found those, more
        // than the commit's flush, setting its pace (docs/benchmarks.md).
        let written = if tasks.len() <= PUSH_ROWS {
            let mut conn = self.pool.acquire().await?;
            insert_tasks(&mut conn, tasks, now).await
        } else {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let mut written = Ok(());
            for chunk in tasks.chunks(PUSH_ROWS) {
                written = insert_tasks(&mut tx, chunk, now).await;
                if written.is_err() {
                    break;
                }
            }
            match written {
                Ok(()) => tx.commit().await,
                Err(e) => Err(e),
            }
        };
        match written {
            Ok(()) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(self.duplicate(tasks).await),
            Err(e) => Err(e.into()),
        }
    }

    async fn reserve(&self, worker: &str, lease: Duration) -> Result<Option<Lease>, QueueError> {
        let _turn = self.writes.lock().await;
        let now = now_ms();
        let token = new_token();
        let row: Option<(String, Vec<u8>, i64)> = sqlx::query_as(
            "UPDATE tasks SET visible_at = $1, attempts = attempts + 1, \
                 lease_token = $2, leased_by = $3 \
             WHERE seq = (SELECT seq FROM tasks WHERE visible_at <= $4 \
                          ORDER BY visible_at, seq LIMIT 1) \
             RETURNING id, payload, attempts",
        )
        .bind(now.saturating_add(millis(lease)))
        .bind(&token)
        .bind(worker)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, payload, attempts)| Lease::reserved(id, payload, attempts, token)))
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError> {
        let _turn = self.writes.lock().await;
        let until = now_ms().saturating_add(millis(by));
        let done =
            sqlx::query("UPDATE tasks SET visible_at = $1 WHERE id = $2 AND lease_token = $3")
                .bind(until)
                .bind(&lease.task.id)
                .bind(&lease.token)
                .execute(&self.pool)
                .await?;
        held(done.rows_affected(), lease)
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        let _turn = self.writes.lock().await;
        let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND lease_token = $2")
            .bind(&lease.task.id)
            .bind(&lease.token)
            .execute(&self.pool)
            .await?;
        held(done.rows_affected(), lease)
    }

    async fn release(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
        let _turn = self.writes.lock().await;
        let visible_at = now_ms().saturating_add(millis(delay));
        let done = sqlx::query(
            "UPDATE tasks SET visible_at = $1, lease_token = NULL, leased_by = NULL \
             WHERE id = $2 AND lease_token = $3",
        )
        .bind(visible_at)
        .bind(&lease.task.id)
        .bind(&lease.token)
        .execute(&self.pool)
        .await?;
        held(done.rows_affected(), lease)
    }

    async fn cancel(&self, id: &str) -> Result<bool, QueueError> {
        let _turn = self.writes.lock().await;
        // Leased means a token whose lease has not run out yet; a released
        // task waiting out its delay, or one whose worker died, may go.
        let done = sqlx::query(
            "DELETE FROM tasks WHERE id = $1 AND (lease_token IS NULL OR visible_at <= $2)",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn oldest_waiting(&self) -> Result<Option<Duration>, QueueError> {
        let now = now_ms();
        let (oldest,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(visible_at) FROM tasks WHERE visible_at <= $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        Ok(oldest.map(|at| Duration::from_millis(u64::try_from(now - at).unwrap_or(0))))
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tasks")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// `Ok` when the statement touched the leased task, [`QueueError::LeaseLost`]
/// when the token no longer matches.
fn held(rows: u64, lease: &Lease) -> Result<(), QueueError> {
    if rows == 0 {
        Err(QueueError::LeaseLost(lease.task.id.clone()))
    } else {
        Ok(())
    }
}

/// Insert `tasks` (at most [`PUSH_ROWS`]), visible from `now`, with one
/// statement.
async fn insert_tasks(
    conn: &mut SqliteConnection,
    tasks: &[Task],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO tasks (id, payload, visible_at, attempts, created_at) ",
    );
    insert.push_values(tasks, |mut row, task| {
        row.push_bind(&task.id)
            .push_bind(&task.payload)
            .push_bind(now)
            .push_bind(0_i64)
            .push_bind(now);
    });
    insert.build().execute(conn).await?;
    Ok(())
}
