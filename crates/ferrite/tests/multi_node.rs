//! Three Ferrite nodes behind a real HAProxy, sharing PostgreSQL and
//! Redis: the walk-through through the load balancer, then a burst of sync
//! and async calls during which the node serving the hot route is killed.
//! Sync calls fail only if they were in flight on that node; every accepted
//! async call completes.

mod common;

use std::time::{Duration, Instant};

use common::calls::wait_settled;
use common::cluster::Cluster;
use common::load::Load;
use common::{require_images, token};
use serde_json::json;

const SYNC_CLIENTS: usize = 4;
const HOT_MAX_CONCURRENCY: usize = 2;

/// The nodes' management key.
const KEY: &str = "multi-node-management-key-of-32-bytes";

#[test]
fn a_node_dies_under_load_behind_haproxy() {
    require_images(&["ferrite/hello", "ferrite/hot-hello"]);
    let mut cluster = Cluster::start("multinode", KEY, &[("FERRITE_ASYNC_LEASE_SECS", "5")]);

    // The walk-through, through the load balancer.
    let reply = cluster.post("/v1/apps", json!({"app": {"name": "myapp"}}));
    assert_eq!(reply.status(), 200);
    let reply = cluster.post(
        "/v1/apps/myapp/routes",
        json!({"route": {"path": "/hello", "image": "ferrite/hello"}}),
    );
    assert_eq!(reply.status(), 200);
    let reply = cluster.post("/r/myapp/hello", json!({"name": "Johnny"}));
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap().trim(), "Hello Johnny!");

    for route in [
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http",
               "max_concurrency": HOT_MAX_CONCURRENCY}),
        json!({"path": "/later", "image": "ferrite/hot-hello", "format": "http",
               "type": "async", "max_concurrency": 2}),
    ] {
        let reply = cluster.post("/v1/apps/myapp/routes", json!({ "route": route }));
        assert_eq!(reply.status(), 200);
    }
    let reply = cluster.post("/r/myapp/hot", json!({}));
    assert_eq!(reply.status(), 200);
    // The URI hash sends every call of /r/myapp/hot to one node: that one dies.
    let victim = cluster.node_running("/hot");

    let load = Load::start(vec![
        cluster.target("/r/myapp/hot", SYNC_CLIENTS, Duration::ZERO, "{}"),
        cluster.target("/r/myapp/later", 1, Duration::from_millis(10), "{}"),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let ok_before_kill = load.count(0, 200);
    let killed_at = Instant::now();
    cluster.nodes[victim].kill();
    std::thread::sleep(Duration::from_secs(4));
    let records = load.stop();
    // The dead node comes back to remove what it left on the engine (before
    // any assertion, so a failure leaves nothing either).
    cluster.nodes[victim].restart();
    let sync_ok = records
        .iter()
        .filter(|r| r.target == 0 && r.status == Ok(200))
        .count();
    // When each failed sync call ended, and why.
    let failed: Vec<(Instant, String)> = records
        .iter()
        .filter(|r| r.target == 0 && r.status != Ok(200))
        .map(|r| (r.at + r.took, format!("{:?}", r.status)))
        .collect();
    let accepted: Vec<String> = records
        .iter()
        .filter(|r| r.target == 1)
        .filter_map(|r| r.call_id.clone())
        .collect();
    println!(
        "sync: {sync_ok} ok ({ok_before_kill} before the kill), {} failed {:?}; async: {} accepted",
        failed.len(),
        failed
            .iter()
            .map(|(at, what)| format!(
                "{what} at +{} ms",
                at.saturating_duration_since(killed_at).as_millis()
            ))
            .collect::<Vec<_>>(),
        accepted.len()
    );
    assert!(
        sync_ok > ok_before_kill,
        "no sync call succeeded after the kill"
    );
    // Only calls that reached the node before the balancer saw it die: the
    // one each client had in flight, and at most one more per client sent
    // while the process was exiting (its kernel still accepted connections)
    // and the health check had not failed yet. After that, none.
    assert!(
        failed.len() <= 2 * SYNC_CLIENTS,
        "{} sync calls failed: {failed:?}",
        failed.len()
    );
    let late: Vec<_> = failed
        .iter()
        .filter(|(at, _)| at.saturating_duration_since(killed_at) > Duration::from_secs(2))
        .collect();
    assert!(
        late.is_empty(),
        "sync calls failed after the failover: {late:?}"
    );

    let bearer = token(KEY, 600);
    let survivor = cluster.survivor(victim);
    let settled = wait_settled(
        &survivor,
        "myapp",
        Some(&bearer),
        &accepted,
        Duration::from_secs(120),
    );
    println!("async: {settled}");
    assert_eq!(
        settled.completed, settled.accepted,
        "accepted async calls did not succeed: {settled}"
    );
}
