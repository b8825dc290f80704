//! Three Ferrite nodes behind a real HAProxy, sharing PostgreSQL and
//! Redis: the walk-through through the load balancer, then a burst of sync
//! and async calls during which the node serving the hot route is killed.
//! Sync calls fail only if they were in flight on that node; every accepted
//! async call completes.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::haproxy::HaProxy;
use common::redis::RedisServer;
use common::{client, eventually, require_images, token, TestServer};
use serde_json::{json, Value};

const SYNC_CLIENTS: usize = 4;
const HOT_MAX_CONCURRENCY: usize = 2;

/// Hot containers of `node` on the engine.
fn hot_containers(node: &str) -> usize {
    let output = Command::new("docker")
        .args(["ps", "--filter"])
        .arg(format!("label=org.ferrite.node={node}"))
        .args(["--format", "{{.Names}}"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|name| name.contains("-hot-"))
        .count()
}

/// The nodes' management key: HAProxy says whom it forwards for, so /v1
/// through it is remote and needs a token, as in production.
const KEY: &str = "multi-node-management-key-of-32-bytes";

fn post(url: &str, body: Value) -> reqwest::blocking::Response {
    client()
        .post(url)
        .bearer_auth(token(KEY, 600))
        .body(body.to_string())
        .send()
        .unwrap()
}

#[test]
fn a_node_dies_under_load_behind_haproxy() {
    require_images(&["ferrite/hello", "ferrite/hot-hello"]);
    let redis = RedisServer::start();
    let mq = redis.url(&format!("multinode-{}", std::process::id()));
    let db = common::postgres::fresh_database();
    let env = [
        ("DB_URL", db.as_str()),
        ("MQ_URL", mq.as_str()),
        ("FERRITE_ASYNC_LEASE_SECS", "5"),
        ("JWT_AUTH_KEY", KEY),
    ];
    let mut nodes: Vec<TestServer> = (0..3).map(|_| TestServer::start_with_env(&env)).collect();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let lb = HaProxy::start(&urls);

    // The walk-through, through the load balancer.
    let reply = post(
        &format!("{}/v1/apps", lb.url),
        json!({"app": {"name": "myapp"}}),
    );
    assert_eq!(reply.status(), 200);
    let reply = post(
        &format!("{}/v1/apps/myapp/routes", lb.url),
        json!({"route": {"path": "/hello", "image": "ferrite/hello"}}),
    );
    assert_eq!(reply.status(), 200);
    let reply = post(
        &format!("{}/r/myapp/hello", lb.url),
        json!({"name": "Johnny"}),
    );
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap().trim(), "Hello Johnny!");

    for route in [
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http",
               "max_concurrency": HOT_MAX_CONCURRENCY}),
        json!({"path": "/later", "image": "ferrite/hot-hello", "format": "http",
               "type": "async", "max_concurrency": 2}),
    ] {
        let reply = post(
            &format!("{}/v1/apps/myapp/routes", lb.url),
            json!({ "route": route }),
        );
        assert_eq!(reply.status(), 200);
    }
    let reply = post(&format!("{}/r/myapp/hot", lb.url), json!({}));
    assert_eq!(reply.status(), 200);
    // The URI hash sends every call of /r/myapp/hot to one node: that one dies.
    let victim = nodes
        .iter()
        .position(|n| hot_containers(&n.node_id) > 0)
        .expect("a node runs the hot route");

    let stop = Arc::new(AtomicBool::new(false));
    let sync_ok = Arc::new(AtomicUsize::new(0));
    let sync_failed = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for _ in 0..SYNC_CLIENTS {
        let (url, stop, ok, failed) = (
            format!("{}/r/myapp/hot", lb.url),
            stop.clone(),
            sync_ok.clone(),
            sync_failed.clone(),
        );
        threads.push(std::thread::spawn(move || {
            // A connection per call: a pooled connection that the proxy
            // closes while a request is being written would count a failure
            // of the client, not of the nodes.
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            while !stop.load(Ordering::SeqCst) {
                match client.post(&url).body("{}").send() {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed
                        .lock()
                        .unwrap()
                        .push((Instant::now(), r.status().to_string())),
                    Err(e) => failed
                        .lock()
                        .unwrap()
                        .push((Instant::now(), format!("{e:?}"))),
                }
            }
        }));
    }
    {
        let (url, stop, accepted) = (
            format!("{}/r/myapp/later", lb.url),
            stop.clone(),
            accepted.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let client = client();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(r) = client.post(&url).body("{}").send() {
                    if r.status() == 202 {
                        let json: Value = r.json().unwrap();
                        let id = json["call_id"].as_str().unwrap().to_string();
                        accepted.lock().unwrap().push(id);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    let ok_before_kill = sync_ok.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    nodes[victim].kill();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().unwrap();
    }
    // The dead node comes back to remove what it left on the engine (before
    // any assertion, so a failure leaves nothing either).
    nodes[victim].restart();
    let failed = sync_failed.lock().unwrap().clone();
    let accepted = accepted.lock().unwrap().clone();
    println!(
        "sync: {} ok ({ok_before_kill} before the kill), {} failed {:?}; async: {} accepted",
        sync_ok.load(Ordering::SeqCst),
        failed.len(),
        failed
            .iter()
            .map(|(at, what)| format!("{what} at +{} ms", at.duration_since(killed_at).as_millis()))
            .collect::<Vec<_>>(),
        accepted.len()
    );
    assert!(
        sync_ok.load(Ordering::SeqCst) > ok_before_kill,
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
        .filter(|(at, _)| at.duration_since(killed_at) > Duration::from_secs(2))
        .collect();
    assert!(
        late.is_empty(),
        "sync calls failed after the failover: {late:?}"
    );

    let survivor = nodes
        .iter()
        .enumerate()
        .find(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .unwrap();
    let began = Instant::now();
    let mut pending = accepted.len();
    let done = eventually(Duration::from_secs(120), || {
        let page: Value = client()
            .get(format!(
                "{}/v1/apps/myapp/calls?path=/later&status=success&per_page=1000",
                survivor.url
            ))
            .bearer_auth(token(KEY, 600))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let succeeded: Vec<&str> = page["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        pending = accepted
            .iter()
            .filter(|id| !succeeded.contains(&id.as_str()))
            .count();
        pending == 0
    });
    assert!(done, "{pending} accepted async calls did not succeed");
    println!(
        "all {} async calls succeeded {:.1} s after the load stopped",
        accepted.len(),
        began.elapsed().as_secs_f64()
    );
}
