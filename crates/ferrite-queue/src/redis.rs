//! The production queue: a Redis server shared by every node, reached with
//! `MQ_URL=redis://[user:password@]host:port/prefix`. The path is a key
//! prefix (default `ferrite`), not a database number, so several Ferrite
//! installations can share one server.
//!
//! # Layout
//!
//! - `{prefix}:task:{id}`: a hash per task: `payload`, `attempts`, `member`
//!   (its name in the sorted set) and, while leased, `token` and `leased_by`.
//! - `{prefix}:visible`: a sorted set of every task, leased or not, scored by
//!   the time (ms) it becomes visible. A member is `{seq:020}:{id}`, with
//!   `seq` taken from the counter `{prefix}:seq` at push: equal scores sort by
//!   member, so the zero-padded sequence keeps push order among tasks visible
//!   at the same millisecond.
//!
//! A lease is (`token`, score in the future): reserving moves the score to
//! the end of the lease, so a leased task simply waits in the same set and is
//! delivered again once the lease runs out, with nothing to sweep. Every
//! operation is one Lua script, hence atomic, and reads the clock of the
//! Redis server (`TIME`), so nodes with skewed clocks agree on leases.
//!
//! # Durability
//!
//! The queue is as durable as the server is configured to be; that is the
//! operator's choice. Run Redis with `appendonly yes` (AOF; `appendfsync
//! always` for no loss at all, `everysec` to lose at most a second on a
//! crash). A standalone server (or one behind Sentinel) is assumed: the
//! scripts touch keys they compute, which Redis Cluster does not allow.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use async_trait::async_trait;

use crate::{millis, new_token, Lease, Queue, QueueError, Task};

/// The key prefix when the URL has no path.
const DEFAULT_PREFIX: &str = "ferrite";
/// How long one Redis operation may take when the server says nothing
/// else: every script here is a handful of O(log n) commands, so a server
/// that does not answer within this is down or hung, not busy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// After a lost connection, the manager reconnects with a bounded backoff
/// (at most about 3 s); callers never wait longer than their timeout for it.
const RECONNECT_RETRIES: usize = 4;
const RECONNECT_MAX_DELAY_MS: u64 = 1000;

/// Lua prelude: the server's clock in milliseconds.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: visible set, sequence, then one task hash per task. ARGV: id and
/// payload of each task, in turn. 0 when all are queued; otherwise the
/// (1-based) index of a task whose id is already there, and nothing written.
const PUSH_MANY: &str = r"
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return i - 2 end
end
for i = 3, #KEYS do
  local n = i - 2
  local member = string.format('%020d', redis.call('INCR', KEYS[2])) .. ':' .. ARGV[2 * n - 1]
  redis.call('HSET', KEYS[i], 'payload', ARGV[2 * n], 'attempts', 0, 'member', member)
  redis.call('ZADD', KEYS[1], now, member)
end
return 0
";

/// KEYS: visible set. ARGV: task key prefix (`{prefix}:task:`), lease ms,
/// token, worker. `{id, payload, attempts}`, or nil when nothing is visible.
const RESERVE: &str = r"
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)[1]
if not first then return nil end
local id = string.sub(first, 22)
local key = ARGV[1] .. id
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), first)
local attempts = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'token', ARGV[3], 'leased_by', ARGV[4])
return {id, redis.call('HGET', key, 'payload'), attempts}
";

/// Shared head of the scripts that need the current lease: KEYS: task hash;
/// ARGV[1]: token. Returns 0 (lease lost) unless the token still matches.
const HELD: &str = r"
local member = redis.call('HGET', KEYS[1], 'member')
if not member or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
";

/// KEYS: task hash, visible set. ARGV: token, ms from now.
const EXTEND: &str = r"
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), member)
return 1
";

/// KEYS: task hash, visible set. ARGV: token.
const ACK: &str = r"
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], member)
return 1
";

/// KEYS: task hash, visible set. ARGV: token, delay ms.
const RELEASE: &str = r"
redis.call('HDEL', KEYS[1], 'token', 'leased_by')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), member)
return 1
";

/// KEYS: task hash, visible set. 1 when removed; 0 when missing or leased
/// (a token whose lease has not run out: a released task waiting out its
/// delay, or one whose worker died, may go).
const CANCEL: &str = r"
local member = redis.call('HGET', KEYS[1], 'member')
if not member then return 0 end
if redis.call('HEXISTS', KEYS[1], 'token') == 1 then
  local score = redis.call('ZSCORE', KEYS[2], member)
  if score and tonumber(score) > now then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], member)
return 1
";

/// KEYS: visible set. Milliseconds the first visible task has waited
/// since it became visible, or -1 when none is visible.
const OLDEST: &str = r"
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if not first[2] then return -1 end
return now - tonumber(first[2])
";

/// The compiled scripts; [`Script`] runs them by SHA and loads them again
/// when the server has forgotten them (after a restart).
struct Scripts {
    push_many: Script,
    reserve: Script,
    extend: Script,
    ack: Script,
    release: Script,
    cancel: Script,
    oldest: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_now = |body: &str| Script::new(&format!("{NOW}{body}"));
        let held = |body: &str| Script::new(&format!("{NOW}{HELD}{body}"));
        Scripts {
            push_many: with_now(PUSH_MANY),
            reserve: with_now(RESERVE),
            extend: held(EXTEND),
            ack: held(ACK),
            release: held(RELEASE),
            cancel: with_now(CANCEL),
            oldest: with_now(OLDEST),
        }
    }
}

pub struct RedisQueue {
    /// Multiplexed and reconnecting: one per queue, cloned per call. No
    /// command here blocks, so a response timeout is safe.
    conn: ConnectionManager,
    /// The most any one operation may take, reconnecting included.
    timeout: Duration,
    /// `{prefix}:visible`.
    visible: String,
    /// `{prefix}:seq`.
    seq: String,
    /// `{prefix}:task:`, followed by a task id.
    task_prefix: String,
    scripts: Scripts,
}

/// Run one Redis operation, giving up after `limit`. The connection's own
/// response timeout does not cover waiting for a reconnection, so this is
/// what bounds every call a request makes to Redis.
pub(crate) async fn bounded<T>(
    limit: Duration,
    operation: impl std::future::Future<Output = ::redis::RedisResult<T>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(limit, operation).await {
        // The connection's own response timeout, set to the same limit.
        Ok(Err(e)) if e.is_timeout() => Err(QueueError::Timeout(limit)),
        Ok(result) => Ok(result?),
        Err(_) => Err(QueueError::Timeout(limit)),
    }
}

/// A Redis server reached through a queue URL: its client (for dedicated
/// connections), a shared reconnecting connection, and the key prefix.
pub(crate) struct Connected {
    pub client: Client,
    pub conn: ConnectionManager,
    pub prefix: String,
}

/// Connect to the server of a `redis://host:port/prefix` URL, check that it
/// answers within `timeout`, and set the connection's timeouts to it.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Connected, QueueError> {
    let (server, prefix) = parse_url(url)?;
    let shown = ferrite_model::redact::url(url);
    let client = Client::open(server.as_str()).map_err(|e| {
        QueueError::Config(format!("queue URL {shown:?} is not a valid Redis URL: {e}"))
    })?;
    let unreachable =
        |e: QueueError| QueueError::Config(format!("queue URL {shown:?}: cannot reach Redis: {e}"));
    // One plain attempt first: the manager retries its first connection
    // with backoff, which would make a wrong URL hang instead of fail.
    bounded(timeout, async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await
    .map_err(unreachable)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(timeout)
        .set_connection_timeout(timeout)
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(RECONNECT_MAX_DELAY_MS);
    let conn = bounded(
        timeout,
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    .map_err(unreachable)?;
    Ok(Connected {
        client,
        conn,
        prefix,
    })
}

/// Split `redis://authority/prefix` into the server URL the client takes
/// and the key prefix.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), QueueError> {
    let shown = ferrite_model::redact::url(url);
    let rest = url.strip_prefix("redis://").ok_or_else(|| {
        QueueError::Config(format!(
            "queue URL {shown:?} is not a Redis URL; use redis://host:port/prefix"
        ))
    })?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || path.contains(['?', '#']) {
        return Err(QueueError::Config(format!(
            "queue URL {shown:?}: expected redis://host:port/prefix"
        )));
    }
    let prefix = path.trim_matches('/');
    let prefix = if prefix.is_empty() {
        DEFAULT_PREFIX
    } else {
        prefix
    };
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(QueueError::Config(format!(
            "queue URL {shown:?}: the key prefix {prefix:?} has blanks or control characters"
        )));
    }
    Ok((format!("redis://{authority}"), prefix.to_string()))
}

impl RedisQueue {
    /// Connect to the server of a `redis://host:port/prefix` URL and check
    /// that it answers. Nothing is created until the first push. Every
    /// operation gives up after `timeout` ([`QueueError::Timeout`]).
    pub async fn open(url: &str, timeout: Duration) -> Result<RedisQueue, QueueError> {
        let Connected { conn, prefix, .. } = connect(url, timeout).await?;
        tracing::info!(server = %ferrite_model::redact::url(url), prefix, timeout_ms = timeout.as_millis(), "redis queue ready");
        Ok(RedisQueue {
            conn,
            timeout,
            visible: format!("{prefix}:visible"),
            seq: format!("{prefix}:seq"),
            task_prefix: format!("{prefix}:task:"),
            scripts: Scripts::new(),
        })
    }

    fn task_key(&self, id: &str) -> String {
        format!("{}{id}", self.task_prefix)
    }

    /// Run one of the lease-checking scripts on `lease`'s task.
    async fn held(&self, script: &Script, lease: &Lease, ms: i64) -> Result<(), QueueError> {
        let done: i64 = bounded(
            self.timeout,
            script
                .key(self.task_key(&lease.task.id))
                .key(&self.visible)
                .arg(&lease.token)
                .arg(ms)
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        if done == 0 {
            Err(QueueError::LeaseLost(lease.task.id.clone()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Queue for RedisQueue {
    /// One script, so the batch is one atomic command: one AOF write (and
    /// one fsync under `appendfsync always`) for the lot.
    async fn push_many(&self, tasks: &[Task]) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::with_capacity(tasks.len());
        if let Some(twice) = tasks.iter().find(|t| !seen.insert(t.id.as_str())) {
            return Err(QueueError::Duplicate(twice.id.clone()));
        }
        let mut invocation = self.scripts.push_many.key(&self.visible);
        invocation.key(&self.seq);
        for task in tasks {
            invocation
                .key(self.task_key(&task.id))
                .arg(&task.id)
                .arg(&task.payload[..]);
        }
        let taken: usize = bounded(
            self.timeout,
            invocation.invoke_async(&mut self.conn.clone()),
        )
        .await?;
        match taken.checked_sub(1).and_then(|i| tasks.get(i)) {
            Some(task) => Err(QueueError::Duplicate(task.id.clone())),
            None => Ok(()),
        }
    }

    async fn reserve(&self, worker: &str, lease: Duration) -> Result<Option<Lease>, QueueError> {
        let token = new_token();
        let row: Option<(String, Vec<u8>, i64)> = bounded(
            self.timeout,
            self.scripts
                .reserve
                .key(&self.visible)
                .arg(&self.task_prefix)
                .arg(millis(lease))
                .arg(&token)
                .arg(worker)
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        Ok(row.map(|(id, payload, attempts)| Lease::reserved(id, payload, attempts, token)))
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError> {
        self.held(&self.scripts.extend, lease, millis(by)).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        self.held(&self.scripts.ack, lease, 0).await
    }

    async fn release(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
        self.held(&self.scripts.release, lease, millis(delay)).await
    }

    async fn cancel(&self, id: &str) -> Result<bool, QueueError> {
        let done: i64 = bounded(
            self.timeout,
            self.scripts
                .cancel
                .key(self.task_key(id))
                .key(&self.visible)
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        Ok(done == 1)
    }

    async fn oldest_waiting(&self) -> Result<Option<Duration>, QueueError> {
        let waited_ms: i64 = bounded(
            self.timeout,
            self.scripts
                .oldest
                .key(&self.visible)
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        Ok(u64::try_from(waited_ms).ok().map(Duration::from_millis))
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let count: u64 = bounded(
            self.timeout,
            ::redis::cmd("ZCARD")
                .arg(&self.visible)
                .query_async(&mut self.conn.clone()),
        )
        .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_is_the_key_prefix() {
        let parse = |u: &str| parse_url(u).unwrap();
        assert_eq!(
            parse("redis://h:6379/jobs"),
            ("redis://h:6379".into(), "jobs".into())
        );
        assert_eq!(
            parse("redis://u:p@h:6379"),
            ("redis://u:p@h:6379".into(), "ferrite".into())
        );
        assert_eq!(
            parse("redis://h:6379/"),
            ("redis://h:6379".into(), "ferrite".into())
        );
        for bad in [
            "rediss://h/x",
            "sqlite://q.db",
            "redis:///x",
            "redis://h/x?db=1",
        ] {
            assert!(
                matches!(parse_url(bad), Err(QueueError::Config(_))),
                "{bad}"
            );
        }
    }
}
