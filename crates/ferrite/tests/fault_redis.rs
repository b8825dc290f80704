//! Redis faults under steady load: two nodes share a private Redis (async
//! queue and change bus) and a PostgreSQL database, clients call a sync and
//! an async route through both, and Redis is (a) killed and restarted, or
//! (b) hung with SIGSTOP and resumed. During the fault a route is changed
//! through node A.
//!
//! What must hold, printed with the figures seen: sync calls all answer
//! 200; every async enqueue is answered (202 or 503) within a bounded time;
//! every accepted (202) call runs (lost = 0, duplicates counted); node B
//! serves the route as changed during the fault, with containers of the new
//! definition. The route cache TTL is ten minutes, so only the change bus
//! (reconnected) can explain what node B serves; the sync route's
//! idle timeout is ten minutes too, so only node B reading the changed
//! route can explain its old containers going.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::calls::wait_settled;
use common::containers::route_containers;
use common::load::{Load, Record, Target};
use common::redis::RedisServer;
use common::{client, create_routes, eventually, require_images, TestServer};
use serde_json::json;

/// Nodes' default FERRITE_REDIS_TIMEOUT: the wait a Redis fault may cost.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

enum Fault {
    /// SIGKILL, down this long, then started again on its data.
    Restart(Duration),
    /// SIGSTOP for this long, then SIGCONT.
    Hang(Duration),
}

#[test]
fn redis_restart_under_load() {
    under_load(Fault::Restart(Duration::from_secs(4)), "restart");
}

#[test]
fn redis_hung_under_load() {
    under_load(Fault::Hang(Duration::from_secs(8)), "hang");
}

/// The `X-Version` header `node` answers `/r/{app}/sync` with.
fn version(node: &TestServer, app: &str) -> Option<String> {
    let reply = client()
        .post(format!("{}/r/{app}/sync", node.url))
        .body("{}")
        .send()
        .ok()?;
    reply
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Change the sync route's `X-Version` through `node`, and its config (so
/// its containers change too); how long it took.
fn change_version(node: &TestServer, app: &str, to: &str) -> Duration {
    let began = Instant::now();
    let reply = client()
        .patch(format!("{}/v1/apps/{app}/routes/sync", node.url))
        .body(
            json!({"route": {"headers": {"X-Version": [to]}, "config": {"VERSION": to}}})
                .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    began.elapsed()
}

fn under_load(fault: Fault, name: &str) {
    require_images(&["ferrite/hot-hello"]);
    let mut redis = RedisServer::start();
    let mq = redis.url(&format!("fault-redis-{name}-{}", std::process::id()));
    let db = common::postgres::fresh_database();
    let env = [
        ("DB_URL", db.as_str()),
        ("MQ_URL", mq.as_str()),
        ("FERRITE_ROUTE_CACHE_TTL_MS", "600000"),
    ];
    let a = TestServer::start_with_env(&env);
    let b = TestServer::start_with_env(&env);
    let app = format!("fault{name}");
    // The functions need no network: without one their containers do not
    // depend on the engine's default bridge, which is not under test here.
    create_routes(
        &a,
        &app,
        [
            json!({"path": "/sync", "image": "ferrite/hot-hello", "confinement": {"network": "none"}, "format": "http",
               "headers": {"X-Version": ["1"]}, "idle_timeout": 600}),
            json!({"path": "/async", "image": "ferrite/hot-hello", "confinement": {"network": "none"}, "format": "http",
               "type": "async", "max_concurrency": 4}),
        ],
    );
    assert_eq!(version(&b, &app).as_deref(), Some("1"));

    let both = |path: &str| -> Vec<String> {
        [&a, &b]
            .iter()
            .map(|n| format!("{}/r/{app}{path}", n.url))
            .collect()
    };
    let load = Load::start(vec![
        Target {
            urls: both("/sync"),
            clients: 2,
            pause: Duration::from_millis(20),
            body: "{}",
        },
        Target {
            urls: both("/async"),
            clients: 2,
            pause: Duration::from_millis(20),
            body: "{}",
        },
    ]);
    // Both nodes serve the sync route steadily before the fault (on a busy
    // machine the first containers may take long to start).
    let warm = common::eventually(Duration::from_secs(60), || {
        load.count(0, 200) >= 40 && !route_containers(&b.node_id, "/sync").is_empty()
    });
    assert!(
        warm,
        "the nodes did not serve the sync route before the fault: {} answered 200; node B's containers: {:?}",
        load.count(0, 200),
        common::node_containers(&b.node_id)
    );
    let steady = Instant::now();
    sleep(Duration::from_secs(2));
    let before_b = route_containers(&b.node_id, "/sync");

    // The fault, with a route change through node A in its middle.
    let fault_began = Instant::now();
    let lasts = match fault {
        Fault::Restart(down) => {
            redis.kill();
            down
        }
        Fault::Hang(hung) => {
            redis.pause();
            hung
        }
    };
    sleep(Duration::from_secs(1));
    let change_took = change_version(&a, &app, "2");
    sleep(lasts.saturating_sub(fault_began.elapsed()));
    match fault {
        Fault::Restart(_) => redis.restart(),
        Fault::Hang(_) => redis.resume(),
    }
    let fault_ended = Instant::now();
    let fault_secs = fault_ended.duration_since(fault_began).as_secs_f64();

    // Node B catches up: the new definition, in new containers.
    let mut caught_up = Duration::ZERO;
    let served = eventually(Duration::from_secs(30), || {
        let served = version(&b, &app);
        caught_up = fault_ended.elapsed();
        served.as_deref() == Some("2")
    });
    assert!(
        served,
        "node B still serves the route as it was before the fault"
    );
    let served_at = Instant::now();
    let replaced = eventually(Duration::from_secs(30), || {
        route_containers(&b.node_id, "/sync")
            .iter()
            .all(|id| !before_b.contains(id))
    });
    let replaced_after = served_at.elapsed();
    sleep(Duration::from_secs(3));
    let records = load.stop();

    let in_fault = |r: &Record| r.at + r.took >= fault_began && r.at <= fault_ended;
    let (sync, enqueues): (Vec<&Record>, Vec<&Record>) =
        records.iter().partition(|r| r.target == 0);
    let warming = sync.iter().filter(|r| r.at < steady).count();
    let sync: Vec<&Record> = sync.into_iter().filter(|r| r.at >= steady).collect();
    let sync_ok = sync.iter().filter(|r| r.status == Ok(200)).count();
    let sync_bad: Vec<_> = sync.iter().filter(|r| r.status != Ok(200)).collect();
    let slowest_sync = sync.iter().max_by_key(|r| r.took);
    let from_fault = |r: &Record| match r.at.checked_duration_since(fault_began) {
        Some(after) => after.as_secs_f64(),
        None => -(fault_began - r.at).as_secs_f64(),
    };
    let accepted: Vec<String> = enqueues.iter().filter_map(|r| r.call_id.clone()).collect();
    let refused: Vec<&&Record> = enqueues.iter().filter(|r| r.status == Ok(503)).collect();
    let with_retry_after = refused.iter().filter(|r| r.retry_after.is_some()).count();
    let other: Vec<_> = enqueues
        .iter()
        .filter(|r| !matches!(r.status, Ok(202 | 503)))
        .collect();
    let slowest_enqueue = enqueues.iter().map(|r| r.took).max().unwrap_or_default();
    let enqueued_in_fault = enqueues.iter().filter(|r| in_fault(r)).count();
    let settled = wait_settled(&a.url, &app, None, &accepted, Duration::from_secs(120));

    println!(
        "redis {name}: fault {fault_secs:.1} s; route change through node A took {:.2} s during it; \
         node B served it {:.2} s after Redis was back; B's old containers replaced: {replaced} \
         ({:.2} s after that)",
        change_took.as_secs_f64(),
        caught_up.as_secs_f64(),
        replaced_after.as_secs_f64()
    );
    println!(
        "sync (after {warming} calls while the nodes warmed up): {sync_ok} of {} answered 200; \
         not 200: {:?}",
        sync.len(),
        sync_bad
            .iter()
            .take(5)
            .map(|r| (&r.status, &r.detail))
            .collect::<Vec<_>>()
    );
    if let Some(r) = slowest_sync {
        println!(
            "slowest sync call: {:.2} s, through node {}, sent {:+.2} s from the fault's start",
            r.took.as_secs_f64(),
            if r.url.starts_with(&a.url) { "A" } else { "B" },
            from_fault(r)
        );
    }
    println!(
        "async enqueues: {} answered, {enqueued_in_fault} during the fault: {} accepted (202), \
         {} refused (503, {with_retry_after} with Retry-After), {} otherwise; slowest answer {:.2} s",
        enqueues.len(),
        accepted.len(),
        refused.len(),
        other.len(),
        slowest_enqueue.as_secs_f64()
    );
    println!("{settled}");

    assert!(sync_bad.is_empty(), "sync calls failed: {sync_bad:?}");
    assert!(other.is_empty(), "enqueues neither 202 nor 503: {other:?}");
    assert!(
        slowest_enqueue < REDIS_TIMEOUT * 3,
        "an enqueue took {slowest_enqueue:?}"
    );
    assert!(
        !refused.is_empty(),
        "no enqueue was refused: the fault did not reach the queue"
    );
    assert_eq!(settled.lost, 0, "accepted async calls lost");
    assert_eq!(settled.completed, settled.accepted, "accepted calls failed");
    assert!(replaced, "node B kept containers of the old definition");
}
