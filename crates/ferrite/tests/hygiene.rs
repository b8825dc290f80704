//! Hygiene under load: 1,000 cold calls mixing success, failure, timeout and
//! OOM leave no container behind.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_only_waiting_containers, client, create_route, node_containers, require_images,
    TestServer,
};
use serde_json::json;

const CALLS: usize = 1000;
const CLIENTS: usize = 4;

#[test]
fn a_thousand_mixed_calls_leave_no_container() {
    require_images(&[
        "ferrite/hello",
        "ferrite/fail",
        "ferrite/sleep",
        "ferrite/oom",
    ]);
    let mut server = TestServer::start();
    let client = client();
    for route in [
        json!({"path":"/ok","image":"ferrite/hello"}),
        json!({"path":"/fail","image":"ferrite/fail"}),
        json!({"path":"/slow","image":"ferrite/sleep","timeout":1}),
        json!({"path":"/oom","image":"ferrite/oom","memory":16}),
    ] {
        create_route(&server, "mix", route);
    }
    // Of every 40 calls: 34 succeed, 4 fail, 1 times out, 1 runs out of memory.
    let plan = |i: usize| match i % 40 {
        0 => ("/r/mix/slow", "5", 504),
        1 => ("/r/mix/oom", "", 500),
        2..=5 => ("/r/mix/fail", "", 500),
        _ => ("/r/mix/ok", "{\"name\":\"x\"}", 200),
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, url, client) = (next.clone(), server.url.clone(), client.clone());
            std::thread::spawn(move || {
                let mut wrong = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= CALLS {
                        return wrong;
                    }
                    let (path, body, expected) = plan(i);
                    let response = client
                        .post(format!("{url}{path}"))
                        .body(body)
                        .send()
                        .unwrap();
                    let status = response.status().as_u16();
                    if status != expected {
                        wrong.push(format!(
                            "{path}: {status} {}",
                            response.text().unwrap_or_default()
                        ));
                    }
                }
            })
        })
        .collect();
    let wrong: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    println!(
        "{CALLS} calls in {elapsed:?} ({:.1} calls/s)",
        CALLS as f64 / elapsed.as_secs_f64()
    );
    assert!(
        wrong.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    // Every container of a call is gone; only containers started ahead and
    // still waiting for a call may remain while the node runs.
    assert_only_waiting_containers(&server, Duration::from_secs(30));
    assert!(server.terminate().success());
    assert_eq!(
        node_containers(&server.node_id),
        vec![],
        "nothing left after shutdown"
    );
}
