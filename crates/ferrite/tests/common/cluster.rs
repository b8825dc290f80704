//! Three Ferrite nodes behind a real HAProxy, sharing PostgreSQL and a Redis
//! queue, as in production: what the node-failure tests start from. The
//! nodes have a management key, so `/v1` through the proxy (a remote caller)
//! needs a token.

use reqwest::blocking::Response;
use serde_json::Value;

use super::haproxy::HaProxy;
use super::redis::RedisServer;
use super::{client, token, TestServer};

/// The nodes and their proxy; dropped in that order: the proxy, the nodes,
/// then Redis.
pub struct Cluster {
    /// The proxy every call and management request goes through.
    pub lb: HaProxy,
    pub nodes: Vec<TestServer>,
    /// The nodes' management key (`JWT_AUTH_KEY`).
    pub key: &'static str,
    _redis: RedisServer,
}

impl Cluster {
    /// Three nodes over a fresh database and a Redis queue named after
    /// `name`, with `key` and the extra settings of `env`.
    pub fn start(name: &str, key: &'static str, env: &[(&str, &str)]) -> Cluster {
        let redis = RedisServer::start();
        let mq = redis.url(&format!("{name}-{}", std::process::id()));
        let db = super::postgres::fresh_database();
        let mut all = vec![
            ("DB_URL", db.as_str()),
            ("MQ_URL", mq.as_str()),
            ("JWT_AUTH_KEY", key),
        ];
        all.extend_from_slice(env);
        let nodes: Vec<TestServer> = (0..3).map(|_| TestServer::start_with_env(&all)).collect();
        let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
        let lb = HaProxy::start(&urls);
        Cluster {
            lb,
            nodes,
            key,
            _redis: redis,
        }
    }

    /// `POST` `body` to `path` (as `/v1/apps`) through the proxy, with a token.
    pub fn post(&self, path: &str, body: Value) -> Response {
        client()
            .post(format!("{}{path}", self.lb.url))
            .bearer_auth(token(self.key, 600))
            .body(body.to_string())
            .send()
            .unwrap()
    }

    /// The URL of a node other than `victim`.
    pub fn survivor(&self, victim: usize) -> String {
        let other = (victim + 1) % self.nodes.len();
        self.nodes[other].url.clone()
    }
}
