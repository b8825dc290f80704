//! The database goes away under load and comes back (issue 14, item 2).
//!
//! One node on a PostgreSQL cluster of this test's own; four clients call a
//! hot and a cold route without pause; the cluster is stopped
//! (`pg_ctl stop -m fast`) for a few seconds, then started again. The test
//! prints and checks what callers and an operator saw: the known routes kept
//! answering 200, management writes and an unknown route got a quick 503
//! with `Retry-After`, `/metrics` said the store was down and calls were
//! served stale, writes work again soon after the database is back, and the
//! history holds every call, those made during the outage included.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres_private::PrivatePostgres;
use common::{client_with_timeout, create_route, eventually, require_images, TestServer};
use serde_json::{json, Value};

/// How long the database stays away.
const OUTAGE: Duration = Duration::from_secs(8);

/// One call the load made: when it was sent (since the test began), which
/// route, what it got and how long it took.
struct Answer {
    sent: Duration,
    path: &'static str,
    status: u16,
    took: Duration,
}

/// A request's answer: status, `Retry-After`, and how long it took.
fn timed(request: reqwest::blocking::RequestBuilder) -> (u16, Option<String>, Duration) {
    let began = Instant::now();
    let reply = request.send().expect("the node answers");
    let retry_after = reply
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    (reply.status().as_u16(), retry_after, began.elapsed())
}

/// A metric's value in a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Every recorded call of `path` in app `app`, page by page: their
/// creation times (ms since the epoch).
fn history(server: &TestServer, app: &str, path: &str) -> Vec<i64> {
    let http = client_with_timeout(Duration::from_secs(30));
    let mut created = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http
            .get(format!("{}/v1/apps/{app}/calls", server.url))
            .query(&[("path", path), ("per_page", "1000"), ("cursor", &cursor)])
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .expect("list calls");
        for call in page["calls"].as_array().expect("calls") {
            let at: ferrite_model::Millis =
                serde_json::from_value(call["created_at"].clone()).expect("created_at");
            created.push(at.0);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return created,
        }
    }
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn known_routes_are_served_while_the_database_is_away() {
    require_images(&["ferrite/hot-hello", "ferrite/hello", "ferrite/sleep"]);
    let postgres = PrivatePostgres::start();
    let url = postgres.url();
    let server = TestServer::start_with_env(&[("DB_URL", url.as_str())]);
    create_route(
        &server,
        "outage",
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http", "max_concurrency": 4}),
    );
    create_route(
        &server,
        "outage",
        json!({"path": "/cold", "image": "ferrite/hello"}),
    );
    create_route(
        &server,
        "outage",
        json!({"path": "/later", "image": "ferrite/sleep", "type": "async", "max_retries": 0}),
    );
    let http = client_with_timeout(Duration::from_secs(60));
    for path in ["/r/outage/hot", "/r/outage/cold"] {
        let reply = http
            .post(format!("{}{path}", server.url))
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}: {}", reply.text().unwrap());
    }

    // Steady load: three clients on the hot route, one on the cold one.
    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let clients: Vec<_> = ["/hot", "/hot", "/hot", "/cold"]
        .into_iter()
        .map(|path| {
            let (stop, answers, base) = (stop.clone(), answers.clone(), server.url.clone());
            std::thread::spawn(move || {
                let http = client_with_timeout(Duration::from_secs(60));
                while !stop.load(Ordering::Relaxed) {
                    let sent = began.elapsed();
                    let request = http.post(format!("{base}/r/outage{path}")).body("{}");
                    let (status, _, took) = timed(request);
                    answers.lock().unwrap().push(Answer {
                        sent,
                        path,
                        status,
                        took,
                    });
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // Async calls that run across the outage: running when it begins,
    // ended (4 s later) while the database is away.
    let later: Vec<String> = (0..3)
        .map(|_| {
            let reply: Value = http
                .post(format!("{}/r/outage/later", server.url))
                .body("4")
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.json())
                .expect("an async call is accepted");
            reply["call_id"].as_str().expect("call_id").to_string()
        })
        .collect();
    let call_of = |id: &str| -> Value {
        http.get(format!("{}/v1/apps/outage/calls/{id}", server.url))
            .send()
            .and_then(|r| r.json())
            .expect("get call")
    };
    assert!(
        eventually(Duration::from_secs(20), || later
            .iter()
            .all(|id| call_of(id)["call"]["status"] == "running")),
        "the async calls run: {:?}",
        later.iter().map(|id| call_of(id)).collect::<Vec<_>>()
    );

    let down_at = began.elapsed();
    let down_ms = epoch_ms();
    let stopping = Instant::now();
    postgres.stop();
    println!(
        "database stopped (pg_ctl stop -m fast) in {} ms",
        stopping.elapsed().as_millis()
    );

    // Management writes: 503 with Retry-After, each within a bounded time.
    let mut writes = Vec::new();
    for n in 0..5 {
        let request = http
            .post(format!("{}/v1/apps", server.url))
            .body(json!({"app": {"name": format!("during{n}")}}).to_string());
        writes.push(timed(request));
    }
    for (n, (status, retry_after, took)) in writes.iter().enumerate() {
        println!(
            "write {n} during the outage: {status} Retry-After {retry_after:?} in {} ms",
            took.as_millis()
        );
        assert_eq!(*status, 503, "a write while the database is away");
        assert!(retry_after.is_some(), "503 carries Retry-After");
        assert!(
            *took < Duration::from_secs(10),
            "bounded by FERRITE_DB_TIMEOUT"
        );
    }
    let read = timed(http.get(format!("{}/v1/apps/outage/routes", server.url)));
    println!(
        "a /v1 read during the outage: {} in {} ms",
        read.0,
        read.2.as_millis()
    );
    assert_eq!(read.0, 503);

    // A route never seen: 503 at once.
    let unknown = timed(
        http.post(format!("{}/r/outage/never-seen", server.url))
            .body("{}"),
    );
    println!(
        "a route never seen during the outage: {} Retry-After {:?} in {} ms",
        unknown.0,
        unknown.1,
        unknown.2.as_millis()
    );
    assert_eq!(unknown.0, 503);
    assert!(unknown.1.is_some(), "503 carries Retry-After");
    assert!(unknown.2 < Duration::from_secs(10));

    let refused = timed(
        http.post(format!("{}/r/outage/later", server.url))
            .body("1"),
    );
    println!(
        "an async call during the outage: {} Retry-After {:?} in {} ms",
        refused.0,
        refused.1,
        refused.2.as_millis()
    );
    assert_eq!(refused.0, 503, "no 202 for a call that cannot be stored");

    let health: Value = http
        .get(format!("{}/health", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    println!("/health during the outage: {health}");
    assert_eq!(health["store"], "unavailable");

    // Let the load run on the stale routes for the rest of the outage.
    let remaining = OUTAGE.saturating_sub(began.elapsed() - down_at);
    std::thread::sleep(remaining.saturating_sub(Duration::from_millis(500)));
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let store_up = metric(&metrics, "ferrite_store_up");
    let stale = metric(&metrics, "ferrite_route_cache_stale_total");
    let buffered = metric(&metrics, "ferrite_history_buffered");
    println!(
        "/metrics during the outage: ferrite_store_up {store_up:?}, \
         ferrite_route_cache_stale_total {stale:?}, ferrite_history_buffered {buffered:?}"
    );
    assert_eq!(store_up, Some(0.0));
    assert!(stale.is_some_and(|s| s > 0.0));
    assert!(buffered.is_some_and(|b| b > 0.0));
    std::thread::sleep(Duration::from_millis(500));

    let up_at = began.elapsed();
    let up_ms = epoch_ms();
    postgres.start_again();
    let back = Instant::now();
    println!(
        "database away for {} ms; accepting connections again",
        (up_at - down_at).as_millis()
    );

    // A write succeeds again, without restarting Ferrite.
    let mut attempts = 0;
    let written = eventually(Duration::from_secs(30), || {
        attempts += 1;
        let reply = http
            .post(format!("{}/v1/apps", server.url))
            .body(json!({"app": {"name": "after"}}).to_string())
            .send()
            .unwrap();
        reply.status() == 200
    });
    let write_back = back.elapsed();
    println!(
        "first write after the database came back: {} ms ({attempts} attempts)",
        write_back.as_millis()
    );
    assert!(written, "a write succeeds within 30 s:\n{}", server.log());

    // The async calls that ended during the outage are recorded once, each
    // having run once.
    let mut ended = Vec::new();
    let recorded = eventually(Duration::from_secs(30), || {
        ended = later.iter().map(|id| call_of(id)["call"].clone()).collect();
        ended.iter().all(|c| c["status"] == "success")
    });
    for call in &ended {
        println!(
            "async call across the outage: {} attempts {} completed {}",
            call["status"], call["attempts"], call["completed_at"]
        );
    }
    assert!(recorded, "the async calls succeed: {ended:?}");
    assert!(
        ended.iter().all(|c| c["attempts"] == 1),
        "each ran once: {ended:?}"
    );

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent >= down_at && a.sent < up_at)
        .collect();
    let ok_during = during.iter().filter(|a| a.status == 200).count();
    let slowest_during = during.iter().map(|a| a.took).max().unwrap_or_default();
    let not_ok: Vec<(u16, &str, u128)> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| (a.status, a.path, a.sent.as_millis()))
        .collect();
    for path in ["/hot", "/cold"] {
        let of = |list: &[&Answer]| list.iter().filter(|a| a.path == path).count();
        println!(
            "{path}: {} calls in all, {} during the outage",
            answers.iter().filter(|a| a.path == path).count(),
            of(&during)
        );
    }
    println!(
        "calls during the outage: {} answered 200 of {}; slowest {} ms; not 200 in all: {not_ok:?}",
        ok_during,
        during.len(),
        slowest_during.as_millis()
    );
    assert!(ok_during > 0, "calls were made during the outage");
    assert!(
        not_ok.is_empty(),
        "every call on a known route answered 200"
    );
    assert!(
        during.iter().any(|a| a.path == "/cold" && a.status == 200),
        "the cold route too"
    );

    // The history: every call, those of the outage included.
    let answered = |path: &str| answers.iter().filter(|a| a.path == path).count() + 1;
    let mut recorded = (0, 0);
    let complete = eventually(Duration::from_secs(30), || {
        let hot = history(&server, "outage", "/hot");
        let cold = history(&server, "outage", "/cold");
        recorded = (hot.len(), cold.len());
        hot.len() >= answered("/hot") && cold.len() >= answered("/cold")
    });
    let hot = history(&server, "outage", "/hot");
    let cold = history(&server, "outage", "/cold");
    let in_outage = hot
        .iter()
        .chain(&cold)
        .filter(|at| **at >= down_ms && **at < up_ms)
        .count();
    println!(
        "history: {} /hot and {} /cold records for {} and {} calls answered \
         (warm-up included); {in_outage} created during the outage, {ok_during} 200s then",
        recorded.0,
        recorded.1,
        answered("/hot"),
        answered("/cold")
    );
    assert!(complete, "every call is in the history:\n{}", server.log());
    assert!(
        in_outage >= ok_during,
        "the calls of the outage are in the history"
    );
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    println!(
        "/metrics after: ferrite_store_up {:?}, ferrite_history_buffered {:?}, ferrite_history_dropped_total {:?}",
        metric(&metrics, "ferrite_store_up"),
        metric(&metrics, "ferrite_history_buffered"),
        metric(&metrics, "ferrite_history_dropped_total")
    );
    assert_eq!(metric(&metrics, "ferrite_store_up"), Some(1.0));
    assert_eq!(metric(&metrics, "ferrite_history_dropped_total"), Some(0.0));
    let log = server.log();
    for line in log.lines().filter(|l| {
        [
            "store is unavailable",
            "store answers again",
            "last read",
            "call records",
        ]
        .iter()
        .any(|what| l.contains(what))
    }) {
        println!("log: {line}");
    }
    let stale_warnings = log.matches("serving the route as last read").count();
    println!("stale warnings in the log: {stale_warnings} (two routes, one outage)");
    assert_eq!(stale_warnings, 2, "one warning per route per outage");
}
