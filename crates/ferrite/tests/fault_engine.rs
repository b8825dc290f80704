//! The Docker engine stops and comes back while calls run: Ferrite answers
//! 503 with `Retry-After` while it is away (fast: no hang, no 500), throws
//! away the containers it held, serves again within seconds of the engine
//! answering, and leaves none of its containers behind.
//!
//! The engine here is a private `dockerd` (common/dockerd.rs), so the
//! machine's engine is never stopped; its routes run with `network: none`
//! (the private engine has no bridge).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::call::post;
use common::dockerd::Dockerd;
use common::{
    client, client_with_timeout, create_route, create_routes, eventually, require_images,
    TestServer,
};
use serde_json::{json, Value};

/// One call of the load: when it was sent and answered, which route, its
/// status and whether it carried `Retry-After`.
#[derive(Debug, Clone)]
struct Seen {
    sent: Instant,
    took: Duration,
    route: &'static str,
    status: u16,
    retry_after: Option<String>,
}

fn health(server: &TestServer) -> Value {
    client()
        .get(format!("{}/health", server.url))
        .send()
        .and_then(|r| r.json())
        .unwrap_or(Value::Null)
}

#[test]
fn engine_restart_under_load() {
    require_images(&["ferrite/hello", "ferrite/chaos"]);
    let mut engine = Dockerd::start();
    engine.load("ferrite/hello:latest");
    engine.load("ferrite/chaos:latest");
    let host = engine.host();
    let server = TestServer::start_with_env(&[("DOCKER_HOST", &host)]);
    let node = server.node_id.clone();
    create_routes(
        &server,
        "fault",
        [
            json!({"path":"/cold","image":"ferrite/hello","confinement":{"network":"none"}}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http","max_concurrency":2,
               "confinement":{"network":"none"}}),
        ],
    );
    for route in ["/r/fault/cold", "/r/fault/hot"] {
        assert_eq!(post(&server, route), 200, "{route}");
    }

    // Steady load: two clients on each route, a call every 20 ms or so.
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = ["cold", "cold", "hot", "hot"]
        .into_iter()
        .map(|route| {
            let (seen, stop, url) = (seen.clone(), stop.clone(), server.url.clone());
            std::thread::spawn(move || {
                let http = client_with_timeout(Duration::from_secs(30));
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let reply = http
                        .post(format!("{url}/r/fault/{route}"))
                        .body("{}")
                        .send();
                    let (status, retry_after) = match &reply {
                        Ok(r) => (
                            r.status().as_u16(),
                            r.headers()
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap_or_default().to_string()),
                        ),
                        Err(_) => (0, None),
                    };
                    seen.lock().unwrap().push(Seen {
                        sent,
                        took: sent.elapsed(),
                        route,
                        status,
                        retry_after,
                    });
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    let before = health(&server);
    println!(
        "before the fault: {} containers started ahead, {} hot idle",
        before["prestarted_containers"], before["hot_containers_idle"]
    );

    let stopping = Instant::now();
    engine.stop();
    let stopped = Instant::now();
    println!(
        "engine stopped (SIGTERM to exit: {:.1} s)",
        stopped.duration_since(stopping).as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(5));
    let down_health = client()
        .get(format!("{}/health", server.url))
        .send()
        .unwrap();
    assert_eq!(
        down_health.status(),
        503,
        "/health while the engine is down"
    );
    assert!(down_health.headers().contains_key("retry-after"));
    let start_took = engine.start_again();
    let answering = Instant::now();
    println!(
        "engine started again and answering after {:.1} s",
        start_took.as_secs_f64()
    );

    // The first 200 of each route after the engine answers.
    let first_ok = |route: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.route == route && s.status == 200 && s.sent + s.took > answering)
            .map(|s| (s.sent + s.took).duration_since(answering))
            .min()
    };
    let served = eventually(Duration::from_secs(30), || {
        first_ok("cold").is_some() && first_ok("hot").is_some()
    });
    let (cold_back, hot_back) = (first_ok("cold"), first_ok("hot"));
    println!("first 200 after the engine answered: cold {cold_back:?}, hot {hot_back:?}");
    assert!(served, "served again within 30 s:\n{}", server.log());
    // Calls keep succeeding afterwards.
    let recovered = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();

    let count = |filter: &dyn Fn(&Seen) -> bool| seen.iter().filter(|s| filter(s)).count();
    let during = |s: &Seen| s.sent >= stopped && s.sent + s.took <= answering;
    let statuses = |filter: &dyn Fn(&Seen) -> bool| {
        let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
        for s in seen.iter().filter(|s| filter(s)) {
            *by_status.entry(s.status).or_default() += 1;
        }
        by_status
    };
    let slowest_during = seen
        .iter()
        .filter(|s| during(s))
        .map(|s| s.took)
        .max()
        .unwrap_or_default();
    println!(
        "calls: {} in all {:?}; while the engine was down: {:?}, slowest answer {:?}; \
         at the moment it stopped: {:?}; after it answered: {:?}",
        seen.len(),
        statuses(&|_| true),
        statuses(&during),
        slowest_during,
        statuses(&|s: &Seen| s.sent < stopped && s.sent + s.took > stopping),
        statuses(&|s: &Seen| s.sent > recovered),
    );
    assert!(count(&during) > 10, "calls were made during the outage");
    assert_eq!(
        count(&|s: &Seen| during(s) && !(s.status == 503 && s.retry_after.is_some())),
        0,
        "every call while the engine was down got 503 with Retry-After"
    );
    assert!(slowest_during < Duration::from_secs(10));
    let failures: Vec<&str> = server
        .log()
        .lines()
        .filter(|l| l.contains("status=500"))
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        count(&|s: &Seen| s.status == 500 || s.status == 0),
        0,
        "no 500 and no hang at any time: {failures:#?}"
    );
    let after = count(&|s: &Seen| s.sent > recovered);
    assert!(after > 10, "calls after recovery: {after}");
    assert_eq!(
        count(&|s: &Seen| s.sent > recovered && s.status != 200),
        0,
        "every call after recovery succeeded"
    );

    // Nothing dead or stale: only running containers (started ahead, hot).
    let clean = eventually(Duration::from_secs(15), || {
        engine
            .node_container_states(&node)
            .iter()
            .all(|state| state == "running")
    });
    let left = engine.node_container_states(&node);
    println!(
        "after recovery: {} containers of the node, all running: {clean}",
        left.len()
    );
    assert!(clean, "{left:?}");
    let log = server.log();
    for line in log
        .lines()
        .filter(|l| l.contains("Docker engine down") || l.contains("Docker engine back"))
    {
        println!("server: {line}");
    }
    assert!(log.contains("Docker engine down"), "{log}");
    assert!(log.contains("Docker engine back"), "{log}");

    drop(server);
    let leftovers = engine.node_container_states(&node);
    println!(
        "after the server stopped: {} containers of the node",
        leftovers.len()
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `docker inspect` of the one container of `route` on the machine's engine:
/// (whether it takes stdin, i.e. goes over the attach stream; its mounts).
fn transport(node: &str, route: &str) -> (bool, usize) {
    let id = common::succeed(
        "docker",
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=org.ferrite.node={node}"),
            "--filter",
            &format!("label=org.ferrite.route={route}"),
        ],
    );
    assert_eq!(id.lines().count(), 1, "one container of {route}: {id}");
    let seen = common::succeed(
        "docker",
        &[
            "inspect",
            "-f",
            "{{.Config.OpenStdin}} {{len .Mounts}}",
            &id,
        ],
    );
    let (stdin, mounts) = seen.split_once(' ').unwrap();
    (stdin == "true", mounts.parse().unwrap())
}

#[test]
fn one_failed_hot_socket_costs_one_container() {
    require_images(&["ferrite/chaos"]);
    let sockets = tempfile::tempdir().unwrap();
    let dir = sockets.path().to_path_buf();
    let server = TestServer::start_with_env(&[("FERRITE_HOT_SOCKET_DIR", dir.to_str().unwrap())]);
    for path in ["/victim", "/other"] {
        create_route(
            &server,
            "sockets",
            json!({"path":path,"image":"ferrite/chaos","format":"http",
                   "confinement":{"network":"none"}}),
        );
    }
    // The next container's socket cannot be made: as soon as its directory
    // appears, a directory takes the socket's name (the init cannot listen,
    // and the node's connect finds no socket there).
    let known: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let saboteur = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() && !known.contains(&path) {
                    return std::fs::create_dir_all(path.join("fn.sock").join("taken")).is_ok();
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    });
    let began = Instant::now();
    let status = post(&server, "/r/sockets/victim");
    let took = began.elapsed();
    assert!(saboteur.join().unwrap(), "the socket was taken first");
    println!("call whose container's socket failed: {status} in {took:?}");
    assert_eq!(status, 200, "{}", server.log());
    let log = server.log();
    let fallbacks = log
        .matches("a replacement container goes over the engine's attach stream")
        .count();
    println!("fallbacks to attach: {fallbacks}");
    assert_eq!(fallbacks, 1, "{log}");
    assert!(!log.contains("from now on"), "{log}");

    // The other route's new container still goes over a socket; the
    // victim's replacement over the attach stream.
    assert_eq!(post(&server, "/r/sockets/other"), 200);
    let (victim, other) = (
        transport(&server.node_id, "/victim"),
        transport(&server.node_id, "/other"),
    );
    println!("(takes stdin, mounts): victim {victim:?}, other {other:?}");
    assert_eq!(
        victim,
        (true, 1),
        "attach: stdin open, the init volume only"
    );
    assert_eq!(
        other,
        (false, 2),
        "socket: no stdin, the init volume and the socket"
    );
    // And both keep serving.
    for path in ["/r/sockets/victim", "/r/sockets/other"] {
        assert_eq!(post(&server, path), 200, "{path}");
    }
}
