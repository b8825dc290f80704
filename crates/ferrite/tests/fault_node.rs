//! A node killed (SIGKILL) under load behind HAProxy: three nodes share
//! PostgreSQL and a Redis queue; clients call a hot sync route and enqueue
//! slow async calls through the proxy; the node serving the sync route
//! dies while it runs async calls too.
//!
//! What must hold, printed with the figures seen: the others take its
//! traffic (sync failures only in a short window after the kill); the async
//! calls it had taken run again on another node once their lease runs out
//! (lost = 0, duplicates counted), and how long that took.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::calls::wait_settled;
use common::cluster::Cluster;
use common::containers::route_containers;
use common::load::Load;
use common::{require_images, token};
use ferrite_model::Millis;
use serde_json::{json, Value};

/// The nodes' management key.
const KEY: &str = "fault-node-management-key-of-32-bytes";
/// Async calls at once per node: low, so that every node (the one that
/// dies included) holds some while the load runs.
const ASYNC_CONCURRENCY: &str = "2";
/// The nodes' default lease (FERRITE_ASYNC_LEASE_SECS).
const LEASE: Duration = Duration::from_secs(30);
const SYNC_CLIENTS: usize = 4;

#[test]
fn a_killed_node_is_taken_over() {
    require_images(&["ferrite/hot-hello", "ferrite/sleep"]);
    let mut cluster = Cluster::start(
        "fault-node",
        KEY,
        &[("FERRITE_ASYNC_CONCURRENCY", ASYNC_CONCURRENCY)],
    );
    let post = |path: &str, body: Value| cluster.post(path, body).status().as_u16();

    // The functions need no network: without one their containers do not
    // depend on the engine's default bridge, which is not under test here.
    for route in [
        json!({"path": "/hot", "image": "ferrite/hot-hello", "confinement": {"network": "none"}, "format": "http",
               "max_concurrency": 2}),
        json!({"path": "/slow", "image": "ferrite/sleep", "confinement": {"network": "none"}, "type": "async", "timeout": 60}),
    ] {
        assert_eq!(
            post("/v1/apps/takeover/routes", json!({ "route": route })),
            200
        );
    }
    assert_eq!(post("/r/takeover/hot", json!({})), 200);
    // The URI hash sends every call of /r/takeover/hot to one node: that one dies.
    let victim = cluster.node_running("/hot");

    let load = Load::start(vec![
        cluster.target("/r/takeover/hot", SYNC_CLIENTS, Duration::ZERO, "{}"),
        cluster.target("/r/takeover/slow", 1, Duration::from_millis(500), "2"),
    ]);
    // Until the node that dies runs async calls too.
    let holds = common::eventually(Duration::from_secs(30), || {
        !route_containers(&cluster.nodes[victim].node_id, "/slow").is_empty()
    });
    assert!(holds, "the node to kill never ran an async call");
    sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    let killed_ms = Millis::now().0;
    cluster.nodes[victim].kill();
    // Another node answers the route (a container to start first), then
    // serves it for a while.
    let ok_before = load.count(0, 200);
    let taken_over = common::eventually(Duration::from_secs(60), || {
        load.count(0, 200) > ok_before + SYNC_CLIENTS
    });
    sleep(Duration::from_secs(3));
    let records = load.stop();

    let sync: Vec<_> = records.iter().filter(|r| r.target == 0).collect();
    let after = |at: Instant| at.saturating_duration_since(killed_at).as_secs_f64();
    let failed: Vec<_> = sync.iter().filter(|r| r.status != Ok(200)).collect();
    let served_after = sync
        .iter()
        .filter(|r| r.status == Ok(200) && r.at > killed_at)
        .count();
    // The first answer of another node: the takeover of the route.
    let first_served = sync
        .iter()
        .filter(|r| r.status == Ok(200) && r.at > killed_at)
        .map(|r| after(r.at + r.took))
        .fold(f64::MAX, f64::min);
    let last_failure = failed
        .iter()
        .map(|r| after(r.at + r.took))
        .fold(0.0, f64::max);
    let accepted: Vec<String> = records
        .iter()
        .filter(|r| r.target == 1)
        .filter_map(|r| r.call_id.clone())
        .collect();
    let enqueue_failed = records
        .iter()
        .filter(|r| r.target == 1 && r.status != Ok(202))
        .count();

    let survivor = cluster.survivor(victim);
    let bearer = token(KEY, 600);
    let settled = wait_settled(&survivor, "takeover", Some(&bearer), &accepted, LEASE * 4);
    // The dead node comes back to remove what it left on the engine (before
    // any assertion, so a failure leaves nothing either).
    cluster.nodes[victim].restart();

    // Calls run again after the kill: those the dead node held. Their new
    // start, from the kill, is how long their lease took to run out.
    let rerun_after: Vec<f64> = settled
        .records
        .values()
        .filter(|c| c["attempts"].as_u64().unwrap_or(0) > 1)
        .filter_map(|c| Millis::parse_rfc3339(c["started_at"].as_str()?))
        .map(|started| (started.0 - killed_ms) as f64 / 1000.0)
        .collect();
    let (first_rerun, last_rerun) = rerun_after
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), s| (lo.min(*s), hi.max(*s)));

    println!(
        "sync through HAProxy: {} calls, {} failed, the last failure ended {last_failure:.2} s after the kill; \
         {served_after} answered 200 after it, the first {first_served:.2} s after the kill; failures: {:?}",
        sync.len(),
        failed.len(),
        failed
            .iter()
            .take(8)
            .map(|r| format!("{:?} at +{:.2} s: {:?}", r.status, after(r.at), r.detail))
            .collect::<Vec<_>>()
    );
    println!("async: {enqueue_failed} enqueues not accepted; {settled}");
    println!(
        "{} calls held by the dead node ran again on another node, {first_rerun:.1} to {last_rerun:.1} s \
         after the kill (lease {LEASE:?})",
        rerun_after.len()
    );

    assert!(
        taken_over && served_after > 0,
        "no other node served the route within a minute"
    );
    // Failures only in a short window: calls running on the node, and those
    // the balancer sent before it took the node out.
    assert!(
        last_failure < 5.0,
        "sync calls failed {last_failure:.1} s after the kill"
    );
    assert_eq!(settled.lost, 0, "accepted async calls lost");
    assert_eq!(settled.completed, settled.accepted, "accepted calls failed");
    assert!(
        !rerun_after.is_empty(),
        "no call was run again: the dead node held none"
    );
    assert!(
        last_rerun < (LEASE + Duration::from_secs(15)).as_secs_f64(),
        "a call held by the dead node ran again only after {last_rerun:.1} s"
    );
}
