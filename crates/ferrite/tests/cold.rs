// Long: one test per cold-call scenario (contract, failures, limits, admission, registries, TLS engine, leftovers), sharing this file's helpers; one binary for all.
//! Cold calls (`format: default`) against the real Docker engine: the
//! function contract, failures, limits, admission, pulls, TLS, hygiene.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    assert_only_waiting_containers, client_with_timeout, create_route, create_routes, eventually,
    node_containers, output_with_stdin, require_images, token, TestServer,
};
use reqwest::blocking::Client;
use serde_json::{json, Value};

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error(&self) -> String {
        let json: Value =
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()));
        json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A client with twice the usual patience: every cold call starts a container.
fn client() -> Client {
    client_with_timeout(Duration::from_secs(120))
}

fn post(server: &TestServer, path: &str, body: impl Into<reqwest::blocking::Body>) -> Reply {
    let response = client()
        .post(format!("{}{path}", server.url))
        .body(body)
        .send()
        .expect("request");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().expect("body").to_vec(),
    }
}

#[test]
fn seed_walk_through_runs_hello() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start();
    assert_eq!(
        post(&server, "/v1/apps", r#"{"app":{"name":"myapp"}}"#).status,
        200
    );
    create_route(
        &server,
        "myapp",
        json!({"type":"sync","path":"/hello-sync","image":"ferrite/hello"}),
    );
    let reply = post(&server, "/r/myapp/hello-sync", r#"{"name":"Johnny"}"#);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "Hello Johnny!\n");
    assert!(reply.headers.contains_key("fn-call-id"));
    // Again, now likely through a container started ahead.
    let reply = post(&server, "/r/myapp/hello-sync", "");
    assert_eq!(reply.text(), "Hello World!\n");
}

/// The echo function's answer: its environment and its stdin.
fn parse_echo(body: &[u8]) -> (HashMap<String, String>, Vec<u8>) {
    let marker = b"--- stdin ---\n";
    let at = body
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("echo marker");
    let env = String::from_utf8_lossy(&body[..at])
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (env, body[at + marker.len()..].to_vec())
}

#[test]
fn function_contract_environment_and_stdin() {
    require_images(&["ferrite/echo"]);
    let server = TestServer::start();
    let app = json!({"app":{"name":"ctr","config":{"shared":"app","app_only":"a"}}});
    assert_eq!(post(&server, "/v1/apps", app.to_string()).status, 200);
    create_route(
        &server,
        "ctr",
        json!({"path":"/echo/deep","image":"ferrite/echo","memory":64,"timeout":20,
               "config":{"SHARED":"route","CALL_ID":"forged"},
               "headers":{"X-Route":["one","two"],"Content-Type":["application/x-echo"]}}),
    );
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let response = client()
        .post(format!("{}/r/ctr/echo/deep?q=1", server.url))
        .header("X-Custom-Thing", "value-1")
        .body(payload.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let call_id = headers["fn-call-id"].to_str().unwrap().to_string();
    let values: Vec<_> = headers
        .get_all("x-route")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(values, ["one", "two"], "route headers, every value");
    assert_eq!(
        headers["content-type"], "application/x-echo",
        "a route header replaces ours"
    );
    let (env, stdin) = parse_echo(&response.bytes().unwrap());
    assert_eq!(stdin, payload, "stdin is the body, byte for byte");
    let port = server.url.rsplit(':').next().unwrap();
    for (name, value) in [
        ("METHOD", "POST".to_string()),
        ("ROUTE", "/echo/deep".to_string()),
        (
            "REQUEST_URL",
            format!("http://127.0.0.1:{port}/r/ctr/echo/deep?q=1"),
        ),
        ("APP_NAME", "ctr".to_string()),
        ("CALL_ID", call_id),
        ("FN_FORMAT", "default".to_string()),
        ("FN_MEMORY", "64".to_string()),
        ("FN_TIMEOUT", "20".to_string()),
        ("HEADER_X_CUSTOM_THING", "value-1".to_string()),
        ("SHARED", "route".to_string()),
        ("APP_ONLY", "a".to_string()),
    ] {
        assert_eq!(env.get(name), Some(&value), "{name} in {env:?}");
    }

    // GET: the payload is the `payload` query parameter.
    let reply = client()
        .get(format!(
            "{}/r/ctr/echo/deep?payload=%7B%22a%22%3A1%7D",
            server.url
        ))
        .send()
        .unwrap();
    let (env, stdin) = parse_echo(&reply.bytes().unwrap());
    assert_eq!(env["METHOD"], "GET");
    assert_eq!(stdin, br#"{"a":1}"#);
}

#[test]
fn failures_map_to_clear_answers() {
    require_images(&[
        "ferrite/fail",
        "ferrite/sleep",
        "ferrite/oom",
        "ferrite/stream",
    ]);
    let server = TestServer::start();
    create_routes(
        &server,
        "bad",
        [
            json!({"path":"/fail","image":"ferrite/fail","config":{"EXIT_CODE":"3"}}),
            json!({"path":"/slow","image":"ferrite/sleep","timeout":1}),
            json!({"path":"/oom","image":"ferrite/oom","memory":16}),
            json!({"path":"/big","image":"ferrite/stream","headers":{"X-Always":["yes"]}}),
        ],
    );

    let reply = post(&server, "/r/bad/fail", "");
    assert_eq!(
        (reply.status, reply.error()),
        (500, "exit code 3".to_string())
    );

    let started = Instant::now();
    let reply = post(&server, "/r/bad/slow", "30");
    assert_eq!(
        (reply.status, reply.error()),
        (504, "Timed out".to_string())
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed at the deadline: {:?}",
        started.elapsed()
    );

    let reply = post(&server, "/r/bad/oom", "");
    assert_eq!(
        (reply.status, reply.error()),
        (500, "out of memory".to_string())
    );

    // 7 MiB of output against the 6 MiB default cap.
    let reply = post(&server, "/r/bad/big", "");
    assert_eq!(reply.status, 502);
    assert!(
        reply.error().contains("larger than the limit"),
        "{}",
        reply.error()
    );
    assert_eq!(
        reply.headers["x-always"], "yes",
        "route headers on errors too"
    );

    // A body over FN_MAX_REQUEST_BYTES (6 MiB) never reaches a container.
    let reply = post(&server, "/r/bad/fail", vec![b'x'; 7 * 1024 * 1024]);
    assert_eq!(reply.status, 413);
    assert!(
        reply
            .error()
            .contains("larger than the limit for function calls"),
        "{}",
        reply.error()
    );

    let reply = post(&server, "/r/bad/missing", "");
    assert_eq!(reply.status, 404);
    // No container of any of these calls is left once they are answered
    // (only containers started ahead, waiting for a call, may be up).
    assert_only_waiting_containers(&server, Duration::from_secs(10));
}

#[test]
fn memory_is_the_containers_limit_without_swap() {
    require_images(&["ferrite/busybox"]);
    let server = TestServer::start();
    // The busybox image's command is a shell reading its script from stdin.
    create_route(
        &server,
        "mem",
        json!({"path":"/sh","image":"ferrite/busybox","memory":48}),
    );
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; \
                  cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/memory.swap.max 2>/dev/null; true";
    let reply = post(&server, "/r/mem/sh", script);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let lines: Vec<_> = reply.text().lines().map(str::to_string).collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("50331648"),
        "{lines:?}"
    );
    if let Some(swap) = lines.get(1) {
        // cgroup v1 memsw is memory+swap: equal to the limit means no swap.
        assert!(swap == "50331648" || swap == "0", "{lines:?}");
    }
}

#[test]
fn route_jwt_key_guards_calls() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start();
    create_route(
        &server,
        "sec",
        json!({"path":"/hello","image":"ferrite/hello","jwt_key":"route-secret"}),
    );
    let url = format!("{}/r/sec/hello", server.url);
    let reply = client().post(&url).send().unwrap();
    assert_eq!(reply.status(), 401);
    let reply = client()
        .post(&url)
        .bearer_auth(token("wrong", 600))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 401);
    let reply = client()
        .post(&url)
        .bearer_auth(token("route-secret", 600))
        .body(r#"{"name":"Key"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "Hello Key!\n");
}

#[test]
fn admission_waits_then_refuses_and_never_starts_beyond_the_budget() {
    require_images(&["ferrite/sleep", "ferrite/hello"]);
    let server = TestServer::start_with_env(&[
        ("FERRITE_MEMORY_BUDGET_MIB", "100"),
        ("FERRITE_ADMISSION_WAIT_MS", "1500"),
        ("FERRITE_PRESTART_MAX", "0"),
    ]);
    create_routes(
        &server,
        "adm",
        [
            json!({"path":"/slow","image":"ferrite/sleep","memory":64,"timeout":20}),
            json!({"path":"/hello","image":"ferrite/hello","memory":64}),
            json!({"path":"/huge","image":"ferrite/hello","memory":200}),
        ],
    );

    let reply = post(&server, "/r/adm/huge", "");
    assert_eq!(reply.status, 503);
    assert!(
        reply
            .error()
            .contains("more than this node's memory budget"),
        "{}",
        reply.error()
    );

    let url = server.url.clone();
    let first = std::thread::spawn(move || {
        let response = client()
            .post(format!("{url}/r/adm/slow"))
            .body("4")
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    });
    assert!(eventually(Duration::from_secs(10), || node_containers(
        &server.node_id
    )
    .len()
        == 1));
    // 64 + 64 > 100: the second call waits its 1.5 s, and no container starts.
    let started = Instant::now();
    let url = server.url.clone();
    let second = std::thread::spawn(move || post_raw(&url, "/r/adm/hello"));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        node_containers(&server.node_id).len(),
        1,
        "a waiting call starts no container"
    );
    let (status, body) = second.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("at capacity"), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(first.join().unwrap(), (200, "slept\n".to_string()));
    // Memory is back once the first container is gone.
    let reply = post(&server, "/r/adm/hello", "");
    assert_eq!(reply.status, 200, "{}", reply.text());
}

fn post_raw(url: &str, path: &str) -> (u16, String) {
    let response = client().post(format!("{url}{path}")).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn a_missing_image_is_a_500_naming_it() {
    let server = TestServer::start();
    let image = "127.0.0.1:9/ferrite/does-not-exist:1";
    create_route(&server, "pull", json!({"path":"/x","image":image}));
    let reply = post(&server, "/r/pull/x", "");
    assert_eq!(reply.status, 500);
    assert!(
        reply
            .error()
            .starts_with(&format!("cannot pull image {image}: ")),
        "{}",
        reply.error()
    );
}

fn script(name: &str, args: &[&str]) -> HashMap<String, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = Command::new(format!("{root}/scripts/{name}"))
        .args(args)
        .output()
        .expect(name);
    assert!(
        output.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn docker(args: &[&str]) {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops a fixture started by one of the scripts, whatever the test does.
struct Fixture(&'static str, tempfile::TempDir);

impl Drop for Fixture {
    fn drop(&mut self) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let _ = Command::new(format!("{root}/scripts/{}", self.0))
            .arg("stop")
            .arg(self.1.path())
            .output();
    }
}

#[test]
fn images_are_pulled_from_a_private_registry_with_docker_auth() {
    require_images(&["ferrite/hello"]);
    let fixture = Fixture("registry.sh", tempfile::tempdir().unwrap());
    let registry = script(
        "registry.sh",
        &["start", fixture.1.path().to_str().unwrap()],
    )["REGISTRY"]
        .clone();
    let image = format!("{registry}/ferrite/pulled:{}", std::process::id());
    // Push with a throwaway docker config, so the machine's is untouched and
    // Ferrite cannot find credentials other than DOCKER_AUTH.
    let config = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let output = output_with_stdin(
            Command::new("docker")
                .env("DOCKER_CONFIG", config.path())
                .args(args),
            b"ferrite-pass",
        );
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    cli(&["login", "-u", "ferrite", "--password-stdin", &registry]);
    docker(&["tag", "ferrite/hello", &image]);
    cli(&["push", &image]);
    docker(&["rmi", &image]);

    let auth = |password: &str| {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("ferrite:{password}"));
        json!({"auths": { registry.clone(): { "auth": basic } }}).to_string()
    };
    let home = tempfile::tempdir().unwrap();
    let wrong = TestServer::start_with_env(&[
        ("DOCKER_AUTH", &auth("wrong")),
        ("HOME", home.path().to_str().unwrap()),
    ]);
    create_route(&wrong, "reg", json!({"path":"/hello","image":image}));
    let reply = post(&wrong, "/r/reg/hello", "");
    assert_eq!(reply.status, 500);
    assert!(
        reply
            .error()
            .starts_with(&format!("cannot pull image {image}:")),
        "{}",
        reply.error()
    );
    drop(wrong);

    let server = TestServer::start_with_env(&[
        ("DOCKER_AUTH", &auth("ferrite-pass")),
        ("HOME", home.path().to_str().unwrap()),
    ]);
    create_route(&server, "reg", json!({"path":"/hello","image":image}));
    let reply = post(&server, "/r/reg/hello", r#"{"name":"Registry"}"#);
    assert_eq!(
        (reply.status, reply.text()),
        (200, "Hello Registry!\n".to_string())
    );
    drop(server);
    let _ = Command::new("docker").args(["rmi", &image]).output();
}

#[test]
fn calls_run_through_a_tls_engine_with_client_certificates() {
    require_images(&["ferrite/hello"]);
    let fixture = Fixture("tls-proxy.sh", tempfile::tempdir().unwrap());
    let vars = script(
        "tls-proxy.sh",
        &["start", fixture.1.path().to_str().unwrap()],
    );
    let (host, certs) = (
        vars["DOCKER_HOST"].clone(),
        vars["DOCKER_CERT_PATH"].clone(),
    );
    let server = TestServer::start_with_env(&[
        ("DOCKER_HOST", &host),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", &certs),
    ]);
    create_route(
        &server,
        "tls",
        json!({"path":"/hello","image":"ferrite/hello"}),
    );
    for name in ["One", "Two"] {
        let reply = post(&server, "/r/tls/hello", format!(r#"{{"name":"{name}"}}"#));
        assert_eq!(
            (reply.status, reply.text()),
            (200, format!("Hello {name}!\n"))
        );
    }
    drop(server);

    // Without the client certificate the engine is refused, at start, in one line.
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["server", "--port", "0", "--db-url"])
        .arg(format!("sqlite://{}/f.db", empty.path().display()))
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ca.pem is missing"), "{stderr}");
}

#[test]
fn a_restarted_node_removes_its_leftovers() {
    require_images(&["ferrite/hello"]);
    let mut server = TestServer::start();
    create_route(
        &server,
        "left",
        json!({"path":"/hello","image":"ferrite/hello"}),
    );
    assert_eq!(post(&server, "/r/left/hello", "").status, 200);
    // Containers are started ahead for the next calls.
    assert!(eventually(Duration::from_secs(20), || !node_containers(
        &server.node_id
    )
    .is_empty()));
    server.restart(); // SIGKILL: nothing is cleaned up by the dying process
    assert!(
        eventually(Duration::from_secs(10), || node_containers(&server.node_id)
            .iter()
            .all(|(_, s, _)| s == "running")),
        "only fresh containers started ahead remain: {:?}",
        node_containers(&server.node_id)
    );
    let before = node_containers(&server.node_id);
    // SIGTERM: the node removes every container it has.
    assert!(server.terminate().success());
    assert!(node_containers(&server.node_id).is_empty(), "{before:?}");
}

#[test]
fn a_dropped_client_does_not_leave_its_container() {
    require_images(&["ferrite/sleep"]);
    let server = TestServer::start_with_env(&[("FERRITE_PRESTART_MAX", "0")]);
    create_route(
        &server,
        "drop",
        json!({"path":"/slow","image":"ferrite/sleep","timeout":60}),
    );
    let quick = client_with_timeout(Duration::from_secs(2));
    assert!(quick
        .post(format!("{}/r/drop/slow", server.url))
        .body("30")
        .send()
        .is_err());
    assert!(
        eventually(Duration::from_secs(10), || node_containers(&server.node_id)
            .is_empty()),
        "{:?}",
        node_containers(&server.node_id)
    );
}

/// A field of a JSON log line, at the top or among its `fields`.
fn log_field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.get(name)
        .or_else(|| line.get("fields").and_then(|f| f.get(name)))
        .and_then(Value::as_str)
}

/// A burst of more calls than containers ready: each waiting call takes the
/// first container of its route that becomes ready, whichever start made it
/// (started ahead, its own, another waiting call's). With one start at a
/// time (`FERRITE_MAX_CONCURRENT_STARTS=1`) containers become ready in the
/// order they start, so the containers that served the burst are the first
/// ones started since it began, with none left out: a container started
/// ahead never waits unused while a call waits for its own. Each container
/// serves one call, and a call id in a container's labels is the id of a
/// call that asked for it.
#[test]
fn a_waiting_call_takes_the_first_container_that_becomes_ready() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start_with_env(&[
        ("FERRITE_MAX_CONCURRENT_STARTS", "1"),
        ("LOG_FORMAT", "json"),
    ]);
    create_route(
        &server,
        "burst",
        json!({"path":"/hello","image":"ferrite/hello"}),
    );
    assert_eq!(post(&server, "/r/burst/hello", "").status, 200);
    let prestarted = || {
        client()
            .get(format!("{}/health", server.url))
            .send()
            .and_then(|r| r.json::<Value>())
            .map_or(0, |h| h["prestarted_containers"].as_u64().unwrap_or(0))
    };
    assert!(eventually(Duration::from_secs(30), || prestarted() >= 1));

    let unix_now = || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        format!("{:.3}", now.as_secs_f64())
    };
    let since = unix_now();
    const CALLS: usize = 12;
    let burst: Vec<_> = (0..CALLS)
        .map(|i| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                let response = client()
                    .post(format!("{url}/r/burst/hello"))
                    .body(format!(r#"{{"name":"{i}"}}"#))
                    .send()
                    .unwrap();
                let status = response.status().as_u16();
                let id = response.headers()["fn-call-id"]
                    .to_str()
                    .unwrap()
                    .to_string();
                (i, status, id, response.text().unwrap())
            })
        })
        .collect();
    let mut calls = std::collections::HashSet::new();
    for call in burst {
        let (i, status, id, body) = call.join().unwrap();
        assert_eq!((status, body), (200, format!("Hello {i}!\n")));
        calls.insert(id);
    }
    let until = unix_now();

    // Which container served which call: the node's `call finished` lines.
    let served: HashMap<String, String> = server
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| log_field(l, "message") == Some("call finished"))
        .filter_map(|l| {
            let call = log_field(&l, "call_id")?.to_string();
            let container = log_field(&l, "container")?.to_string();
            calls.contains(&call).then_some((call, container))
        })
        .collect();
    assert_eq!(served.len(), CALLS, "{}", server.log());
    let containers: std::collections::HashSet<&String> = served.values().collect();
    assert_eq!(
        containers.len(),
        CALLS,
        "one call per container: {served:?}"
    );

    // The node's containers started since the burst began, in order, with
    // the call id of their labels.
    let output = Command::new("docker")
        .args(["events", "--since", &since, "--until", &until, "--filter"])
        .arg(format!("label=org.ferrite.node={}", server.node_id))
        .args([
            "--filter",
            "event=start",
            "--format",
            "{{.ID}} {{index .Actor.Attributes \"org.ferrite.call_id\"}}",
        ])
        .output()
        .expect("docker events");
    assert!(output.status.success());
    let started: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let (id, call) = l.split_once(' ').unwrap_or((l, ""));
            (id.get(..12).unwrap_or(id).to_string(), call.to_string())
        })
        .collect();
    for (id, call) in &started {
        assert!(
            call.is_empty() || calls.contains(call),
            "container {id} is labelled with call {call}, not one of the burst's"
        );
    }
    let used: Vec<bool> = started
        .iter()
        .map(|(id, _)| containers.contains(id))
        .collect();
    let first_unused = used.iter().position(|u| !u).unwrap_or(used.len());
    assert!(
        used[first_unused..].iter().all(|u| !u),
        "a container started earlier stayed unused while a later one served a call: {started:?} {used:?}"
    );
    assert!(
        first_unused > 0,
        "the burst waited for no start: {started:?}"
    );
}
