// Long: one test per abuse of the HTTP front, all sharing this file's raw-socket helpers; one binary for all.
//! The HTTP front under abuse, against the real binary: idle and half-open
//! connections dropped after the header-read timeout without starving real
//! clients, oversized request heads refused, the connection cap, body caps
//! on /v1 and on every kind of call route (413), the cap on queued async
//! calls (429, nothing queued lost), and per-app rate and in-flight limits
//! (429 with Retry-After), with the app `limits` section in the API and CLI.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cli::{field, ok, ok_json, run};
use common::{
    client, client_with_timeout, create_route, create_routes, eventually, require_images,
    TestServer,
};
use reqwest::blocking::{Body, Response};
use serde_json::{json, Value};

fn addr(server: &TestServer) -> SocketAddr {
    server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// Whether the server closes `stream` before `deadline` (end of stream or
/// a reset); whatever it sends first (a response) is read and skipped.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true, // reset
        }
    }
}

/// Send raw bytes on a new connection; what the server answers before it
/// closes (or within 10 s).
fn raw_exchange(server: &TestServer, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr(server)).expect("connect");
    stream.write_all(request).expect("send");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status, the `Retry-After` header and the JSON body of a reply.
fn decode(reply: Response) -> (u16, Option<String>, Value) {
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let text = reply.text().unwrap_or_default();
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn post(server: &TestServer, path: &str, body: impl Into<Body>) -> (u16, Option<String>, Value) {
    decode(
        client()
            .post(format!("{}{path}", server.url))
            .body(body)
            .send()
            .expect("request"),
    )
}

/// A body sent chunked, without Content-Length.
fn chunked(bytes: Vec<u8>) -> Body {
    Body::new(std::io::Cursor::new(bytes))
}

fn api(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client().request(method, format!("{}/v1{path}", server.url));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let (status, _, body) = decode(request.send().expect("request"));
    (status, body)
}

/// The message of an error answer.
fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn idle_and_half_open_connections_are_dropped_and_never_starve_clients() {
    let server = TestServer::start_with_env(&[("FERRITE_HEADER_READ_TIMEOUT", "2s")]);
    let mut idle = Vec::new();
    for n in 0..300 {
        let mut stream = TcpStream::connect(addr(&server)).expect("connect");
        match n % 3 {
            // Connects and sends nothing.
            0 => {}
            // Half a request line, never finished.
            1 => stream.write_all(b"GET /vers").expect("send"),
            // One whole request, answered, then the kept-alive connection idles.
            _ => {
                stream
                    .write_all(b"GET /version HTTP/1.1\r\nHost: t\r\n\r\n")
                    .expect("send");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("read timeout");
                let mut answer = Vec::new();
                let mut buf = [0u8; 1024];
                while !answer.ends_with(b"}") {
                    let n = stream.read(&mut buf).expect("an answer");
                    assert!(n > 0, "closed before answering");
                    answer.extend_from_slice(&buf[..n]);
                }
                assert!(answer.starts_with(b"HTTP/1.1 200"));
            }
        }
        idle.push(stream);
    }

    // Real clients are answered while all of them are open.
    let real = client_with_timeout(Duration::from_secs(10));
    let reply = real
        .get(format!("{}/version", server.url))
        .send()
        .expect("/version answered");
    assert_eq!(reply.status(), 200);
    let reply = real
        .get(format!("{}/v1/apps", server.url))
        .send()
        .expect("/v1 answered");
    assert_eq!(reply.status(), 200);

    // The server closes every one of them: 2 s, well within 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (n, stream) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, deadline),
            "connection {n} (kind {}) still open after 30 s",
            n % 3
        );
    }
    // And the server still serves.
    assert_eq!(
        real.get(format!("{}/version", server.url))
            .send()
            .expect("answered")
            .status(),
        200
    );
}

#[test]
fn oversized_request_heads_are_refused_with_431() {
    let server = TestServer::start_with_env(&[
        ("FERRITE_MAX_HEADER_BYTES", "8192"),
        ("FERRITE_MAX_HEADERS", "20"),
    ]);
    let big = format!(
        "GET /version HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let answer = raw_exchange(&server, big.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));

    let many: String = (0..30).map(|n| format!("X-H{n}: 1\r\n")).collect();
    let answer = raw_exchange(
        &server,
        format!("GET /version HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Within both limits: answered.
    let mut request = client().get(format!("{}/version", server.url));
    for n in 0..10 {
        request = request.header(format!("x-h{n}"), "b".repeat(500));
    }
    assert_eq!(request.send().expect("answered").status(), 200);
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = TestServer::start_with_env(&[
        ("FERRITE_MAX_CONNECTIONS", "4"),
        ("FERRITE_HEADER_READ_TIMEOUT", "60s"),
    ]);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(addr(&server)).expect("connect"))
        .collect();
    let url = format!("{}/version", server.url);
    let waiting = std::thread::spawn(move || {
        client_with_timeout(Duration::from_secs(60))
            .get(url)
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !waiting.is_finished(),
        "a fifth connection was served while four were open"
    );
    drop(held);
    assert_eq!(
        waiting.join().expect("client thread").expect("answered"),
        200
    );
    assert!(
        server.log().contains("max_connections=4"),
        "{}",
        server.log()
    );
}

/// A server started under `prlimit --nofile=LIMIT`, stopped (SIGTERM) when
/// dropped. TestServer cannot lower a server's limits; this is its spawn
/// with that one difference.
struct LimitedServer {
    url: String,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl LimitedServer {
    fn start(open_files: u32, env: &[(&str, &str)]) -> LimitedServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = common::free_port();
        let node = format!("test-{}-nofile", std::process::id());
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        let mut command = std::process::Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_ferrite"))
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--db-url")
            .arg(format!("sqlite://{}/f.db", dir.path().display()))
            .env("FERRITE_NODE_ID", &node)
            .env("FERRITE_SERVICE_OWNER", &node)
            .env("FERRITE_SERVICE_NETWORK", common::TEST_SERVICE_NETWORK)
            .env_remove("JWT_AUTH_KEY")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("prlimit ferrite server");
        let server = LimitedServer {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let healthy = eventually(Duration::from_secs(30), || {
            client_with_timeout(Duration::from_secs(2))
                .get(format!("{}/health", server.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(healthy, "not healthy:\n{}", server.log());
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn the_connection_cap_fits_the_open_files_limit_and_a_flood_passes() {
    let mut server = LimitedServer::start(256, &[("FERRITE_HEADER_READ_TIMEOUT", "2s")]);
    // Three quarters of 256.
    assert!(
        server.log().contains("max_connections=192"),
        "{}",
        server.log()
    );
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    // More idle connections than the process has descriptors.
    let flood: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(addr).expect("connect (the backlog takes the rest)"))
        .collect();
    // Slots free up as the timeout closes idle connections: a real client
    // gets its turn, and the server lives on.
    let reply = client_with_timeout(Duration::from_secs(60))
        .get(format!("{}/version", server.url))
        .send()
        .expect("answered once slots free up");
    assert_eq!(reply.status(), 200);
    drop(flood);
    assert_eq!(
        client()
            .get(format!("{}/v1/apps", server.url))
            .send()
            .expect("answered")
            .status(),
        200
    );
    assert!(
        server.child.try_wait().expect("status").is_none(),
        "the server died:\n{}",
        server.log()
    );
    assert!(
        !server.log().contains("Too many open files"),
        "{}",
        server.log()
    );
}

#[test]
fn bodies_over_the_cap_get_413_on_v1_and_every_call_path() {
    require_images(&["ferrite/hello", "ferrite/hot-hello"]);
    let server = TestServer::start_with_env(&[
        ("FN_MAX_REQUEST_BYTES", "1000"),
        ("API_MAX_BODY_BYTES", "2000"),
        // Async calls stay queued: only what was accepted is looked at.
        ("FERRITE_ASYNC_CONCURRENCY", "0"),
    ]);
    create_routes(
        &server,
        "caps",
        [
            json!({"path": "/cold", "image": "ferrite/hello"}),
            json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
            json!({"path": "/later", "image": "ferrite/hello", "type": "async"}),
            json!({"path": "/svc", "image": "ferrite/hot-hello", "format": "http", "service": {}}),
        ],
    );

    let over = vec![b'x'; 1500];
    for path in ["/cold", "/hot", "/later", "/svc"] {
        let url = format!("/r/caps{path}");
        for (how, body) in [
            ("with Content-Length", Body::from(over.clone())),
            ("chunked", chunked(over.clone())),
        ] {
            let (status, _, body) = post(&server, &url, body);
            assert_eq!(status, 413, "{path} {how}: {body}");
            let text = message(&body);
            assert!(
                text.contains("1000 bytes") && text.contains("FN_MAX_REQUEST_BYTES"),
                "{path} {how}: {text}"
            );
        }
    }
    // At the cap: run (or queued).
    let at_cap = "y".repeat(1000);
    assert_eq!(post(&server, "/r/caps/cold", at_cap.clone()).0, 200);
    assert_eq!(
        post(&server, "/r/caps/hot", chunked(at_cap.clone().into_bytes())).0,
        200
    );
    let (status, _, accepted) = post(&server, "/r/caps/later", at_cap);
    assert_eq!(status, 202, "{accepted}");
    // Only the call within the cap was queued.
    let (_, calls) = api(&server, "GET", "/apps/caps/calls?path=/later", None);
    let ids: Vec<&str> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, [accepted["call_id"].as_str().unwrap()]);

    // /v1 has its own cap.
    let big_app = json!({"app": {"name": "big", "config": {"K": "v".repeat(2500)}}}).to_string();
    for body in [
        Body::from(big_app.clone()),
        chunked(big_app.clone().into_bytes()),
    ] {
        let (status, _, body) = post(&server, "/v1/apps", body);
        assert_eq!(status, 413, "{body}");
        let text = message(&body);
        assert!(
            text.contains("2000 bytes") && text.contains("API_MAX_BODY_BYTES"),
            "{text}"
        );
    }
    assert_eq!(api(&server, "GET", "/apps/big", None).0, 404);
    let (status, _, _) = post(
        &server,
        "/v1/apps",
        json!({"app": {"name": "small"}}).to_string(),
    );
    assert_eq!(status, 200);
}

#[test]
fn async_calls_beyond_the_queue_cap_get_429_and_nothing_queued_is_lost() {
    require_images(&["ferrite/hello"]);
    let mut server = TestServer::start_with_env(&[
        ("FERRITE_ASYNC_CONCURRENCY", "0"),
        ("FERRITE_APP_MAX_QUEUED", "5"),
    ]);
    for app in ["qapp", "other"] {
        create_route(
            &server,
            app,
            json!({"path": "/later", "image": "ferrite/hello", "type": "async"}),
        );
    }
    let enqueue = |app: &str| post(&server, &format!("/r/{app}/later"), "{}");
    let mut accepted = Vec::new();
    for _ in 0..5 {
        let (status, _, body) = enqueue("qapp");
        assert_eq!(status, 202, "{body}");
        accepted.push(body["call_id"].as_str().unwrap().to_string());
    }
    let (status, retry_after, body) = enqueue("qapp");
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let text = message(&body);
    assert!(
        text.contains("limit of 5") && text.contains("FERRITE_APP_MAX_QUEUED"),
        "{text}"
    );
    // Per app: another app's queue is its own.
    assert_eq!(enqueue("other").0, 202);

    // The app's own limit replaces the default at once.
    let (status, body) = api(
        &server,
        "PATCH",
        "/apps/qapp",
        Some(json!({"app": {"limits": {"max_queued": 7}}})),
    );
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let (status, _, body) = enqueue("qapp");
        assert_eq!(status, 202, "{body}");
        accepted.push(body["call_id"].as_str().unwrap().to_string());
    }
    let (status, _, body) = enqueue("qapp");
    assert_eq!(status, 429, "{body}");
    assert!(message(&body).contains("limit of 7"), "{body}");

    // Nothing already queued was lost or changed.
    let (_, calls) = api(&server, "GET", "/apps/qapp/calls?status=queued", None);
    let mut queued: Vec<String> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    queued.sort();
    let mut expected = accepted.clone();
    expected.sort();
    assert_eq!(queued, expected);

    // With workers, every queued call runs.
    server.set_env("FERRITE_ASYNC_CONCURRENCY", "4");
    server.restart();
    for id in &accepted {
        let mut last = Value::Null;
        let done = eventually(Duration::from_secs(120), || {
            last = api(&server, "GET", &format!("/apps/qapp/calls/{id}"), None).1;
            last["call"]["status"] == "success"
        });
        assert!(done, "call {id} did not run: {last}");
    }
}

#[test]
fn app_rate_and_in_flight_limits_answer_429_with_retry_after() {
    require_images(&["ferrite/hot-hello", "ferrite/chaos"]);
    let server =
        TestServer::start_with_env(&[("FERRITE_APP_RATE", "1"), ("FERRITE_APP_BURST", "3")]);
    for app in ["dflt", "free"] {
        create_route(
            &server,
            app,
            json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
        );
    }
    let call = |app: &str| post(&server, &format!("/r/{app}/hot"), "");

    // The server's default rate: a burst of 3, then 429 until a token is back.
    let mut refused = None;
    for _ in 0..10 {
        let (status, retry_after, body) = call("dflt");
        match status {
            200 => continue,
            429 => {
                refused = Some((retry_after, body));
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let (retry_after, body) = refused.expect("a 429 within 10 quick calls at 1 call/s");
    let text = message(&body);
    assert!(
        text.contains("rate of 1 calls per second") && text.contains("FERRITE_APP_RATE"),
        "{text}"
    );
    let wait: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(wait >= 1, "{wait}");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(call("dflt").0, 200, "a token is back after Retry-After");

    // An app's own `rate: 0` is no limit.
    let (status, body) = api(
        &server,
        "PATCH",
        "/apps/free",
        Some(json!({"app": {"limits": {"rate": 0}}})),
    );
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        let (status, _, body) = call("free");
        assert_eq!(status, 200, "{body}");
    }

    // Calls in flight: one at a time for this app.
    let (status, body) = api(
        &server,
        "POST",
        "/apps",
        Some(json!({"app": {"name": "one", "limits": {"max_in_flight": 1, "rate": 0}}})),
    );
    assert_eq!(status, 200, "{body}");
    create_route(
        &server,
        "one",
        json!({"path": "/chaos", "image": "ferrite/chaos", "format": "http", "max_concurrency": 2}),
    );
    let chaos = |behaviour: Value| post(&server, "/r/one/chaos", behaviour.to_string());
    assert_eq!(chaos(json!({})).0, 200, "warm");
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| chaos(json!({"sleep_ms": 5000})));
        std::thread::sleep(Duration::from_millis(1000));
        let (status, retry_after, body) = chaos(json!({}));
        assert_eq!(status, 429, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(message(&body).contains("max_in_flight"), "{body}");
        let (status, _, body) = slow.join().expect("slow call");
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(chaos(json!({})).0, 200, "the slot is free again");
}

#[test]
fn app_limits_through_the_api_and_the_cli() {
    let mut server = TestServer::start();
    let (status, body) = api(
        &server,
        "POST",
        "/apps",
        Some(json!({"app": {"name": "lim", "config": {"A": "1"},
                            "limits": {"max_in_flight": 10, "rate": 50, "burst": 100, "max_queued": 1000}}})),
    );
    assert_eq!(status, 200, "{body}");
    let full = json!({"max_in_flight": 10, "rate": 50, "burst": 100, "max_queued": 1000});
    assert_eq!(body["app"]["limits"], full);
    let (_, body) = api(&server, "GET", "/apps/lim", None);
    assert_eq!(body["app"]["limits"], full);

    // PATCH merges; null drops one field; the config is kept.
    let (status, body) = api(
        &server,
        "PATCH",
        "/apps/lim",
        Some(json!({"app": {"limits": {"rate": 5, "burst": null}}})),
    );
    assert_eq!(status, 200, "{body}");
    let merged = json!({"max_in_flight": 10, "rate": 5, "max_queued": 1000});
    assert_eq!(body["app"]["limits"], merged);
    assert_eq!(body["app"]["config"], json!({"A": "1"}));

    // Bad values: 400 naming the field, nothing written.
    for (limits, field) in [
        (json!({"rate": -1}), "limits.rate"),
        (json!({"burst": 0}), "limits.burst"),
        (json!({"max_in_flight": 10_000_000}), "limits.max_in_flight"),
        (json!({"max_queued": "lots"}), "limits.max_queued"),
        (json!({"rates": 1}), "limits"),
    ] {
        let (status, body) = api(
            &server,
            "PATCH",
            "/apps/lim",
            Some(json!({"app": {"limits": limits}})),
        );
        assert_eq!(status, 400, "{limits}: {body}");
        assert!(message(&body).contains(field), "{limits}: {body}");
    }
    // Kept across a restart: the store, not a cache.
    server.restart();
    let (_, body) = api(&server, "GET", "/apps/lim", None);
    assert_eq!(body["app"]["limits"], merged);
    // null removes the section: the server's defaults apply.
    let (_, body) = api(
        &server,
        "PATCH",
        "/apps/lim",
        Some(json!({"app": {"limits": null}})),
    );
    assert!(body["app"].get("limits").is_none(), "{body}");

    // The CLI.
    let app = ok_json(
        &server,
        &[
            "apps",
            "create",
            "cliapp",
            "--max-in-flight",
            "3",
            "--rate",
            "20",
            "--burst",
            "40",
            "--max-queued",
            "0",
        ],
    );
    assert_eq!(
        app["limits"],
        json!({"max_in_flight": 3, "rate": 20, "burst": 40, "max_queued": 0})
    );
    let out = ok(
        &server,
        &[
            "apps", "update", "cliapp", "--rate", "default", "--burst", "5",
        ],
    );
    assert_eq!(out.trim(), "App cliapp updated");
    let details = ok(&server, &["apps", "inspect", "cliapp"]);
    assert_eq!(field(&details, "LIMITS"), "max_in_flight=3");
    assert!(
        details.contains("burst=5") && details.contains("max_queued=0"),
        "{details}"
    );
    assert!(!details.contains("rate="), "{details}");
    let details = ok(&server, &["apps", "inspect", "lim"]);
    assert_eq!(field(&details, "LIMITS"), "server defaults");
    let out = run(&server, &["apps", "update", "cliapp", "--rate", "-3"]);
    assert!(!out.status.success());
    let out = run(&server, &["apps", "update", "cliapp", "--burst", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("limits.burst"),
        "{stderr}"
    );
}
