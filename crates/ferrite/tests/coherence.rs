//! Two nodes sharing a store: a change made through one reaches the other
//! through the change bus, over Redis when they share a Redis queue, over
//! PostgreSQL (LISTEN/NOTIFY) when they share only a PostgreSQL store. The
//! route cache's TTL is ten minutes, so only the bus can explain what node B
//! sees within seconds.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{client, create_route, eventually, node_containers, require_images, TestServer};
use serde_json::json;

/// Node B's answer to a call: (status, X-Version header).
fn call(server: &TestServer, path: &str) -> (u16, Option<String>) {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .body("{}")
        .send()
        .unwrap();
    let version = reply
        .headers()
        .get("x-version")
        .map(|v| v.to_str().unwrap().to_string());
    (reply.status().as_u16(), version)
}

fn patch(server: &TestServer, path: &str, body: serde_json::Value) {
    let reply = client()
        .patch(format!("{}/v1{path}", server.url))
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
}

#[test]
fn changes_through_one_node_reach_the_other_over_redis() {
    require_images(&["ferrite/hot-hello"]);
    let redis = RedisServer::start();
    let mq = redis.url(&format!("coherence-{}", std::process::id()));
    let env = [
        ("MQ_URL", mq.as_str()),
        ("FERRITE_ROUTE_CACHE_TTL_MS", "600000"),
    ];
    let a = TestServer::start_with_env(&env);
    let b = TestServer::start_sharing(&a, &env);
    changes_through_a_reach_b(&a, &b, "coh");
}

/// Without Redis: each node has its own embedded queue, and the store's
/// PostgreSQL carries the changes. The TTL is left at its default.
#[test]
fn changes_through_one_node_reach_the_other_over_postgres() {
    require_images(&["ferrite/hot-hello"]);
    let db = common::postgres::fresh_database();
    let queues = tempfile::tempdir().expect("temp dir");
    let node = |name: &str| {
        let mq = format!("sqlite://{}/{name}-queue.db", queues.path().display());
        TestServer::start_with_env(&[("DB_URL", db.as_str()), ("MQ_URL", mq.as_str())])
    };
    let (a, b) = (node("a"), node("b"));
    for server in [&a, &b] {
        let log = server.log();
        assert!(
            log.contains("route_cache_ttl=600s") && log.contains("change_bus=\"PostgreSQL\""),
            "a node on PostgreSQL without Redis caches routes for 10 min and hears changes over PostgreSQL:\n{log}"
        );
    }
    changes_through_a_reach_b(&a, &b, "cohpg");
}

/// Node B caches a route of `app`, then node A changes the route, the app,
/// and deletes the route: B serves each change within seconds, and its
/// containers of the old definitions go.
fn changes_through_a_reach_b(a: &TestServer, b: &TestServer, app: &str) {
    let hot = format!("/r/{app}/hot");
    create_route(
        a,
        app,
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http",
               "headers": {"X-Version": ["1"]}}),
    );
    assert_eq!(call(b, &hot), (200, Some("1".to_string())));
    let warm: Vec<String> = node_containers(&b.node_id)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(warm.len(), 1, "one hot container on node B");

    // A route update through A: B serves the new definition, and its hot
    // container of the old one goes without any call to B.
    let changed = Instant::now();
    patch(
        a,
        &format!("/apps/{app}/routes/hot"),
        json!({"route": {"headers": {"X-Version": ["2"]}}}),
    );
    let mut seen = Duration::ZERO;
    assert!(eventually(Duration::from_secs(10), || {
        seen = changed.elapsed();
        call(b, &hot).1.as_deref() == Some("2")
    }));
    println!(
        "route change through node A served by node B after {:.1} ms",
        seen.as_secs_f64() * 1000.0
    );
    assert!(node_containers(&b.node_id)
        .iter()
        .all(|(id, _, _)| !warm.contains(id)));

    // An app config change: B's containers of the app go too.
    let before: Vec<String> = node_containers(&b.node_id)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert!(!before.is_empty());
    patch(
        a,
        &format!("/apps/{app}"),
        json!({"app": {"config": {"GREETING": "hi"}}}),
    );
    assert!(eventually(Duration::from_secs(10), || {
        node_containers(&b.node_id)
            .iter()
            .all(|(id, _, _)| !before.contains(id))
    }));

    // A route deleted through A is gone on B.
    let reply = client()
        .delete(format!("{}/v1/apps/{app}/routes/hot", a.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(eventually(Duration::from_secs(10), || call(b, &hot).0 == 404));
}
