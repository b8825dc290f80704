//! The embedded store: one SQLite file (WAL mode) under the data directory,
//! opened as [`ferrite_sqlite`] opens every embedded database.
//!
//! Durability: `synchronous = FULL`, so a commit is on disk before it
//! returns (an async call acknowledged as recorded survives a power cut).
//! Its cost (one WAL fsync per commit) is why the call history is written
//! in batches ([`Store::record_calls`](crate::Store::record_calls)).
//!
//! Writes take the database lock up front (`BEGIN IMMEDIATE`) so that a
//! read-merge-write never fails half way on a lock upgrade; readers are not
//! blocked by writers in WAL mode. The queries are the store core's
//! ([`crate::sql`]); this file holds how SQLite opens, writes and records a
//! batch.

use std::sync::Arc;

use ferrite_model::Call;
use ferrite_sqlite::OpenError;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::rows::CALL_COLUMNS;
use crate::sql::PUT_LOG;
use crate::{RecordedCall, StoreError};

/// The schema's versions.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The [`Store`](crate::Store) of a single node, in one SQLite file.
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

/// A connection for one write statement (autocommit) and this process's
/// write turn, released together.
struct WriteConn {
    conn: PoolConnection<Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl std::ops::Deref for WriteConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
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

impl SqliteStore {
    /// Close every connection: later queries fail as on a database that went
    /// away (for tests of what callers do then).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Open (creating when missing) the database of a `sqlite:` URL and
    /// bring its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let pool = ferrite_sqlite::open(url, "DB_URL", &MIGRATOR)
            .await
            .map_err(|e| match e {
                OpenError::Config(message) => StoreError::Config(message),
                OpenError::Migrate(e) => StoreError::Migrate(e),
            })?;
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

    /// A connection for one write statement, in the same line as
    /// [`SqliteStore::write`]'s writers. A write statement takes the
    /// database's write lock as it starts, so alone it is as atomic as a
    /// transaction, without the round trips of `BEGIN` and `COMMIT`.
    async fn write_one(&self) -> Result<WriteConn, StoreError> {
        let turn = self.writes.clone().lock_owned().await;
        let conn = self.pool.acquire().await?;
        Ok(WriteConn { conn, _turn: turn })
    }

    /// No row locks: a write holds the whole database from its `BEGIN
    /// IMMEDIATE` on.
    const FOR_UPDATE: &'static str = "";

    /// A read transaction: in WAL mode it reads one snapshot from its
    /// first read on, so a listing's app check and its rows agree.
    async fn snapshot(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Bind `call` to the eleven parameters of an insert of [`CALL_COLUMNS`].
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
            .bind(call.version.map(i64::from))
    }

    /// One insert per call, in one write transaction. The app check is part
    /// of the insert, so a call of a deleted app is skipped like a duplicate
    /// instead of failing the batch on the foreign key. The same query text
    /// every time: sqlx prepares it once per connection and reuses it for
    /// the rest of the batch.
    async fn record_batch(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
        let insert = format!(
            "INSERT INTO calls ({CALL_COLUMNS}, output) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL \
             WHERE EXISTS (SELECT 1 FROM apps WHERE name = $2) \
             ON CONFLICT (id) DO NOTHING"
        );
        let mut tx = self.write().await?;
        let mut inserted = 0;
        for RecordedCall { call, log } in calls {
            let done = Self::bind_call(sqlx::query(&insert), call)
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
}

crate::sql::sql_store!(SqliteStore, Sqlite);
crate::schedules::sql_schedules!(SqliteStore, Sqlite);
