//! One autoscaling decision per service route across nodes: two Ferrite
//! containers (A and B) on the machine's real Swarm share one PostgreSQL
//! (the store) and one Redis (the queue, and what they share to scale:
//! each node's load, the autoscaler's lease, the holder's decisions), both
//! containers on the fixture's overlay network. The calls go round robin
//! over the two nodes, made by the test's own clients (no HAProxy: its
//! round robin is what the clients do, one node after the other).
//!
//! Shown: only one node holds the lease and both say which; the replicas
//! follow the sum of both nodes' load (what each node alone would ask is
//! half of it) and stay there; the holder killed, the other node takes the
//! lease within its time to live and the replicas stay. Printed: each
//! node's share and the total, and the seconds from the kill to the
//! takeover.

mod common;

use std::time::{Duration, Instant};

use common::load::{Load, Target};
use common::swarm_fixture::{Ferrite, Fixture};
use common::{eventually, require_images, succeed};
use serde_json::{json, Value};

/// In-flight calls per replica the route aims at.
const TARGET: f64 = 2.0;
/// Clients, each keeping one call of [`SLEEP`] in flight: 7 in all over
/// both nodes asks for ceil(7 / 2) = 4 replicas; the 3 or 4 of one node
/// alone would ask for 2. Seven lies in the middle of (6, 8], so the time
/// a client spends between two calls, and nodes measuring seconds that
/// do not quite line up, do not change the answer.
const CLIENTS: usize = 7;
/// What the load asks for.
const WANTED: u64 = 4;
const SLEEP: &str = "2";

/// The replicas Swarm is asked for, for the route's service.
fn swarm_replicas(fixture: &Fixture) -> u64 {
    let services = fixture.services();
    assert_eq!(services.len(), 1, "{services:?}");
    services[0].1
}

/// [`CLIENTS`] clients calling the route through `nodes` in turn.
fn load(nodes: &[&Ferrite]) -> Load {
    Load::start(vec![Target {
        urls: nodes
            .iter()
            .map(|n| format!("{}/r/svc/sleep", n.url))
            .collect(),
        clients: CLIENTS,
        pause: Duration::ZERO,
        body: SLEEP,
    }])
}

/// A node's `shared` view of the route.
fn shared(node: &Ferrite) -> Value {
    node.service_view("/sleep")["shared"].clone()
}

/// Swarm's replicas, looked at every half second for `long`.
fn replicas_over(fixture: &Fixture, long: Duration) -> Vec<u64> {
    let began = Instant::now();
    let mut seen = Vec::new();
    while began.elapsed() < long {
        seen.push(swarm_replicas(fixture));
        std::thread::sleep(Duration::from_millis(500));
    }
    seen
}

#[test]
fn two_nodes_scale_a_route_as_one_and_the_lease_moves_when_its_holder_dies() {
    require_images(&[
        "ferrite/ferrite",
        "ferrite/postgres",
        "ferrite/redis",
        "ferrite/sleep",
    ]);
    let fixture = Fixture::new("autoscale", &["ferrite/sleep-service"]);
    fixture.build_images(&["ferrite/sleep"]);
    fixture.create_network();
    let db = fixture.start_postgres();
    let mq = fixture.start_redis();
    let env = [("DB_URL", db.as_str()), ("MQ_URL", mq.as_str())];
    let names = [
        format!("{}-a", fixture.container),
        format!("{}-b", fixture.container),
    ];
    let nodes = [
        fixture.start_node(&names[0], &env),
        fixture.start_node(&names[1], &env),
    ];
    nodes[0].create_route(json!({
        "path": "/sleep", "image": fixture.images[0], "timeout": 30,
        "service": {"min_replicas": 1, "max_replicas": 8, "target_concurrency": TARGET as u32}
    }));

    // Load through both nodes, in turn: the replicas follow the sum.
    let began = Instant::now();
    let both = load(&[&nodes[0], &nodes[1]]);
    // Settled: the burst of the start (a panic, which holds its peak for
    // a stable window) is over.
    let scaled = eventually(Duration::from_secs(120), || {
        swarm_replicas(&fixture) == WANTED
            && nodes.iter().all(|n| {
                let view = n.service_view("/sleep");
                view["shared"]["nodes"].as_u64() == Some(2)
                    && view["autoscaler"]["panicking"] == false
            })
    });
    let views: Vec<Value> = nodes.iter().map(|n| n.service_view("/sleep")).collect();
    assert!(
        scaled,
        "not scaled to {WANTED} from both nodes' load: {views:?}"
    );
    eprintln!(
        "scaled to {} replicas in {:.1} s",
        swarm_replicas(&fixture),
        began.elapsed().as_secs_f64()
    );

    // One holder, and both nodes say which.
    let holder = views[0]["shared"]["holder"].clone();
    assert!(holder.is_string(), "{views:?}");
    assert_eq!(views[1]["shared"]["holder"], holder, "{views:?}");
    let deciding: Vec<usize> = (0..2)
        .filter(|&i| views[i]["shared"]["deciding"] == true)
        .collect();
    assert_eq!(deciding.len(), 1, "exactly one node decides: {views:?}");
    let (h, other) = (deciding[0], 1 - deciding[0]);
    assert_eq!(holder, names[h].as_str(), "{views:?}");
    for (view, name) in views.iter().zip(&names) {
        let s = &view["shared"];
        eprintln!(
            "{name}: its share {} in flight of {} in all; wants {} ({})",
            s["node_concurrency"],
            s["total_concurrency"],
            view["autoscaler"]["wanted"],
            view["autoscaler"]["reason"]
        );
    }

    // The load steady, the replicas stay where the sum put them (longer
    // than the stable window, FERRITE_AUTOSCALE_WINDOW=6s, and the lease).
    let steady = replicas_over(&fixture, Duration::from_secs(12));
    eprintln!("under both nodes' load: {steady:?}");
    assert!(steady.iter().all(|&r| r == WANTED), "{steady:?}");
    let view = nodes[other].service_view("/sleep");
    assert_eq!(
        view["replicas"].as_u64(),
        Some(WANTED),
        "the other node shows the holder's replicas: {view}"
    );
    assert_eq!(
        view["autoscaler"]["wanted"].as_u64(),
        Some(WANTED),
        "{view}"
    );

    // The load moves to the other node (and settles there), then the
    // holder dies: the other node takes the lease over within its time to
    // live.
    let records = both.stop();
    // Each node took about half the calls: its share alone, about half of
    // the clients in flight, would ask for fewer replicas than the sum.
    let answered = records.iter().filter(|r| r.status == Ok(200)).count();
    for node in &nodes {
        let through = records
            .iter()
            .filter(|r| r.status == Ok(200) && r.url.starts_with(&node.url))
            .count();
        let share = through as f64 / answered as f64;
        let alone = (share * CLIENTS as f64 / TARGET).ceil() as u64;
        eprintln!(
            "{}: {through} of {answered} calls; alone it would ask for {alone} replicas",
            node.url
        );
        assert!(
            alone < WANTED,
            "{through} of {answered} calls went through {}",
            node.url
        );
    }
    let survivor = load(&[&nodes[other]]);
    let moved = eventually(Duration::from_secs(120), || {
        let view = nodes[h].service_view("/sleep");
        let s = &view["shared"];
        s["node_concurrency"].as_f64() == Some(0.0)
            && s["total_concurrency"].as_f64().unwrap_or(0.0) > (WANTED - 1) as f64 * TARGET
            && view["autoscaler"]["wanted"].as_u64() == Some(WANTED)
            && view["autoscaler"]["panicking"] == false
            && swarm_replicas(&fixture) == WANTED
    });
    assert!(
        moved,
        "the load did not move: {}",
        nodes[h].service_view("/sleep")
    );
    let killed = Instant::now();
    succeed("docker", &["kill", "-s", "KILL", &names[h]]);
    let taken = eventually(Duration::from_secs(30), || {
        let s = shared(&nodes[other]);
        s["deciding"] == true && s["holder"] == names[other].as_str()
    });
    let took = killed.elapsed();
    assert!(
        taken,
        "the lease did not move: {}",
        nodes[other].service_view("/sleep")
    );
    eprintln!(
        "{} holds the lease {:.1} s after {} was killed",
        names[other],
        took.as_secs_f64(),
        names[h]
    );

    // The replicas stay through the takeover and after it, decided by the
    // new holder from the same load.
    let after = replicas_over(&fixture, Duration::from_secs(12));
    eprintln!("after the takeover: {after:?}");
    assert!(after.iter().all(|&r| r == WANTED), "{after:?}");
    let view = nodes[other].service_view("/sleep");
    assert_eq!(
        view["autoscaler"]["wanted"].as_u64(),
        Some(WANTED),
        "{view}"
    );
    assert_eq!(view["shared"]["nodes"].as_u64(), Some(1), "{view}");
    let records = survivor.stop();
    let failed: Vec<_> = records.iter().filter(|r| r.status != Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "calls through the survivor failed: {failed:?}"
    );
}
