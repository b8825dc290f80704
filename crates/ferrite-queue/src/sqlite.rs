//! The embedded queue: one SQLite file (WAL mode), e.g. `data/queue.db`,
//! opened as [`ferrite_sqlite`] opens every embedded database.
//!
//! Every operation is one SQL statement, atomic by itself: SQLite takes the
//! write lock at the start of a write statement, so two workers reserving at
//! once never pick the same task (`reserve` is one `UPDATE ... RETURNING`).
//! A lease is the pair (`lease_token`, `visible_at`): the
//! task is hidden until `visible_at`, and only the current token may ack,
//! extend or release it.

use std::time::Duration;

use async_trait::async_trait;
use ferrite_sqlite::OpenError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;
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
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn push_many(&self, tasks: &[Task]) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let _turn = self.writes.lock().await;
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for task in tasks {
            sqlx::query(
                "INSERT INTO tasks (id, payload, visible_at, attempts, created_at) \
                 VALUES ($1, $2, $3, 0, $3)",
            )
            .bind(&task.id)
            .bind(&task.payload)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    QueueError::Duplicate(task.id.clone())
                } else {
                    e.into()
                }
            })?;
        }
        tx.commit().await?;
        Ok(())
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
