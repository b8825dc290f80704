// Long: the watchdog on the host and in service images share this file's Watchdog and Docker helpers; split, they would be two binaries linking the whole crate.
//! `ferrite watchdog` and `ferrite services image`: the watchdog binary run
//! on the host around a shell function (`format: default`) and around the
//! chaos hot function (`format: http`): the key it takes calls with, body,
//! status, environment, exit codes, timeouts with nothing left running,
//! bounded concurrency, process replacement, SIGTERM. Then service images
//! built by the CLI from the example images, run as plain containers and
//! called over HTTP.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, free_port, output_with_stdin, require_images};
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The key the watchdogs of these tests are started with, as Ferrite sets
/// one on each service it makes (FERRITE_WATCHDOG_KEY).
const KEY: &str = "0123456789abcdef-test-key";

/// A client that sends the key, as Ferrite does with every call.
fn client() -> Client {
    keyed_client(Duration::from_secs(60))
}

fn keyed_client(timeout: Duration) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("ferrite-watchdog-key", KEY.parse().unwrap());
    Client::builder()
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The test function for `format: default`: what it does depends on the
/// route it is called on.
const FUNCTION: &str = r#"#!/bin/sh
case "$ROUTE" in
  /fail) echo "oops from the function" >&2; exit 3 ;;
  /hang) echo $$ > "$PIDFILE"; sleep 30 & echo $! >> "$PIDFILE"; wait; exit 0 ;;
  /slow) sleep 1; echo done; exit 0 ;;
  /mark) echo ran >> "$MARKFILE"; echo marked; exit 0 ;;
esac
printf 'body=%s\n' "$(cat)"
env
"#;

/// A `ferrite watchdog` process on a free port; stopped when dropped.
struct Watchdog {
    child: Option<Child>,
    url: String,
    dir: tempfile::TempDir,
}

impl Watchdog {
    /// Start `ferrite watchdog FLAGS -- COMMAND` with the test key (unless
    /// `env` sets FERRITE_WATCHDOG_KEY otherwise) and wait until it is ready.
    fn start(flags: &[&str], command: &[&str], env: &[(&str, &str)]) -> Watchdog {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("watchdog.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(["watchdog", "--port", &port.to_string()])
            .args(flags)
            .arg("--")
            .args(command)
            .env("FERRITE_WATCHDOG_KEY", KEY)
            .envs(env.iter().copied())
            .env("FERRITE_WATCHDOG_LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut watchdog = Watchdog {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        watchdog.wait_ready();
        watchdog
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("watchdog exited with {status}:\n{}", self.log());
            }
            let ready = client()
                .get(format!("{}/_ferrite/health", self.url))
                .send()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("watchdog not ready:\n{}", self.log());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("watchdog.log")).unwrap_or_default()
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        let reply = client()
            .post(format!("{}{path}", self.url))
            .body(body.to_string())
            .send()
            .unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    }

    /// SIGTERM, then wait for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        signal(child.id(), "TERM");
        child.wait().unwrap()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `/proc/PID/stat`: (state, parent pid).
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Running (not zombie) processes.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// Every process below `pid`, zombies included.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((_, parent)) = stat(child) {
            parents.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for &c in parents.get(&p).map(Vec::as_slice).unwrap_or_default() {
            found.push(c);
            next.push(c);
        }
    }
    found
}

/// A watchdog with `flags` over the shell function, written to `dir`.
fn start_function(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Watchdog {
    let script = dir.join("function.sh");
    std::fs::write(&script, FUNCTION).unwrap();
    Watchdog::start(flags, &["/bin/sh", script.to_str().unwrap()], env)
}

/// The processes the function wrote to `pidfile` (itself and what it started).
fn recorded_pids(pidfile: &Path) -> Vec<u32> {
    std::fs::read_to_string(pidfile)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Within 2 s, none of `pids` runs.
#[track_caller]
fn assert_gone(pids: &[u32]) {
    assert!(
        eventually(Duration::from_secs(2), || !pids.iter().any(|p| alive(*p))),
        "left running: {pids:?}"
    );
}

/// `KEY=VALUE` lines as a map (the function's `env` output).
fn vars(output: &str) -> HashMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn error_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    value["error"]["message"].as_str().unwrap().to_string()
}

#[test]
fn default_format_runs_the_command_once_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let watchdog = start_function(
        dir.path(),
        &["--app-name", "myapp", "--memory", "64", "--timeout", "5"],
        &[("MY_CONFIG", "from the service")],
    );

    let reply = client()
        .post(format!("{}/hello?x=1", watchdog.url))
        .header("X-Trace", "t1")
        .header("Fn-Call-Id", "call-1")
        .body("the body")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "text/plain; charset=utf-8");
    let env = vars(&reply.text().unwrap());
    let port = watchdog.url.rsplit(':').next().unwrap();
    for (name, value) in [
        ("body", "the body"),
        ("METHOD", "POST"),
        ("ROUTE", "/hello"),
        ("REQUEST_URL", &format!("http://127.0.0.1:{port}/hello?x=1")),
        ("APP_NAME", "myapp"),
        ("CALL_ID", "call-1"),
        ("FN_FORMAT", "default"),
        ("FN_MEMORY", "64"),
        ("FN_TIMEOUT", "5"),
        ("HEADER_X_TRACE", "t1"),
        ("MY_CONFIG", "from the service"),
    ] {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{name}: {env:?}"
        );
    }
    assert!(!env.contains_key("HEADER_FN_CALL_ID"), "{env:?}");

    // A GET's input is its `payload` parameter; Ferrite's headers name the call.
    let reply = client()
        .get(format!("{}/ignored?payload=hi+there", watchdog.url))
        .header("Fn-App-Name", "other")
        .header("Fn-Route", "/from/ferrite")
        .header("Fn-Request-Url", "https://api.example/r/other/from/ferrite")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let env = vars(&reply.text().unwrap());
    assert_eq!(env["body"], "hi there");
    assert_eq!(env["METHOD"], "GET");
    assert_eq!(env["APP_NAME"], "other");
    assert_eq!(env["ROUTE"], "/from/ferrite");
    assert_eq!(
        env["REQUEST_URL"],
        "https://api.example/r/other/from/ferrite"
    );
    assert_eq!(env["CALL_ID"].len(), 36, "a fresh UUID: {}", env["CALL_ID"]);
    assert!(
        descendants(watchdog.pid()).is_empty(),
        "nothing runs between calls"
    );
}

#[test]
fn only_calls_with_the_key_reach_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let markfile = dir.path().join("marks");
    let watchdog = start_function(dir.path(), &[], &[("MARKFILE", markfile.to_str().unwrap())]);
    let plain = common::client();
    let mark = format!("{}/mark", watchdog.url);

    // Without the key, or with another: 401, and the function never ran.
    for key in [None, Some("not-the-key"), Some(&KEY[1..])] {
        let mut request = plain.post(&mark);
        if let Some(key) = key {
            request = request.header("Ferrite-Watchdog-Key", key);
        }
        let reply = request.send().unwrap();
        assert_eq!(reply.status(), 401, "{key:?}");
        assert_eq!(reply.headers()["ferrite-watchdog-refused"], "key");
        let message = error_message(&reply.text().unwrap());
        assert!(
            message.starts_with("this function takes calls only from Ferrite"),
            "{message}"
        );
    }
    assert!(!markfile.exists(), "a refused call ran the function");
    // The health check stays open and says nothing more.
    let health = plain
        .get(format!("{}/_ferrite/health", watchdog.url))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().unwrap(), "ok\n");

    // With the key: the call runs, and the function sees neither the key's
    // header nor the key in its environment.
    let (status, body) = watchdog.post("/mark", "");
    assert_eq!((status, body.as_str()), (200, "marked\n"));
    assert_eq!(std::fs::read_to_string(&markfile).unwrap(), "ran\n");
    let (status, body) = watchdog.post("/", "");
    assert_eq!(status, 200);
    let env = vars(&body);
    assert!(!env.contains_key("FERRITE_WATCHDOG_KEY"), "{env:?}");
    assert!(!env.contains_key("HEADER_FERRITE_WATCHDOG_KEY"), "{env:?}");
    assert!(!body.contains(KEY), "{body}");
    // Its processes cannot gain privileges.
    let status = std::fs::read_to_string(format!("/proc/{}/status", watchdog.pid())).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");

    // http format: the request the hot process gets has no key either.
    let hot = Watchdog::start(&["--format", "http"], &[&chaos()], &[]);
    let refused = plain.post(format!("{}/hello", hot.url)).send().unwrap();
    assert_eq!(refused.status(), 401);
    let seen = echo(&hot);
    assert!(
        seen["headers"].get("ferrite-watchdog-key").is_none(),
        "{seen}"
    );
    assert_eq!(seen["requests"], 1, "the refused call never reached it");
}

#[test]
fn without_a_key_the_watchdog_starts_only_when_told_to_take_any_call() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["watchdog", "--port", &free_port().to_string(), "--", "cat"])
        .env_remove("FERRITE_WATCHDOG_KEY")
        .env_remove("FERRITE_WATCHDOG_NO_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("FERRITE_WATCHDOG_KEY is not set") && stderr.contains("--no-key"),
        "{stderr}"
    );

    // --no-key: anyone may call. An empty key counts as none.
    let open = Watchdog::start(&["--no-key"], &["cat"], &[("FERRITE_WATCHDOG_KEY", "")]);
    let reply = common::client()
        .post(&open.url)
        .body("anyone")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "anyone");

    // A key set wins over --no-key (a route's config cannot open a service).
    let keyed = Watchdog::start(&[], &["cat"], &[("FERRITE_WATCHDOG_NO_KEY", "true")]);
    let reply = common::client().post(&keyed.url).send().unwrap();
    assert_eq!(reply.status(), 401);
}

#[test]
fn default_format_failures_exit_codes_and_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let watchdog = start_function(
        dir.path(),
        &["--timeout", "1"],
        &[("PIDFILE", pidfile.to_str().unwrap())],
    );

    let (status, body) = watchdog.post("/fail", "");
    assert_eq!(status, 500);
    assert_eq!(error_message(&body), "exit code 3");
    assert!(
        eventually(Duration::from_secs(2), || watchdog
            .log()
            .contains("oops from the function")),
        "the function's stderr is the watchdog's:\n{}",
        watchdog.log()
    );
    // The watchdog's own failures name the call (`Fn-Call-Id`), as the
    // server's answers to failed calls do.
    let reply = client()
        .post(format!("{}/fail", watchdog.url))
        .header("Fn-Call-Id", "c-1")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 500);
    assert_eq!(
        reply.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"request_id": "c-1", "error": {"message": "exit code 3"}})
    );

    // Past the timeout: 504, and the function and what it started are gone.
    let started = Instant::now();
    let (status, body) = watchdog.post("/hang", "");
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert_eq!(error_message(&body), "Timed out");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let pids = recorded_pids(&pidfile);
    assert_eq!(pids.len(), 2, "the function and its background sleep");
    assert_gone(&pids);
    assert!(
        descendants(watchdog.pid()).is_empty(),
        "no process, not even a zombie: {:?}",
        descendants(watchdog.pid())
    );

    // Calls are answered as before after all that.
    let (status, body) = watchdog.post("/", "again");
    assert_eq!((status, vars(&body)["body"].as_str()), (200, "again"));
}

#[test]
fn a_caller_that_hangs_up_stops_its_call() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let watchdog = start_function(
        dir.path(),
        &["--timeout", "60"],
        &[("PIDFILE", pidfile.to_str().unwrap())],
    );
    let gave_up = keyed_client(Duration::from_millis(500))
        .post(format!("{}/hang", watchdog.url))
        .send();
    assert!(gave_up.is_err());
    let pids = recorded_pids(&pidfile);
    assert_gone(&pids);
    assert!(eventually(Duration::from_secs(2), || descendants(
        watchdog.pid()
    )
    .is_empty()));
}

/// `n` calls at once; how long until the last answer, and the statuses.
fn at_once(url: &str, n: usize, body: &str) -> (Duration, Vec<(u16, String)>) {
    let started = Instant::now();
    let replies = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    let reply = client().post(url).body(body.to_string()).send().unwrap();
                    (reply.status().as_u16(), reply.text().unwrap())
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    (started.elapsed(), replies)
}

#[test]
fn default_format_concurrency_is_bounded_and_excess_calls_wait() {
    let dir = tempfile::tempdir().unwrap();
    let watchdog = start_function(dir.path(), &["--concurrency", "2"], &[]);
    // Four calls of a second each through two slots: two rounds.
    let (took, replies) = at_once(&format!("{}/slow", watchdog.url), 4, "");
    assert!(
        replies.iter().all(|(s, b)| *s == 200 && b == "done\n"),
        "{replies:?}"
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_millis(3500), "{took:?}");
}

#[test]
fn sigterm_lets_running_calls_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut watchdog = start_function(dir.path(), &[], &[]);
    let url = format!("{}/slow", watchdog.url);
    let running = std::thread::spawn(move || {
        let reply = client().post(url).send().unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid = watchdog.pid();
    let status = watchdog.terminate();
    assert!(status.success(), "{status}:\n{}", watchdog.log());
    assert_eq!(running.join().unwrap(), (200, "done\n".to_string()));
    assert!(descendants(pid).is_empty());
}

#[test]
fn sigterm_kills_calls_that_outlive_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let mut watchdog = start_function(
        dir.path(),
        &["--grace", "1"],
        &[("PIDFILE", pidfile.to_str().unwrap())],
    );
    let url = format!("{}/hang", watchdog.url);
    let running = std::thread::spawn(move || client().post(url).send().map(|r| r.status()));
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.lines().count() == 2)
    }));
    let started = Instant::now();
    let status = watchdog.terminate();
    assert!(status.success(), "{status}:\n{}", watchdog.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let _ = running.join();
    let pids = recorded_pids(&pidfile);
    assert_gone(&pids);
}

/// The chaos hot function, compiled by scripts/images.sh; it runs on the
/// host as well (a static binary).
fn chaos() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/functions/chaos/chaos"
    );
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: run scripts/images.sh"
    );
    path.to_string()
}

/// A chaos call: (status, headers, body).
fn chaos_call(
    watchdog: &Watchdog,
    path: &str,
    behaviour: Value,
) -> (u16, HashMap<String, String>, String) {
    let reply = client()
        .post(format!("{}{path}", watchdog.url))
        .body(behaviour.to_string())
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    let headers = reply
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    (status, headers, reply.text().unwrap())
}

/// The echo of a chaos call that must succeed.
fn echo(watchdog: &Watchdog) -> Value {
    let (status, _, body) = chaos_call(watchdog, "/hello", json!({}));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn http_format_serves_calls_with_one_hot_process_and_replaces_broken_ones() {
    let watchdog = Watchdog::start(
        &[
            "--format",
            "http",
            "--app-name",
            "myapp",
            "--memory",
            "64",
            "--timeout",
            "2",
        ],
        &[&chaos()],
        &[],
    );
    assert_eq!(
        descendants(watchdog.pid()).len(),
        1,
        "one process, started ahead"
    );

    let first = echo(&watchdog);
    let port = watchdog.url.rsplit(':').next().unwrap();
    assert_eq!(first["method"], "POST");
    assert_eq!(first["uri"], "/hello");
    assert_eq!(first["requests"], 1);
    let headers = &first["headers"];
    assert_eq!(headers["fn-app-name"], "myapp");
    assert_eq!(headers["fn-route"], "/hello");
    assert_eq!(headers["fn-method"], "POST");
    assert_eq!(
        headers["fn-request-url"],
        format!("http://127.0.0.1:{port}/hello")
    );
    assert_eq!(headers["fn-call-id"].as_str().unwrap().len(), 36);
    assert_eq!(first["env"]["FN_FORMAT"], "http");
    assert_eq!(first["env"]["APP_NAME"], "myapp");
    assert_eq!(first["env"]["FN_MEMORY"], "64");
    assert_eq!(first["env"]["FN_TIMEOUT"], "2");
    let second = echo(&watchdog);
    assert_eq!(second["pid"], first["pid"], "the same process serves again");
    assert_eq!(second["requests"], 2);

    // Status and headers pass through.
    let (status, headers, body) = chaos_call(
        &watchdog,
        "/made",
        json!({"status": 201, "headers": {"X-Fn": "yes"}, "body": "made"}),
    );
    assert_eq!((status, body.as_str()), (201, "made"));
    assert_eq!(headers["x-fn"], "yes");

    // Each way of breaking: the call gets 502 (504), the next a fresh process.
    let mut pid = second["pid"].clone();
    for (behaviour, expected, message) in [
        (json!({"crash": true}), 502, "valid HTTP"),
        (json!({"exit": 4}), 502, ""),
        (json!({"malformed": true}), 502, "valid HTTP"),
        (json!({"no_length": true}), 502, "Content-Length"),
        (json!({"sleep_ms": 5000}), 504, "Timed out"),
    ] {
        let (status, _, body) = chaos_call(&watchdog, "/break", behaviour.clone());
        assert_eq!(status, expected, "{behaviour}: {body}");
        assert!(
            error_message(&body).contains(message),
            "{behaviour}: {body}"
        );
        let old = pid.as_u64().unwrap() as u32;
        assert!(
            eventually(Duration::from_secs(2), || !alive(old)),
            "{behaviour}: the broken process {old} is still there"
        );
        let next = echo(&watchdog);
        assert_ne!(next["pid"], pid, "{behaviour}: replaced");
        assert_eq!(next["requests"], 1);
        pid = next["pid"].clone();
        assert!(
            descendants(watchdog.pid()).len() <= 1,
            "{behaviour}: {:?}",
            descendants(watchdog.pid())
        );
    }
}

#[test]
fn http_format_concurrency_keeps_that_many_processes() {
    let watchdog = Watchdog::start(
        &["--format", "http", "--concurrency", "2"],
        &[&chaos()],
        &[],
    );
    assert_eq!(descendants(watchdog.pid()).len(), 2);
    let (took, replies) = at_once(
        &format!("{}/slow", watchdog.url),
        4,
        &json!({"sleep_ms": 1000}).to_string(),
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_millis(3500), "{took:?}");
    let pids: HashSet<u64> = replies
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            serde_json::from_str::<Value>(body).unwrap()["pid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(descendants(watchdog.pid()).len(), 2);
}

#[test]
fn a_command_that_cannot_start() {
    // http: the port is never bound; one line says why.
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args([
            "watchdog",
            "--port",
            &free_port().to_string(),
            "--format",
            "http",
        ])
        .args(["--", "/no/such/function"])
        .env("FERRITE_WATCHDOG_KEY", KEY)
        .env("FERRITE_WATCHDOG_LOG_LEVEL", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/no/such/function"), "{stderr}");

    // default: each call says it.
    let watchdog = Watchdog::start(&[], &["/no/such/function"], &[]);
    let (status, body) = watchdog.post("/", "");
    assert_eq!(status, 500);
    assert!(
        error_message(&body).starts_with("cannot start the function"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------
// Service images, built by the CLI and run as containers.

/// The image the watchdog binary is taken from: Ferrite's own, built from
/// this tree by scripts/deploy-images.sh (the suite does so before the tests).
fn watchdog_image() -> String {
    std::env::var("FERRITE_WATCHDOG_IMAGE").unwrap_or_else(|_| "ferrite/ferrite:latest".into())
}

/// Containers and images a test made; removed when dropped, even on failure.
#[derive(Default)]
struct Leftovers {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", container]);
        }
        for image in &self.images {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// Run the docker CLI (it only sets up and observes here); (success, stdout, stderr).
fn docker(args: &[&str]) -> (bool, String, String) {
    let output = Command::new("docker").args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

/// `ferrite services image SOURCE -t TAG --format FORMAT`; (success, stdout, stderr).
fn build_image(source: &str, tag: &str, format: &str) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["services", "image", source, "-t", tag, "--format", format])
        .args(["--watchdog-image", &watchdog_image()])
        .args(["--label", "org.ferrite.test=1"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

/// Run `image` (with `command` instead of its cmd, if given) with its port
/// on a free host port; the base URL, once the watchdog answers.
fn run_container(
    leftovers: &mut Leftovers,
    image: &str,
    env: &[&str],
    command: &[&str],
) -> (String, String) {
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let mut args = vec!["run", "-d", "--label", "org.ferrite.test=1", "-p", &publish];
    for var in env {
        args.extend(["-e", var]);
    }
    args.push(image);
    args.extend_from_slice(command);
    let (ok, id, err) = docker(&args);
    assert!(ok, "docker run: {err}");
    leftovers.containers.push(id.clone());
    let url = format!("http://127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(20), || {
        client()
            .get(format!("{url}/_ferrite/health"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(ready, "not ready: {}", docker(&["logs", &id]).2);
    (id, url)
}

/// Processes in a container: (pid, state, command) from its /proc.
fn container_processes(id: &str) -> Vec<(u32, char, String)> {
    let (ok, out, err) = docker(&["exec", id, "/bin/sh", "-c", "cat /proc/[0-9]*/stat"]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|line| {
            let open = line.find('(')?;
            let close = line.rfind(')')?;
            let pid = line[..open].trim().parse().ok()?;
            let state = line[close + 2..].chars().next()?;
            Some((pid, state, line[open + 1..close].to_string()))
        })
        .collect()
}

#[test]
fn service_images_run_the_function_behind_http() {
    require_images(&["ferrite/hello", "ferrite/hot-hello", &watchdog_image()]);
    let (ok, help, err) = docker(&[
        "run",
        "--rm",
        "--label",
        "org.ferrite.test=1",
        &watchdog_image(),
        "watchdog",
        "--help",
    ]);
    assert!(
        ok && help.contains("--concurrency"),
        "{} has no watchdog: rebuild it from this tree with scripts/deploy-images.sh ferrite ({err})",
        watchdog_image()
    );
    let mut leftovers = Leftovers::default();
    let unique = std::process::id();

    // A missing source image: one plain line.
    let (ok, _, err) = build_image(
        "ferrite-test/no-such-image:x",
        "ferrite-test/never:x",
        "default",
    );
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ferrite-test/no-such-image:x is not on the Docker engine"),
        "{err}"
    );

    // default format: ferrite/hello, one process per call.
    let hello = format!("ferrite-test/watchdog-hello:{unique}");
    leftovers.images.push(hello.clone());
    let (ok, out, err) = build_image("ferrite/hello", &hello, "default");
    assert!(ok, "{err}");
    assert!(out.contains(&hello), "{out}");
    let (_, config, _) = docker(&[
        "image", "inspect", "-f",
        "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{index .Config.Labels \"org.ferrite.watchdog\"}}",
        &hello,
    ]);
    assert_eq!(
        config,
        r#"["/.ferrite/watchdog","watchdog","--format","default","--"] ["/bin/sh","/fn/hello.sh"] default"#
    );
    // Without a key it does not start; by hand (docs/watchdog.md) it is
    // opened on purpose and takes calls from anyone.
    let (ok, _, err) = docker(&["run", "--rm", "--label", "org.ferrite.test=1", &hello]);
    assert!(!ok);
    assert!(
        err.contains("FERRITE_WATCHDOG_KEY is not set") && err.contains("--no-key"),
        "{err}"
    );
    let (id, url) = run_container(
        &mut leftovers,
        &hello,
        &["FERRITE_WATCHDOG_NO_KEY=true"],
        &[],
    );
    let reply = common::client()
        .post(format!("{url}/r/myapp/hello"))
        .body(r#"{"name":"Johnny"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "Hello Johnny!\n");
    // docker stop: SIGTERM to the watchdog (PID 1), which exits 0 at once.
    let started = Instant::now();
    assert!(docker(&["stop", "-t", "20", &id]).0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &id]).1,
        "0"
    );

    // As PID 1 the watchdog reaps what functions leave behind: their
    // background processes are killed with them and collected.
    let (id, url) = run_container(
        &mut leftovers,
        &hello,
        &[&format!("FERRITE_WATCHDOG_KEY={KEY}")],
        &["/bin/sh", "-c", "sleep 30 & sleep 30 & echo hi"],
    );
    for _ in 0..3 {
        let reply = client().post(&url).send().unwrap();
        assert_eq!(reply.text().unwrap(), "hi\n");
    }
    let settled = eventually(Duration::from_secs(3), || {
        let processes = container_processes(&id);
        // The watchdog, and the shell and cat of `docker exec` themselves.
        processes.iter().all(|(pid, state, command)| {
            *state != 'Z' && command != "sleep" && (*pid != 1 || command == "watchdog")
        })
    });
    assert!(settled, "{:?}", container_processes(&id));

    // The function runs as the watchdog's user (root here, with Docker's
    // default capabilities) yet cannot read the key from the watchdog's
    // environment or reach its sockets: the watchdog is not dumpable. It
    // cannot gain privileges either, nor see the key in its own environment.
    let probe = "if cat /proc/1/environ >/dev/null 2>&1; then echo 'environ open'; else echo 'environ closed'; fi; \
        if dd if=/proc/1/mem bs=1 count=0 2>/dev/null; then echo 'mem open'; else echo 'mem closed'; fi; \
        if readlink /proc/1/fd/0 >/dev/null 2>&1; then echo 'fd open'; else echo 'fd closed'; fi; \
        if env | grep -q FERRITE_WATCHDOG_KEY; then echo 'key seen'; else echo 'key unseen'; fi; \
        grep NoNewPrivs /proc/self/status";
    let (_, url) = run_container(
        &mut leftovers,
        &hello,
        &[&format!("FERRITE_WATCHDOG_KEY={KEY}")],
        &["/bin/sh", "-c", probe],
    );
    let reply = client().post(&url).send().unwrap();
    assert_eq!(reply.status(), 200);
    let seen = reply.text().unwrap();
    for line in [
        "environ closed",
        "mem closed",
        "fd closed",
        "key unseen",
        "NoNewPrivs:\t1",
    ] {
        assert!(seen.contains(line), "{line:?} in {seen:?}");
    }
    // And a call without the key never reaches it.
    let refused = common::client().post(&url).send().unwrap();
    assert_eq!(refused.status(), 401);

    // http format: ferrite/hot-hello, one hot process.
    let hot = format!("ferrite-test/watchdog-hot-hello:{unique}");
    leftovers.images.push(hot.clone());
    let (ok, _, err) = build_image("ferrite/hot-hello", &hot, "http");
    assert!(ok, "{err}");
    let (_, url) = run_container(
        &mut leftovers,
        &hot,
        &[&format!("FERRITE_WATCHDOG_KEY={KEY}")],
        &[],
    );
    for name in ["Johnny", "Mary"] {
        let reply = client()
            .post(format!("{url}/hello"))
            .body(json!({ "name": name }).to_string())
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.text().unwrap(), format!("Hello {name}!\n"));
    }

    // A service image is not made into one again.
    let (ok, _, err) = build_image(&hot, "ferrite-test/twice:x", "http");
    assert!(
        !ok && err.contains("already runs Ferrite's watchdog"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// What the watchdog costs per call (run by hand: --ignored --nocapture).

/// Mean and median of `samples`, in ms.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1000.0 / samples.len() as f64;
    let median = samples[samples.len() / 2].as_secs_f64() * 1000.0;
    format!("mean {mean:.3} ms, median {median:.3} ms")
}

#[test]
#[ignore = "a measurement, not a check: cargo test -p ferrite --test watchdog -- --ignored --nocapture"]
fn overhead_per_call() {
    const CALLS: usize = 300;
    let hello = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/functions/hello/hello.sh"
    );
    let hot_hello = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/functions/hot-hello/hot-hello"
    );
    let body = r#"{"name":"Johnny"}"#;
    let http = client();

    // How long each of CALLS runs of `call` takes.
    let timed = |call: &mut dyn FnMut()| -> Vec<Duration> {
        (0..CALLS)
            .map(|_| {
                let started = Instant::now();
                call();
                started.elapsed()
            })
            .collect()
    };
    // Calls of the hello function through a watchdog at `url`.
    let via_watchdog = |url: &str| {
        timed(&mut || {
            let text = http.post(url).body(body).send().unwrap().text().unwrap();
            assert_eq!(text, "Hello Johnny!\n");
        })
    };

    // default: the script run directly, as a process per call.
    let mut direct = timed(&mut || {
        let output = output_with_stdin(Command::new("/bin/sh").arg(hello), body.as_bytes());
        assert_eq!(String::from_utf8_lossy(&output.stdout), "Hello Johnny!\n");
    });
    let watchdog = Watchdog::start(&["--concurrency", "1"], &["/bin/sh", hello], &[]);
    let mut through = via_watchdog(&watchdog.url);
    drop(watchdog);
    println!("default, direct:        {}", summary(&mut direct));
    println!("default, via watchdog:  {}", summary(&mut through));

    // http: one hot-hello process, requests written to its stdin directly.
    let mut child = Command::new(hot_hello)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut direct = timed(&mut || {
        input.write_all(request.as_bytes()).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            output.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        output.read_exact(&mut answer).unwrap();
        assert_eq!(answer, b"Hello Johnny!\n");
    });
    drop(input);
    child.wait().unwrap();
    let watchdog = Watchdog::start(&["--format", "http"], &[hot_hello], &[]);
    let mut through = via_watchdog(&watchdog.url);
    // The HTTP round trip alone (same client, same server, no function).
    let health = format!("{}/_ferrite/health", watchdog.url);
    let mut bare = timed(&mut || {
        assert_eq!(http.get(&health).send().unwrap().status(), 200);
    });
    println!("http, direct over stdio: {}", summary(&mut direct));
    println!("http, via watchdog:      {}", summary(&mut through));
    println!("HTTP round trip alone:   {}", summary(&mut bare));
}
