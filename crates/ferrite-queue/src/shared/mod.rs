//! What the nodes of one installation share to make one decision where each
//! would otherwise make its own: every node's published load (a number per
//! key, kept for a time to live), a lease that one node at a time holds, and
//! the holder's published decisions. Like the [`crate::bus`], one interface
//! over two servers, chosen by the URL it is opened with:
//!
//! - Redis (`redis://host:port/prefix`): a hash of loads, a hash of
//!   decisions, and the lease as a key set with `NX PX` and renewed by a
//!   script that extends only its own value;
//! - PostgreSQL (`postgres://...`): three small tables in the store's
//!   schema, made when missing, the lease a row taken with `UPDATE ... WHERE
//!   until < now OR holder = me`.
//!
//! Times to live are counted by the server's clock, never the nodes', so
//! nodes whose clocks disagree still agree on what expired. A caller that
//! holds the lease must stop acting as its holder once its own clock says
//! the lease is over ([`Lease::held_until`]): it counts from before it asked,
//! so it always ends before the server's.
//!
//! It knows nothing of services or replicas: keys and texts are opaque.

mod postgres;
mod redis;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::QueueError;

/// Every node's published load: key -> node -> value.
pub type Loads = BTreeMap<String, BTreeMap<String, f64>>;

/// The shared state of one installation (one `scope`), seen by one node.
pub struct Shared {
    transport: Transport,
}

enum Transport {
    /// Boxed: its scripts make it the larger by far.
    Redis(Box<redis::RedisShared>),
    Postgres(postgres::PostgresShared),
}

/// The lease as one attempt to take or renew it left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node holding it now, if any.
    pub holder: Option<String>,
    /// When this node's hold ends by its own clock, when it is the holder.
    pub held_until: Option<Instant>,
}

impl Shared {
    /// The shared state of the installation at a `redis://host:port/prefix`
    /// queue URL or a `postgres://` database URL, as node `node`; `scope`
    /// keeps installations sharing a server apart. Every operation gives up
    /// after `timeout`.
    pub async fn open(
        url: &str,
        scope: &str,
        node: &str,
        timeout: Duration,
    ) -> Result<Shared, QueueError> {
        let transport = match url.split(':').next().unwrap_or_default() {
            "redis" => Transport::Redis(Box::new(
                redis::RedisShared::open(url, scope, node, timeout).await?,
            )),
            "postgres" | "postgresql" => {
                Transport::Postgres(postgres::PostgresShared::open(url, scope, node, timeout).await?)
            }
            scheme => {
                return Err(QueueError::Config(format!(
                    "{:?}: nothing can be shared over {scheme:?}; use redis://host:port/prefix or postgres://...",
                    ferrite_model::redact::url(url)
                )))
            }
        };
        Ok(Shared { transport })
    }

    /// The server shared through, for messages to an operator.
    pub fn server(&self) -> &'static str {
        match self.transport {
            Transport::Redis(_) => "Redis",
            Transport::Postgres(_) => "PostgreSQL",
        }
    }

    /// Publish this node's `loads` (key, value), stamped with the server's
    /// time; keys left out are no longer this node's once stale.
    pub async fn publish_loads(&self, loads: &[(String, f64)]) -> Result<(), QueueError> {
        match &self.transport {
            Transport::Redis(s) => s.publish_loads(loads).await,
            Transport::Postgres(s) => s.publish_loads(loads).await,
        }
    }

    /// Every node's loads published within the last `ttl` (older ones are
    /// left out, and deleted).
    pub async fn loads(&self, ttl: Duration) -> Result<Loads, QueueError> {
        match &self.transport {
            Transport::Redis(s) => s.loads(ttl).await,
            Transport::Postgres(s) => s.loads(ttl).await,
        }
    }

    /// Take the lease for `ttl` when nobody holds it, renew it when this
    /// node does; either way, say who holds it now.
    pub async fn lease(&self, ttl: Duration) -> Result<Lease, QueueError> {
        let asked = Instant::now();
        let holder = match &self.transport {
            Transport::Redis(s) => s.lease(ttl).await?,
            Transport::Postgres(s) => s.lease(ttl).await?,
        };
        let mine = holder.as_deref() == Some(self.node());
        Ok(Lease {
            holder,
            held_until: mine.then(|| asked + ttl),
        })
    }

    /// Give the lease up, when this node holds it, so another takes it at
    /// once rather than after its time to live.
    pub async fn release(&self) -> Result<(), QueueError> {
        match &self.transport {
            Transport::Redis(s) => s.release().await,
            Transport::Postgres(s) => s.release().await,
        }
    }

    /// Replace the published decisions with `decisions` (key, text), kept
    /// for `ttl` unless published again.
    pub async fn publish_decisions(
        &self,
        decisions: &[(String, String)],
        ttl: Duration,
    ) -> Result<(), QueueError> {
        match &self.transport {
            Transport::Redis(s) => s.publish_decisions(decisions, ttl).await,
            Transport::Postgres(s) => s.publish_decisions(decisions, ttl).await,
        }
    }

    /// The decisions last published, by key.
    pub async fn decisions(&self) -> Result<BTreeMap<String, String>, QueueError> {
        match &self.transport {
            Transport::Redis(s) => s.decisions().await,
            Transport::Postgres(s) => s.decisions().await,
        }
    }

    fn node(&self) -> &str {
        match &self.transport {
            Transport::Redis(s) => &s.node,
            Transport::Postgres(s) => &s.node,
        }
    }
}

/// A time to live in whole milliseconds, at least one.
fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}
