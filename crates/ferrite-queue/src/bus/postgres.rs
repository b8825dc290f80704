//! The change bus over the store's PostgreSQL database, for installations
//! without Redis: `pg_notify` publishes, LISTEN subscribes.
//!
//! Notifications stay within one database, and the channel is named after
//! the schema the store's tables live in (the connection's
//! `current_schema()`), so installations sharing a server, by database or by
//! schema, are apart.
//!
//! Each subscription has a connection of its own (sqlx's [`PgListener`]
//! over a pool of one), made for it and dropped with it: the listener's own
//! silent reconnection is turned off, since a listener that reconnects must
//! be told [`Heard::Subscribed`]. A `SELECT 1` on that connection every
//! [`PING_EVERY`] tells a hung server (or a backend that stopped) from a
//! quiet channel. Publishing takes one more connection, kept in a pool of
//! its own.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::{Heard, PING_EVERY};
use crate::QueueError;

/// The longest channel name PostgreSQL keeps (NAMEDATALEN - 1): LISTEN
/// would cut a longer one short, and `pg_notify` refuses it.
const MAX_CHANNEL_BYTES: usize = 63;

/// `application_name` of the bus's sessions when the URL names none, so
/// that an operator tells them apart in `pg_stat_activity`.
const PUBLISHER_NAME: &str = "ferrite";
const LISTENER_NAME: &str = "ferrite-changes";

pub(super) struct PostgresBus {
    /// How each subscription connects (a new connection each time).
    listener: PgConnectOptions,
    /// One connection: changes are made by people, one at a time.
    publisher: PgPool,
    channel: String,
    /// The most any one operation may take.
    timeout: Duration,
}

impl PostgresBus {
    /// The bus of the database (and schema) of a `postgres://` URL; every
    /// operation gives up after `timeout`.
    pub(super) async fn open(url: &str, timeout: Duration) -> Result<PostgresBus, QueueError> {
        let shown = ferrite_model::redact::url(url);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            QueueError::Config(format!("{shown:?} is not a valid PostgreSQL URL: {e}"))
        })?;
        let named = |name: &str| match options.get_application_name() {
            Some(_) => options.clone(),
            None => options.clone().application_name(name),
        };
        let publisher = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .connect_lazy_with(named(PUBLISHER_NAME));
        let schema: Option<String> = bounded(
            timeout,
            sqlx::query_scalar("SELECT current_schema()").fetch_one(&publisher),
        )
        .await
        .map_err(|e| QueueError::Config(format!("{shown:?}: cannot open the change bus: {e}")))?;
        let schema = schema.ok_or_else(|| {
            QueueError::Config(format!(
                "{shown:?}: no schema of the search_path exists, so there is no store to share a change bus with"
            ))
        })?;
        Ok(PostgresBus {
            listener: named(LISTENER_NAME),
            publisher,
            channel: channel(&schema),
            timeout,
        })
    }

    /// See [`super::ChangeBus::publish`].
    pub(super) async fn publish(&self, message: &str) -> Result<(), QueueError> {
        bounded(
            self.timeout,
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(message)
                .execute(&self.publisher),
        )
        .await?;
        Ok(())
    }

    /// See [`super::ChangeBus::listen`].
    pub(super) async fn listen(&self, mut on: impl FnMut(Heard) -> bool) -> Result<(), QueueError> {
        // A pool of its own, dropped with this subscription: were the old
        // connection hung, its clean-up (sqlx's UNLISTEN on drop) cannot
        // hold up the next subscription.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(self.listener.clone());
        let mut listener = bounded(self.timeout, PgListener::connect_with(&pool)).await?;
        listener.ignore_pool_close_event(true);
        // A lost connection ends this subscription instead of being
        // replaced unseen.
        listener.eager_reconnect(false);
        bounded(self.timeout, listener.listen(&self.channel)).await?;
        if !on(Heard::Subscribed) {
            return Ok(());
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `try_recv` may be dropped while it waits: sqlx reads a
            // message only once all of it has arrived.
            tokio::select! {
                received = listener.try_recv() => match received? {
                    Some(notification) => {
                        if !on(Heard::Message(notification.payload().to_string())) {
                            return Ok(());
                        }
                    }
                    None => {
                        return Err(QueueError::Config(format!(
                            "the connection listening on {} was lost",
                            self.channel
                        )))
                    }
                },
                _ = ping.tick() => {
                    // Notifications that arrive meanwhile are kept for the
                    // next `try_recv`.
                    bounded(self.timeout, sqlx::query("SELECT 1").execute(&mut listener)).await?;
                }
            }
        }
    }
}

/// Run one operation on PostgreSQL, giving up after `limit`, waiting for a
/// connection included.
pub(crate) async fn bounded<T>(
    limit: Duration,
    operation: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Err(QueueError::PostgresTimeout(limit)),
        Ok(result) => Ok(result?),
    }
}

/// The channel of the installation whose tables are in `schema`:
/// `ferrite:changes:{schema}`, or the schema's hash in its place when that
/// is too long for PostgreSQL.
fn channel(schema: &str) -> String {
    let named = format!("ferrite:changes:{schema}");
    if named.len() <= MAX_CHANNEL_BYTES {
        return named;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("ferrite:changes:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_fit_and_keep_schemas_apart() {
        assert_eq!(channel("public"), "ferrite:changes:public");
        let long = "s".repeat(63);
        let other = format!("{}t", "s".repeat(62));
        assert!(channel(&long).len() <= MAX_CHANNEL_BYTES);
        assert_ne!(channel(&long), channel(&other));
        assert_eq!(channel(&long), channel(&long));
    }
}
