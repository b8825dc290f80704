//! Three Ferrite nodes behind a real HAProxy, sharing PostgreSQL and a Redis
//! queue, as in production: what the node-failure tests start from. The
//! nodes have a management key, so `/v1` through the proxy (a remote caller)
//! needs a token.

use std::time::Duration;

use reqwest::blocking::Response;
use serde_json::Value;

use super::containers::route_containers;
use super::haproxy::HaProxy;
use super::load::Target;
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

    /// The index of the node that has run a container for the route at
    /// `path` (the proxy's URI hash sends all of a route's calls to one node).
    pub fn node_running(&self, path: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| !route_containers(&n.node_id, path).is_empty())
            .unwrap_or_else(|| panic!("no node runs the route {path}"))
    }

    /// Load on `call` (`/r/app/path`) through the proxy: `clients` clients
    /// sending `body`, `pause` apart.
    pub fn target(
        &self,
        call: &str,
        clients: usize,
        pause: Duration,
        body: &'static str,
    ) -> Target {
        Target {
            urls: vec![format!("{}{call}", self.lb.url)],
            clients,
            pause,
            body,
        }
    }

    /// The URL of a node other than `victim`.
    pub fn survivor(&self, victim: usize) -> String {
        let other = (victim + 1) % self.nodes.len();
        self.nodes[other].url.clone()
    }
}
