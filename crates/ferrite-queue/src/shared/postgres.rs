//! [`super::Shared`] in the store's PostgreSQL database, for installations
//! without Redis: three tables in the connection's schema, made when
//! missing (under an advisory lock, so that nodes starting together do not
//! race to make them). Times are the server's (`clock_timestamp()`) in ms.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{millis, Loads};
use crate::bus::postgres::bounded;
use crate::QueueError;

/// The server's time in ms, as SQL.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Loads older than this are deleted (read ones are far younger).
const FORGET_LOADS_MS: i64 = 60_000;

/// Any number, the same on every node: it names the lock that makes the
/// tables one node at a time.
const SCHEMA_LOCK: i64 = 0x6665_7272_6974_6531;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ferrite_shared_loads (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    node TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key, node)
);
CREATE TABLE IF NOT EXISTS ferrite_shared_lease (
    scope TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ferrite_shared_decisions (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    decision TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
";

pub(super) struct PostgresShared {
    pub(super) node: String,
    scope: String,
    /// Two connections: one node's tick asks a few short things in turn.
    pool: PgPool,
    /// The most any one operation may take.
    timeout: Duration,
}

impl PostgresShared {
    pub(super) async fn open(
        url: &str,
        scope: &str,
        node: &str,
        timeout: Duration,
    ) -> Result<PostgresShared, QueueError> {
        let shown = ferrite_model::redact::url(url);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            QueueError::Config(format!("{shown:?} is not a valid PostgreSQL URL: {e}"))
        })?;
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("ferrite-shared"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        let shared = PostgresShared {
            node: node.to_string(),
            scope: scope.to_string(),
            pool,
            timeout,
        };
        shared.make_tables().await.map_err(|e| {
            QueueError::Config(format!("{shown:?}: cannot make the shared tables: {e}"))
        })?;
        Ok(shared)
    }

    async fn make_tables(&self) -> Result<(), QueueError> {
        bounded(self.timeout, async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
            tx.commit().await
        })
        .await
    }

    pub(super) async fn publish_loads(&self, loads: &[(String, f64)]) -> Result<(), QueueError> {
        if loads.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = loads.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<f64> = loads.iter().map(|(_, v)| *v).collect();
        let sql = format!(
            "INSERT INTO ferrite_shared_loads (scope, key, node, value, at_ms)
             SELECT $1, k, $2, v, {NOW_MS} FROM unnest($3::text[], $4::float8[]) AS t(k, v)
             ON CONFLICT (scope, key, node)
             DO UPDATE SET value = excluded.value, at_ms = excluded.at_ms"
        );
        bounded(
            self.timeout,
            sqlx::query(&sql)
                .bind(&self.scope)
                .bind(&self.node)
                .bind(&keys)
                .bind(&values)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn loads(&self, ttl: Duration) -> Result<Loads, QueueError> {
        let forget =
            format!("DELETE FROM ferrite_shared_loads WHERE scope = $1 AND at_ms < {NOW_MS} - $2");
        bounded(
            self.timeout,
            sqlx::query(&forget)
                .bind(&self.scope)
                .bind(FORGET_LOADS_MS)
                .execute(&self.pool),
        )
        .await?;
        let read = format!(
            "SELECT key, node, value FROM ferrite_shared_loads
             WHERE scope = $1 AND at_ms >= {NOW_MS} - $2"
        );
        let rows: Vec<(String, String, f64)> = bounded(
            self.timeout,
            sqlx::query_as(&read)
                .bind(&self.scope)
                .bind(millis(ttl))
                .fetch_all(&self.pool),
        )
        .await?;
        let mut loads = Loads::new();
        for (key, node, value) in rows {
            loads.entry(key).or_default().insert(node, value);
        }
        Ok(loads)
    }

    pub(super) async fn lease(&self, ttl: Duration) -> Result<Option<String>, QueueError> {
        // Taken when free or expired, renewed when ours; otherwise nothing
        // is written and the holder is read.
        let take = format!(
            "INSERT INTO ferrite_shared_lease (scope, holder, until_ms)
             VALUES ($1, $2, {NOW_MS} + $3)
             ON CONFLICT (scope) DO UPDATE
             SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE ferrite_shared_lease.until_ms < {NOW_MS}
                OR ferrite_shared_lease.holder = excluded.holder
             RETURNING holder"
        );
        let taken: Option<String> = bounded(
            self.timeout,
            sqlx::query_scalar(&take)
                .bind(&self.scope)
                .bind(&self.node)
                .bind(millis(ttl))
                .fetch_optional(&self.pool),
        )
        .await?;
        if taken.is_some() {
            return Ok(taken);
        }
        let read = format!(
            "SELECT holder FROM ferrite_shared_lease WHERE scope = $1 AND until_ms >= {NOW_MS}"
        );
        bounded(
            self.timeout,
            sqlx::query_scalar(&read)
                .bind(&self.scope)
                .fetch_optional(&self.pool),
        )
        .await
    }

    pub(super) async fn release(&self) -> Result<(), QueueError> {
        bounded(
            self.timeout,
            sqlx::query("DELETE FROM ferrite_shared_lease WHERE scope = $1 AND holder = $2")
                .bind(&self.scope)
                .bind(&self.node)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn publish_decisions(
        &self,
        decisions: &[(String, String)],
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let keys: Vec<&str> = decisions.iter().map(|(k, _)| k.as_str()).collect();
        let texts: Vec<&str> = decisions.iter().map(|(_, t)| t.as_str()).collect();
        let insert = format!(
            "INSERT INTO ferrite_shared_decisions (scope, key, decision, until_ms)
             SELECT $1, k, d, {NOW_MS} + $2 FROM unnest($3::text[], $4::text[]) AS t(k, d)"
        );
        bounded(self.timeout, async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM ferrite_shared_decisions WHERE scope = $1")
                .bind(&self.scope)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&insert)
                .bind(&self.scope)
                .bind(millis(ttl))
                .bind(&keys)
                .bind(&texts)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await
    }

    pub(super) async fn decisions(&self) -> Result<BTreeMap<String, String>, QueueError> {
        let read = format!(
            "SELECT key, decision FROM ferrite_shared_decisions
             WHERE scope = $1 AND until_ms >= {NOW_MS}"
        );
        let rows: Vec<(String, String)> = bounded(
            self.timeout,
            sqlx::query_as(&read)
                .bind(&self.scope)
                .fetch_all(&self.pool),
        )
        .await?;
        Ok(rows.into_iter().collect())
    }
}
