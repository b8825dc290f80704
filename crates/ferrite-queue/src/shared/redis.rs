//! [`super::Shared`] on the Redis server of a queue, under
//! `{prefix}:shared:{scope}:`: a hash of loads (field `node\nkey`, value
//! `ms value`, `ms` by the server's clock), a hash of decisions, and the
//! lease key. Loads of a node that stopped publishing are left out once
//! stale and deleted by the next read.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::{millis, Loads};
use crate::redis::{bounded, connect, Connected};
use crate::QueueError;

/// Store this node's loads stamped with the server's time in ms.
/// KEYS[1] loads; ARGV[1] node, then key, value pairs.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[1] .. '\n' .. ARGV[i], now .. ' ' .. ARGV[i + 1])
end
return now
";

/// The loads younger than ARGV[1] ms, as field, value pairs; older ones
/// are deleted. KEYS[1] loads.
const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local fresh = {}
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+) '))
  if at and now - at <= tonumber(ARGV[1]) then
    fresh[#fresh + 1] = all[i]
    fresh[#fresh + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return fresh
";

/// Take the lease when free, renew it when ARGV[1] holds it; the holder.
/// KEYS[1] lease; ARGV[1] node, ARGV[2] ttl ms.
const LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return holder
";

/// Delete the lease only when ARGV[1] holds it. KEYS[1] lease.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Replace the decisions. KEYS[1] decisions; ARGV[1] ttl ms, then key,
/// text pairs.
const DECIDE: &str = r"
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if #ARGV > 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
";

pub(super) struct RedisShared {
    pub(super) node: String,
    conn: ConnectionManager,
    loads: String,
    decisions: String,
    lease: String,
    scripts: Scripts,
    /// The most any one operation may take.
    timeout: Duration,
}

struct Scripts {
    publish: Script,
    read: Script,
    lease: Script,
    release: Script,
    decide: Script,
}

impl RedisShared {
    pub(super) async fn open(
        url: &str,
        scope: &str,
        node: &str,
        timeout: Duration,
    ) -> Result<RedisShared, QueueError> {
        let Connected { conn, prefix, .. } = connect(url, timeout).await?;
        let base = format!("{prefix}:shared:{scope}");
        Ok(RedisShared {
            node: node.to_string(),
            conn,
            loads: format!("{base}:loads"),
            decisions: format!("{base}:decisions"),
            lease: format!("{base}:lease"),
            scripts: Scripts {
                publish: Script::new(PUBLISH),
                read: Script::new(READ),
                lease: Script::new(LEASE),
                release: Script::new(RELEASE),
                decide: Script::new(DECIDE),
            },
            timeout,
        })
    }

    pub(super) async fn publish_loads(&self, loads: &[(String, f64)]) -> Result<(), QueueError> {
        let mut invocation = self.scripts.publish.key(&self.loads);
        invocation.arg(&self.node);
        for (key, value) in loads {
            invocation.arg(key).arg(value.to_string());
        }
        bounded(
            self.timeout,
            invocation.invoke_async::<i64>(&mut self.conn.clone()),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn loads(&self, ttl: Duration) -> Result<Loads, QueueError> {
        let fresh: Vec<String> = bounded(
            self.timeout,
            self.scripts
                .read
                .key(&self.loads)
                .arg(millis(ttl))
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        let mut loads = Loads::new();
        for pair in fresh.chunks_exact(2) {
            let (Some((node, key)), Some((_, value))) =
                (pair[0].split_once('\n'), pair[1].split_once(' '))
            else {
                continue;
            };
            if let Ok(value) = value.parse::<f64>() {
                loads
                    .entry(key.to_string())
                    .or_default()
                    .insert(node.to_string(), value);
            }
        }
        Ok(loads)
    }

    pub(super) async fn lease(&self, ttl: Duration) -> Result<Option<String>, QueueError> {
        let holder: Option<String> = bounded(
            self.timeout,
            self.scripts
                .lease
                .key(&self.lease)
                .arg(&self.node)
                .arg(millis(ttl))
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        Ok(holder)
    }

    pub(super) async fn release(&self) -> Result<(), QueueError> {
        bounded(
            self.timeout,
            self.scripts
                .release
                .key(&self.lease)
                .arg(&self.node)
                .invoke_async::<i64>(&mut self.conn.clone()),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn publish_decisions(
        &self,
        decisions: &[(String, String)],
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let mut invocation = self.scripts.decide.key(&self.decisions);
        invocation.arg(millis(ttl));
        for (key, text) in decisions {
            invocation.arg(key).arg(text);
        }
        bounded(
            self.timeout,
            invocation.invoke_async::<i64>(&mut self.conn.clone()),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn decisions(&self) -> Result<BTreeMap<String, String>, QueueError> {
        let mut conn = self.conn.clone();
        bounded(
            self.timeout,
            redis::cmd("HGETALL")
                .arg(&self.decisions)
                .query_async(&mut conn),
        )
        .await
    }
}
