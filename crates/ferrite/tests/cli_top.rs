//! `ferrite top` against a real node and engine: calls made while it
//! scrapes show in their route's row, as docs/operating.md shows it; its
//! failures are one line.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::cli::{error_line, header, ok, ok_cmd, run, run_cmd, unreachable_cmd};
use common::{client, create_route, ferrite_cmd, require_images, TestServer};
use serde_json::{json, Value};

/// Calls of `/r/{app}{path}` one after the other, until dropped (at most a
/// minute: a test that hangs must not call forever).
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl Load {
    fn start(server: &TestServer, app: &str, path: &str) -> Load {
        let url = format!("{}/r/{app}{path}", server.url);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            let mut calls = 0;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                let reply = client().post(&url).body("{}").send().unwrap();
                assert_eq!(reply.status(), 200, "{}", reply.text().unwrap_or_default());
                calls += 1;
            }
            calls
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let calls = thread.join().expect("the load thread");
            assert!(calls > 0 || std::thread::panicking());
        }
    }
}

/// A node with a hot route that has answered once (its container is up).
fn node_with_hot_route(app: &str) -> TestServer {
    require_images(&["ferrite/hot-hello"]);
    let server = TestServer::start();
    create_route(
        &server,
        app,
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
    );
    let reply = client()
        .post(format!("{}/r/{app}/hot", server.url))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    server
}

fn row<'a>(rows: &'a Value, app: &str, route: &str) -> &'a Value {
    rows.as_array()
        .unwrap_or_else(|| panic!("not a list: {rows}"))
        .iter()
        .find(|r| r["app"] == app && r["route"] == route)
        .unwrap_or_else(|| panic!("no row of {app} {route}: {rows}"))
}

#[test]
fn top_once_shows_the_calls_made_between_its_scrapes() {
    let server = node_with_hot_route("topapp");
    let load = Load::start(&server, "topapp", "/hot");

    // As docs/operating.md shows it.
    let printed = ok(&server, &["top", "--once", "--interval", "1s", "--json"]);
    let rows: Value = serde_json::from_str(&printed).expect("JSON rows");
    let hot = row(&rows, "topapp", "/hot");
    assert!(hot["calls_per_s"].as_f64().unwrap() > 0.0, "{hot}");
    assert_eq!(hot["errors_per_s"], 0.0, "{hot}");
    let p50 = hot["p50_s"].as_f64().expect("a median, with calls");
    let p95 = hot["p95_s"]
        .as_f64()
        .expect("a 95th percentile, with calls");
    assert!(0.0 < p50 && p50 <= p95, "{hot}");
    // The container taken by the warm-up call, in use ever since.
    assert!(hot["containers"].as_u64().unwrap() >= 1, "{hot}");
    assert_eq!(hot["cold_starts"], 0, "the container was warm: {hot}");

    let table = ok(&server, &["top", "--once", "--interval", "500ms"]);
    assert_eq!(
        header(&table),
        [
            "APP",
            "ROUTE",
            "CALLS/S",
            "ERRORS/S",
            "P50",
            "P95",
            "COLD",
            "BUSY",
            "CONTAINERS"
        ]
    );
    let line = table
        .lines()
        .find(|l| l.starts_with("topapp "))
        .unwrap_or_else(|| panic!("no row of topapp:\n{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1], "/hot", "{table}");
    assert!(cells[2].parse::<f64>().unwrap() > 0.0, "{table}");
    assert!(
        cells[4].ends_with("ms") || cells[4].ends_with('s'),
        "{table}"
    );
    drop(load);
}

#[test]
fn top_redraws_a_table_every_interval_until_stopped() {
    let server = node_with_hot_route("loopapp");
    let _load = Load::start(&server, "loopapp", "/hot");
    // As docs/operating.md shows it, with its output piped: one screen
    // after the other, no terminal control sequences.
    let mut child = ferrite_cmd(&server)
        .arg("top")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferrite top");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut screens = Vec::new();
    let mut screen = Vec::new();
    while screens.len() < 2 {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .expect("ferrite top printed nothing for 30 s");
        if line.starts_with("ferrite top: ") && !screen.is_empty() {
            screens.push(std::mem::take(&mut screen));
        }
        screen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    for screen in &screens {
        assert!(!screen.iter().any(|l| l.contains('\x1b')), "{screen:?}");
        let row = screen
            .iter()
            .find(|l| l.starts_with("loopapp "))
            .unwrap_or_else(|| panic!("no row of loopapp: {screen:?}"));
        let calls_per_s: f64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(calls_per_s > 0.0, "{screen:?}");
    }
}

#[test]
fn top_says_in_one_line_why_it_cannot_scrape() {
    let (cmd, url) = unreachable_cmd();
    let args = ["top", "--once", "--interval", "1s"];
    let line = error_line(&run_cmd(cmd, &args), 1, &args);
    assert!(
        line.starts_with(&format!("error: cannot reach the server at {url}")),
        "{line}"
    );

    // /metrics is guarded as /v1 is: with a key, a token is needed, and
    // the CLI signs one with the key in its environment.
    let key = "top-test-key-0123456789abcdef0123456789";
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", key)]);
    let line = error_line(&run(&server, &args), 1, &args);
    assert!(line.starts_with("error: 401 Unauthorized"), "{line}");
    let mut cmd = ferrite_cmd(&server);
    cmd.env("JWT_AUTH_KEY", key);
    let printed = ok_cmd(cmd, &["top", "--once", "--interval", "500ms", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), json!([]));

    for bad in [
        &["top", "--interval", "100ms"][..],
        &["top", "--interval", "2m"],
        &["top", "--interval", "soon"],
        &["top", "--json"],
    ] {
        let line = error_line(&run(&server, bad), 2, bad);
        assert!(
            line.contains("--interval") || line.contains("--once"),
            "{line}"
        );
    }
}
