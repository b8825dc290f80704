//! Async calls are never lost: 2,000 calls to a fast hot function, with the
//! server killed (SIGKILL) while they run, and with Redis killed and
//! restarted while they are being enqueued, and with the server killed while
//! calls are being enqueued (they are accepted in groups, one commit per
//! group: none may be answered before its group is durable). Every call the
//! server accepted (202) reaches a final state; the duplicate runs are
//! counted and printed.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{client, create_route, eventually, node_containers, require_images, TestServer};
use serde_json::{json, Value};

const CALLS: usize = 2_000;
const CLIENTS: usize = 8;

/// The async route every call goes to: a fast hot function.
fn hot_route() -> Value {
    json!({
        "path": "/hot", "image": "ferrite/hot-hello", "type": "async",
        "format": "http", "max_concurrency": 4,
    })
}

/// What the enqueueing clients saw.
struct Enqueued {
    accepted: Vec<String>,
    refused: usize,
}

/// Enqueue `CALLS` calls from `CLIENTS` threads; `progress` counts answers.
fn enqueue_all(url: &str, app: &str, progress: &Arc<AtomicUsize>) -> Enqueued {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, app, progress) = (url.to_string(), app.to_string(), progress.clone());
            std::thread::spawn(move || {
                let client = client();
                let mut accepted = Vec::new();
                let mut refused = 0;
                for _ in 0..CALLS / CLIENTS {
                    let reply = client.post(format!("{url}/r/{app}/hot")).body("{}").send();
                    progress.fetch_add(1, Ordering::SeqCst);
                    match reply {
                        Ok(r) if r.status() == 202 => {
                            let json: Value = r.json().unwrap();
                            accepted.push(json["call_id"].as_str().unwrap().to_string());
                        }
                        Ok(r) => {
                            assert_eq!(r.status(), 503, "{:?}", r.text());
                            refused += 1;
                        }
                        // The server was killed mid-request: not accepted.
                        Err(_) => refused += 1,
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut all = Enqueued {
        accepted: Vec::new(),
        refused: 0,
    };
    for thread in threads {
        let (accepted, refused) = thread.join().unwrap();
        all.accepted.extend(accepted);
        all.refused += refused;
    }
    all
}

/// Every call of `app`, following the cursor.
fn all_calls(server: &TestServer, app: &str) -> Vec<Value> {
    let mut calls = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client()
            .get(format!(
                "{}/v1/apps/{app}/calls?per_page=1000&cursor={cursor}",
                server.url
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        calls.extend(page["calls"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return calls,
        }
    }
}

/// Wait until every accepted call is final; the records by id.
fn wait_final(
    server: &TestServer,
    app: &str,
    accepted: &[String],
    within: Duration,
) -> HashMap<String, Value> {
    let started = Instant::now();
    let mut by_id = HashMap::new();
    let done = eventually(within, || {
        by_id = all_calls(server, app)
            .into_iter()
            .map(|c| (c["id"].as_str().unwrap().to_string(), c))
            .collect();
        accepted.iter().all(|id| {
            by_id.get(id).is_some_and(|c| {
                matches!(
                    c["status"].as_str(),
                    Some("success" | "error" | "timeout" | "cancelled")
                )
            })
        })
    });
    let pending = accepted
        .iter()
        .filter(|id| {
            by_id
                .get(*id)
                .is_none_or(|c| matches!(c["status"].as_str(), Some("queued" | "running")))
        })
        .count();
    assert!(
        done,
        "{pending} accepted calls did not reach a final state within {within:?}"
    );
    println!(
        "all {} accepted calls final {:.1} s after the restart",
        accepted.len(),
        started.elapsed().as_secs_f64()
    );
    by_id
}

/// Every accepted call succeeded; prints the runs beyond the first, summed.
fn check_outcomes(by_id: &HashMap<String, Value>, accepted: &[String]) {
    let mut reruns = 0;
    for id in accepted {
        let call = &by_id[id];
        assert_eq!(call["status"], "success", "{call}");
        reruns += call["attempts"].as_u64().unwrap().saturating_sub(1);
    }
    println!("duplicate executions (runs beyond the first, at most): {reruns}");
}

#[test]
fn killed_server_loses_no_call() {
    require_images(&["ferrite/hot-hello"]);
    let mut server = TestServer::start_with_env(&[("FERRITE_ASYNC_LEASE_SECS", "5")]);
    create_route(&server, "crashapp", hot_route());
    let progress = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let enqueued = enqueue_all(&server.url, "crashapp", &progress);
    let enqueue_secs = began.elapsed().as_secs_f64();
    assert_eq!(enqueued.accepted.len(), CALLS);
    let done_before = all_calls(&server, "crashapp")
        .iter()
        .filter(|c| c["status"] == "success")
        .count();
    println!(
        "enqueued {CALLS} calls in {enqueue_secs:.2} s ({:.0}/s); {done_before} done when the server was killed",
        CALLS as f64 / enqueue_secs
    );
    assert!(
        done_before < CALLS,
        "every call had finished before the kill: the test proves nothing"
    );

    server.restart(); // SIGKILL, then start on the same data
    let by_id = wait_final(
        &server,
        "crashapp",
        &enqueued.accepted,
        Duration::from_secs(300),
    );
    check_outcomes(&by_id, &enqueued.accepted);
    assert_eq!(
        by_id.len(),
        CALLS,
        "calls that were never accepted appeared"
    );

    let status = server.terminate();
    assert!(status.success());
    assert!(node_containers(&server.node_id).is_empty());
}

#[test]
fn redis_restart_loses_no_accepted_call() {
    require_images(&["ferrite/hot-hello"]);
    let mut redis = RedisServer::start();
    let prefix = format!("ferrite-crash-{}", std::process::id());
    let server = TestServer::start_with_env(&[
        ("MQ_URL", &redis.url(&prefix)),
        ("FERRITE_ASYNC_LEASE_SECS", "5"),
    ]);
    create_route(&server, "redisapp", hot_route());
    let progress = Arc::new(AtomicUsize::new(0));
    let enqueuer = {
        let (url, progress) = (server.url.clone(), progress.clone());
        std::thread::spawn(move || enqueue_all(&url, "redisapp", &progress))
    };
    assert!(eventually(Duration::from_secs(120), || progress
        .load(Ordering::SeqCst)
        >= CALLS / 2));
    redis.kill_and_restart(Duration::from_secs(1));
    let enqueued = enqueuer.join().unwrap();
    println!(
        "{} calls accepted, {} refused while Redis was down",
        enqueued.accepted.len(),
        enqueued.refused
    );
    assert!(enqueued.accepted.len() >= CALLS / 2);

    let by_id = wait_final(
        &server,
        "redisapp",
        &enqueued.accepted,
        Duration::from_secs(300),
    );
    check_outcomes(&by_id, &enqueued.accepted);
    // Refused calls are recorded as cancelled, never run.
    let refused_records = by_id
        .values()
        .filter(|c| c["status"] == "cancelled")
        .count();
    assert!(refused_records <= enqueued.refused);
    assert!(redis.data_dir().exists());
}

/// Kill -9 the server while `CLIENTS` threads enqueue, with the workers off;
/// after a restart every call answered 202 is in the history, queued, and
/// (once the workers are on) runs: it was in the queue too.
fn killed_while_enqueueing_keeps_every_accepted_call(env: &[(&str, &str)], app: &str) {
    require_images(&["ferrite/hot-hello"]);
    let mut env = env.to_vec();
    env.extend([
        ("FERRITE_ASYNC_LEASE_SECS", "5"),
        ("FERRITE_ASYNC_CONCURRENCY", "0"),
    ]);
    let mut server = TestServer::start_with_env(&env);
    create_route(&server, app, hot_route());
    let progress = Arc::new(AtomicUsize::new(0));
    let enqueuer = {
        let (url, app, progress) = (server.url.clone(), app.to_string(), progress.clone());
        std::thread::spawn(move || enqueue_all(&url, &app, &progress))
    };
    assert!(eventually(Duration::from_secs(120), || progress
        .load(Ordering::SeqCst)
        >= CALLS / 2));
    server.kill();
    let enqueued = enqueuer.join().unwrap();
    println!(
        "{} calls accepted, {} refused or cut off by the kill",
        enqueued.accepted.len(),
        enqueued.refused
    );
    assert!(enqueued.accepted.len() >= CALLS / 2);
    assert!(enqueued.refused > 0, "the kill came after the last call");

    server.restart(); // still without workers
    let by_id: HashMap<String, Value> = all_calls(&server, app)
        .into_iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c))
        .collect();
    for id in &enqueued.accepted {
        let call = by_id
            .get(id)
            .unwrap_or_else(|| panic!("accepted call {id} lost"));
        assert_eq!(call["status"], "queued", "{call}");
    }

    server.set_env("FERRITE_ASYNC_CONCURRENCY", "8");
    server.restart();
    let by_id = wait_final(&server, app, &enqueued.accepted, Duration::from_secs(300));
    check_outcomes(&by_id, &enqueued.accepted);
}

#[test]
fn killed_while_enqueueing_embedded() {
    killed_while_enqueueing_keeps_every_accepted_call(&[], "killapp");
}

#[test]
fn killed_while_enqueueing_postgres_redis() {
    let redis = RedisServer::start();
    let db = common::postgres::fresh_database();
    let mq = redis.url(&format!("ferrite-kill-{}", std::process::id()));
    killed_while_enqueueing_keeps_every_accepted_call(
        &[("DB_URL", db.as_str()), ("MQ_URL", mq.as_str())],
        "killpgapp",
    );
}
