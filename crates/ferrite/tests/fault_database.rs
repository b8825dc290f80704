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
use common::{client_with_timeout, create_routes, eventually, require_images, TestServer};
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
    /// The body of an answer other than 200, to show what went wrong.
    error: Option<String>,
}

/// A request's answer: status, `Retry-After`, how long it took, and the
/// body of an answer other than 200.
fn timed(
    request: reqwest::blocking::RequestBuilder,
) -> (u16, Option<String>, Duration, Option<String>) {
    let began = Instant::now();
    let reply = request.send().expect("the node answers");
    let took = began.elapsed();
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = reply.text().unwrap_or_default();
    (status, retry_after, took, (status != 200).then_some(body))
}

/// A request made while the database is away: a 503 with `Retry-After`,
/// within a bounded time (`FERRITE_DB_TIMEOUT` for one that meets the
/// outage first, at once after that).
#[track_caller]
fn refused(what: &str, request: reqwest::blocking::RequestBuilder) {
    let (status, retry_after, took, body) = timed(request);
    println!(
        "{what} during the outage: {status} Retry-After {retry_after:?} in {} ms: {}",
        took.as_millis(),
        body.unwrap_or_default()
    );
    assert_eq!(status, 503, "{what}");
    assert!(retry_after.is_some(), "{what}: a 503 carries Retry-After");
    assert!(took < Duration::from_secs(10), "{what}: bounded");
}

/// What `/metrics` says of the outage, printed: the store's state, calls
/// served stale, call records buffered and dropped.
fn scrape(server: &TestServer, when: &str) -> [Option<f64>; 4] {
    let names = [
        "ferrite_store_up",
        "ferrite_route_cache_stale_total",
        "ferrite_history_buffered",
        "ferrite_history_dropped_total",
    ];
    let text = client_with_timeout(Duration::from_secs(30))
        .get(format!("{}/metrics", server.url))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("GET /metrics");
    let values = names.map(|name| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    });
    println!("/metrics {when}: {names:?} = {values:?}");
    values
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
    // A short route cache TTL: the routes are due for a read during the
    // outage, so what serves them is the stale path, not a fresh entry.
    let server = TestServer::start_with_env(&[
        ("DB_URL", url.as_str()),
        ("FERRITE_ROUTE_CACHE_TTL_MS", "1000"),
    ]);
    create_routes(
        &server,
        "outage",
        [
            json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http",
               "max_concurrency": 4, "confinement": {"network": "none"}}),
            json!({"path": "/cold", "image": "ferrite/hello", "confinement": {"network": "none"}}),
            json!({"path": "/later", "image": "ferrite/sleep", "type": "async",
               "max_retries": 0, "confinement": {"network": "none"}}),
        ],
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

    // The functions run without a network (`confinement.network: none`):
    // they need none, and the test then needs nothing of the engine's
    // default bridge.
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
                    let (status, _, took, error) = timed(request);
                    answers.lock().unwrap().push(Answer {
                        sent,
                        path,
                        status,
                        took,
                        error,
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

    // Management reads and writes, a route never seen, an async call: a
    // quick 503 with Retry-After (no 202 for a call that cannot be stored).
    for n in 0..5 {
        refused(
            &format!("write {n}"),
            http.post(format!("{}/v1/apps", server.url))
                .body(json!({"app": {"name": format!("during{n}")}}).to_string()),
        );
    }
    refused(
        "a /v1 read",
        http.get(format!("{}/v1/apps/outage/routes", server.url)),
    );
    refused(
        "a route never seen",
        http.post(format!("{}/r/outage/never-seen", server.url))
            .body("{}"),
    );
    refused(
        "an async call",
        http.post(format!("{}/r/outage/later", server.url))
            .body("1"),
    );

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
    let [store_up, stale, buffered, _] = scrape(&server, "during the outage");
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
    let not_ok: Vec<(u16, &str, u128, &str)> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| {
            let error = a.error.as_deref().unwrap_or_default();
            (a.status, a.path, a.sent.as_millis(), error)
        })
        .collect();
    for path in ["/hot", "/cold"] {
        let of: Vec<&&Answer> = during.iter().filter(|a| a.path == path).collect();
        let slowest = of.iter().max_by_key(|a| a.took);
        println!(
            "{path}: {} calls in all, {} during the outage; slowest then {:?} ms, sent {:?} ms after the stop",
            answers.iter().filter(|a| a.path == path).count(),
            of.len(),
            slowest.map(|a| a.took.as_millis()),
            slowest.map(|a| (a.sent - down_at).as_millis()),
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
    // Every call once: none lost, none written twice. (Which calls count
    // as "during" differs between the client's clock and the node's by the
    // few calls in flight at either edge.)
    assert!(complete, "every call is in the history:\n{}", server.log());
    assert_eq!(
        (hot.len(), cold.len()),
        (answered("/hot"), answered("/cold"))
    );
    assert!(in_outage > 0, "calls of the outage are in the history");
    let [store_up, _, buffered, dropped] = scrape(&server, "after");
    assert_eq!(store_up, Some(1.0));
    assert_eq!(buffered, Some(0.0), "every buffered record written");
    assert_eq!(dropped, Some(0.0));
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
    // One warning per route per outage, not one per call (the async route
    // is warned about when the refused async call looked it up).
    let warnings = ["/hot", "/cold", "/later"].map(|path| {
        log.lines()
            .filter(|l| l.contains("last read") && l.contains(&format!("path={path} ")))
            .count()
    });
    println!("stale warnings in the log for /hot, /cold, /later: {warnings:?}");
    assert_eq!(&warnings[..2], [1, 1]);
    assert!(warnings[2] <= 1);
}

/// `/metrics` is behind the same gate as `/v1`.
#[test]
fn metrics_answer_only_who_may_manage() {
    const KEY: &str = "a-metrics-test-key-of-32-bytes-or-more";
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", KEY)]);
    let http = client_with_timeout(Duration::from_secs(30));
    let without = http.get(format!("{}/metrics", server.url)).send().unwrap();
    println!("/metrics without a token: {}", without.status());
    assert_eq!(without.status(), 401);
    let with = http
        .get(format!("{}/metrics", server.url))
        .bearer_auth(common::token(KEY, 600))
        .send()
        .unwrap();
    assert_eq!(with.status(), 200);
    let text = with.text().unwrap();
    println!("/metrics with a token:\n{text}");
    assert!(text.lines().any(|l| l == "ferrite_store_up 1"), "{text}");
}
