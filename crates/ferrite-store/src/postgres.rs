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
//!
//! The queries are the store core's ([`crate::sql`]); this file holds how
//! PostgreSQL connects, migrates, locks and records a batch.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use ferrite_model::Call;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::rows::CALL_COLUMNS;
use crate::{RecordedCall, StoreError};

/// The schema's versions; several nodes may run them at once (see the module doc).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node: enough for the API and the async workers of one
/// node, few enough that a dozen nodes stay under PostgreSQL's default
/// `max_connections` (100).
const MAX_CONNECTIONS: u32 = 8;

/// How long opening waits for a server that refuses connections or is still
/// starting up, as when a whole stack starts at once. Any other error (a
/// bad password, a missing database, an unknown host) fails at once.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// A snapshot for a listing: its checks and its rows agree, and, being read
/// only, it never fails on a serialization conflict.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The [`Store`](crate::Store) of nodes that share a PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
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

    /// A write transaction: READ COMMITTED, made safe by the row locks
    /// its reads take.
    async fn write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for one write statement, atomic by itself (autocommit).
    async fn write_one(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A read-merge-write's lock: concurrent updates of one row queue
    /// behind each other and each merges into the latest committed version.
    const FOR_UPDATE: &'static str = "FOR UPDATE";

    /// A read-only REPEATABLE READ snapshot ([`BEGIN_SNAPSHOT`]).
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin_with(BEGIN_SNAPSHOT).await?)
    }

    /// Two statements whatever the batch's size (the calls, then their
    /// logs), each taking the batch as arrays, so a batch costs a few round
    /// trips to a remote database rather than one per call.
    async fn record_batch(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
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
                    error, attempts, version, NULL \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[], \
                         $11::bigint[]) \
                  WITH ORDINALITY AS batch (id, app_name, path, type, status, created_at, \
                                            started_at, completed_at, error, attempts, version, n) \
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
        .bind(
            batch
                .iter()
                .map(|c| c.call.version.map(i64::from))
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
}

crate::sql::sql_store!(PostgresStore, Postgres);
crate::schedules::sql_schedules!(PostgresStore, Postgres);
