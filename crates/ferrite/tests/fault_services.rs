//! A node killed (SIGKILL) while it scales a route's Swarm service: the
//! service keeps its replicas (they belong to Swarm, not to the node), and a
//! surviving node that shares the store takes the service up at the first
//! call of the route it serves and scales it from then on.
//!
//! Two Ferrite containers (A and B) on the machine's real Swarm share one
//! PostgreSQL (ferrite/postgres, a container on the same overlay network);
//! the function is the sleep example as a service image. Printed: the
//! replicas under load through A, right after A's death and once B runs
//! it; the seconds until B serves and manages it, and until B scaled it
//! back down to its minimum once the load stopped.

mod common;

use std::time::{Duration, Instant};

use common::load::{Load, Record, Target};
use common::swarm_fixture::{Ferrite, Fixture};
use common::{eventually, require_images, succeed};
use serde_json::json;

/// The route's bounds: a minimum that stays, a maximum the load reaches.
const MIN: u64 = 1;
const MAX: u64 = 3;
/// More clients than the maximum, each keeping one 1 s call in flight: a
/// target of one call per replica asks for the maximum.
const CLIENTS: usize = 4;

/// Clients calling `/sleep` (1 s) through `node` until stopped.
fn load_through(node: &Ferrite) -> Load {
    Load::start(vec![Target {
        urls: vec![format!("{}/r/svc/sleep", node.url)],
        clients: CLIENTS,
        pause: Duration::ZERO,
        body: "1",
    }])
}

/// (answered 200, failed) of calls.
fn outcome(records: &[Record]) -> (usize, usize) {
    let ok = records.iter().filter(|r| r.status == Ok(200)).count();
    (ok, records.len() - ok)
}

/// The replicas Swarm is asked for, for the route's service.
fn swarm_replicas(fixture: &Fixture) -> u64 {
    let services = fixture.services();
    assert_eq!(services.len(), 1, "{services:?}");
    services[0].1
}

#[test]
fn a_service_survives_the_node_that_scaled_it() {
    require_images(&["ferrite/ferrite", "ferrite/postgres", "ferrite/sleep"]);
    let fixture = Fixture::new("fault-svc", &["ferrite/sleep-service"]);
    fixture.build_images(&["ferrite/sleep"]);
    fixture.create_network();
    let db = fixture.start_postgres();
    let env = [("DB_URL", db.as_str())];
    let a_name = format!("{}-a", fixture.container);
    let a = fixture.start_node(&a_name, &env);
    let b = fixture.start_node(&format!("{}-b", fixture.container), &env);

    // The route, through A; B runs it only once it serves a call of it.
    a.create_route(
        json!({"path": "/sleep", "image": fixture.images[0], "timeout": 30,
        "service": {"min_replicas": MIN, "max_replicas": MAX, "target_concurrency": 1}}),
    );
    assert_eq!(swarm_replicas(&fixture), MIN);

    // Load through A until A has scaled the service up to its maximum and
    // answered calls through it.
    let began = Instant::now();
    let load = load_through(&a);
    let scaled = eventually(Duration::from_secs(90), || {
        a.service_view("/sleep")["running"].as_u64() == Some(MAX) && load.count(0, 200) >= CLIENTS
    });
    let view = a.service_view("/sleep");
    assert!(scaled, "A did not scale to {MAX} running: {view}");
    let before = swarm_replicas(&fixture);
    eprintln!(
        "A scaled the service to {before} replicas in {:.1} s under {CLIENTS} clients ({})",
        began.elapsed().as_secs_f64(),
        view["last_scaling"]["reason"]
    );
    assert_eq!(before, MAX);
    assert_eq!(
        b.service_view("/sleep"),
        serde_json::Value::Null,
        "B manages the service before serving a call of it"
    );

    // A dies under load. Swarm keeps the service as it was.
    let killed = Instant::now();
    succeed("docker", &["kill", "-s", "KILL", &a_name]);
    let records = load.stop();
    let (in_flight, refused): (Vec<Record>, Vec<Record>) =
        records.into_iter().partition(|r| r.at < killed);
    let (ok, failed) = outcome(&in_flight);
    eprintln!(
        "through A: {ok} calls answered, {failed} failed (in flight at the kill), {} sent after it",
        refused.len()
    );
    assert!(ok > 0);
    let after_kill = swarm_replicas(&fixture);
    eprintln!("right after the kill: {after_kill} replicas");
    assert_eq!(after_kill, before, "Swarm changed the replicas");

    // The load moves to B, which takes the service up at its first call.
    let moved = Instant::now();
    let load = load_through(&b);
    let adopted = eventually(Duration::from_secs(30), || {
        b.service_view("/sleep")["replicas"].as_u64() == Some(before)
    });
    let (to_adoption, from_load) = (killed.elapsed(), moved.elapsed());
    assert!(
        adopted,
        "B did not take the service up: {}",
        b.service_view("/sleep")
    );
    eprintln!(
        "B manages the service at {before} replicas {:.1} s after the kill, {:.1} s after the load moved to it",
        to_adoption.as_secs_f64(),
        from_load.as_secs_f64()
    );
    // B's autoscaler, under the same load, keeps the replicas for a whole
    // stable window (FERRITE_AUTOSCALE_WINDOW=6s) and more.
    std::thread::sleep(Duration::from_secs(8));
    let view = b.service_view("/sleep");
    let under_b = swarm_replicas(&fixture);
    eprintln!(
        "under load through B: {under_b} replicas, B wants {} ({})",
        view["autoscaler"]["wanted"], view["autoscaler"]["reason"]
    );
    assert_eq!(under_b, before, "{view}");
    assert_eq!(
        view["autoscaler"]["wanted"].as_u64(),
        Some(before),
        "{view}"
    );
    let records = load.stop();
    let (ok, failed) = outcome(&records);
    let first = records
        .iter()
        .filter(|r| r.status == Ok(200))
        .map(|r| (r.at + r.took).saturating_duration_since(killed))
        .min();
    eprintln!(
        "through B: {ok} calls answered, {failed} failed; the first answered {:.1} s after the kill",
        first.unwrap_or_default().as_secs_f64()
    );
    assert_eq!(failed, 0, "calls through B failed");
    assert!(ok > 0, "B answered no call of the service");
    // Idle: B scales the service down to its minimum.
    let stopped = Instant::now();
    let down = eventually(Duration::from_secs(90), || {
        swarm_replicas(&fixture) == MIN && b.service_view("/sleep")["running"].as_u64() == Some(MIN)
    });
    let view = b.service_view("/sleep");
    assert!(down, "B did not scale the service down to {MIN}: {view}");
    eprintln!(
        "B scaled the service down to {MIN} replica(s) {:.1} s after the load stopped ({})",
        stopped.elapsed().as_secs_f64(),
        view["last_scaling"]["reason"]
    );
    let (status, body, _) = b.call("/sleep", "0");
    assert_eq!((status, body.as_str()), (200, "slept\n"));
}
