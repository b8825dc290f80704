//! `GET /metrics` against the real binary and engine: cold, hot, async and
//! rejected calls, then one scrape whose series and counts must match what
//! the test did, exactly where the test knows the number.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{client, create_route, eventually, output_with_stdin, require_images, TestServer};
use reqwest::blocking::Client;
use serde_json::json;

/// One series: its name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// The samples of a scrape in the text format: every line that is not a
/// comment is `name{label="value",...} value`.
fn parse(text: &str) -> HashMap<Series, f64> {
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut labels: Vec<(String, String)> = labels
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                (key.to_string(), value.trim_end_matches('"').to_string())
            })
            .collect();
        labels.sort();
        samples.insert((name.to_string(), labels), value);
    }
    samples
}

struct Scrape(HashMap<Series, f64>);

/// The text of one scrape.
fn scrape_text(server: &TestServer) -> String {
    let reply = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.text().unwrap()
}

/// Prometheus' own linter (`promtool check metrics`, from the Debian
/// package) accepts the exposition: names, types, HELP, units.
#[track_caller]
fn assert_promtool_accepts(text: &str) {
    let output = output_with_stdin(
        std::process::Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Scrape {
    fn take(server: &TestServer) -> Scrape {
        Scrape(parse(&scrape_text(server)))
    }

    /// The value of `name` with exactly `labels`, if it is there.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.0.get(&(name.to_string(), labels)).copied()
    }

    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?} in {:#?}", self.names()))
    }

    fn names(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.0.keys().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Call `path` on `server` with a small body; its status and call id.
fn call(http: &Client, server: &TestServer, path: &str) -> (u16, Option<String>) {
    let reply = http
        .post(format!("{}{path}", server.url))
        .body(r#"{"name":"Johnny"}"#)
        .send()
        .unwrap();
    let id = reply
        .headers()
        .get("fn-call-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (reply.status().as_u16(), id)
}

#[test]
fn calls_containers_queue_api_and_process_are_measured() {
    require_images(&[
        "ferrite/hello",
        "ferrite/hot-hello",
        "ferrite/fail",
        "ferrite/sleep",
        "ferrite/oom",
    ]);
    let server = TestServer::start();
    let http = client();
    create_route(
        &server,
        "m",
        json!({"path": "/cold", "image": "ferrite/hello"}),
    );
    create_route(
        &server,
        "m",
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
    );
    create_route(
        &server,
        "m",
        json!({"path": "/later", "image": "ferrite/hello", "type": "async"}),
    );
    // One call that fails, one that times out, one the OOM killer ends.
    create_route(
        &server,
        "bad",
        json!({"path": "/fail", "image": "ferrite/fail", "config": {"EXIT_CODE": "3"}}),
    );
    create_route(
        &server,
        "bad",
        json!({"path": "/slow", "image": "ferrite/sleep", "timeout": 1}),
    );
    create_route(
        &server,
        "bad",
        json!({"path": "/oom", "image": "ferrite/oom", "memory": 16}),
    );
    let mut call_ids = Vec::new();

    const COLD: usize = 3;
    const HOT: usize = 5;
    const ASYNC: usize = 2;
    for _ in 0..COLD {
        let (status, id) = call(&http, &server, "/r/m/cold");
        assert_eq!(status, 200);
        call_ids.extend(id);
    }
    for _ in 0..HOT {
        let (status, id) = call(&http, &server, "/r/m/hot");
        assert_eq!(status, 200);
        call_ids.extend(id);
    }
    for (path, expected) in [("/r/bad/fail", 500), ("/r/bad/oom", 500)] {
        assert_eq!(call(&http, &server, path).0, expected, "{path}");
    }
    let slow = http
        .post(format!("{}/r/bad/slow", server.url))
        .body("30")
        .send()
        .unwrap();
    assert_eq!(slow.status(), 504);
    let mut queued = Vec::new();
    for _ in 0..ASYNC {
        let (status, id) = call(&http, &server, "/r/m/later");
        assert_eq!(status, 202);
        queued.extend(id);
    }
    assert_eq!(queued.len(), ASYNC, "each async call has an id");
    let done = |id: &String| {
        let call: serde_json::Value = http
            .get(format!("{}/v1/apps/m/calls/{id}", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        call["call"]["status"] == "success"
    };
    assert!(
        eventually(Duration::from_secs(60), || queued.iter().all(&done)),
        "the async calls succeed"
    );
    call_ids.extend(queued);

    // An app allowing one call per second: calls in a row until one is
    // turned away (429); every call is either admitted or rejected.
    let limited = http
        .post(format!("{}/v1/apps", server.url))
        .body(json!({"app": {"name": "lim", "limits": {"rate": 1, "burst": 1}}}).to_string())
        .send()
        .unwrap();
    assert_eq!(limited.status(), 200);
    create_route(
        &server,
        "lim",
        json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
    );
    let (mut admitted, mut rejected) = (0, 0);
    while rejected == 0 {
        assert!(admitted < 20, "the rate limit never turned a call away");
        match call(&http, &server, "/r/lim/hot") {
            (200, _) => admitted += 1,
            (429, _) => rejected += 1,
            (other, _) => panic!("status {other}"),
        }
    }
    // An unknown route is not labelled per route.
    assert_eq!(call(&http, &server, "/r/m/no-such-route").0, 404);

    // The management API: a known route and an unknown app.
    let route = http
        .get(format!("{}/v1/apps/m/routes/cold", server.url))
        .send()
        .unwrap();
    assert_eq!(route.status(), 200);
    let missing = http
        .get(format!("{}/v1/apps/no-such-app", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The queue is sampled every few seconds: empty again once the async
    // calls are done.
    assert!(
        eventually(Duration::from_secs(30), || {
            let scrape = Scrape::take(&server);
            scrape.get("ferrite_async_queue_depth", &[]) == Some(0.0)
        }),
        "the queue depth comes back to 0"
    );
    // The cold route keeps a container started ahead for its next call.
    let prestarted = [("app", "m"), ("route", "/cold"), ("state", "prestarted")];
    assert!(
        eventually(Duration::from_secs(30), || {
            Scrape::take(&server)
                .get("ferrite_containers", &prestarted)
                .is_some_and(|n| n >= 1.0)
        }),
        "a container started ahead is counted"
    );
    let text = scrape_text(&server);
    assert_promtool_accepts(&text);
    let scrape = Scrape(parse(&text));

    // Calls, by route, kind and status.
    let calls = |app, route, kind, status| {
        scrape.value(
            "ferrite_calls_total",
            &[
                ("app", app),
                ("route", route),
                ("kind", kind),
                ("status", status),
            ],
        )
    };
    assert_eq!(calls("m", "/cold", "sync", "success"), COLD as f64);
    assert_eq!(calls("m", "/cold", "sync", "error"), 0.0);
    assert_eq!(calls("m", "/hot", "sync", "success"), HOT as f64);
    assert_eq!(calls("m", "/later", "async", "success"), ASYNC as f64);
    assert_eq!(calls("lim", "/hot", "sync", "success"), admitted as f64);
    assert_eq!(calls("lim", "/hot", "sync", "rejected"), rejected as f64);
    assert_eq!(calls("bad", "/fail", "sync", "error"), 1.0);
    assert_eq!(calls("bad", "/slow", "sync", "timeout"), 1.0);
    assert_eq!(calls("bad", "/oom", "sync", "killed"), 1.0);
    assert_eq!(calls("bad", "/oom", "sync", "error"), 0.0);

    // Whole calls and their phases: one observation per call that ran.
    for (route, kind, count) in [
        ("/cold", "sync", COLD),
        ("/hot", "sync", HOT),
        ("/later", "async", ASYNC),
    ] {
        let labels = [("app", "m"), ("route", route), ("kind", kind)];
        assert_eq!(
            scrape.value("ferrite_call_duration_seconds_count", &labels),
            count as f64,
            "{route}"
        );
        for phase in ["admission", "container", "run", "answer"] {
            let labels = [
                ("app", "m"),
                ("route", route),
                ("kind", kind),
                ("phase", phase),
            ];
            assert_eq!(
                scrape.value("ferrite_call_phase_seconds_count", &labels),
                count as f64,
                "{route} {phase}"
            );
        }
    }
    let run_sum = scrape.value(
        "ferrite_call_phase_seconds_sum",
        &[
            ("app", "m"),
            ("route", "/cold"),
            ("kind", "sync"),
            ("phase", "run"),
        ],
    );
    assert!(run_sum > 0.0, "cold calls took time to run: {run_sum}");
    let bucket = scrape.value(
        "ferrite_call_duration_seconds_bucket",
        &[
            ("app", "m"),
            ("route", "/hot"),
            ("kind", "sync"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(bucket, HOT as f64, "the +Inf bucket holds every call");
    // Rejected calls did not run: no phases, but a duration each.
    let lim = [("app", "lim"), ("route", "/hot"), ("kind", "sync")];
    assert_eq!(
        scrape.value("ferrite_call_duration_seconds_count", &lim),
        (admitted + rejected) as f64
    );

    // Cold starts: the first cold call had no container started ahead, the
    // first hot call started the route's container.
    for route in ["/cold", "/hot"] {
        let starts = scrape.value(
            "ferrite_cold_starts_total",
            &[("app", "m"), ("route", route)],
        );
        assert!(starts >= 1.0, "{route}: {starts}");
    }
    // The hot route's one container waits for the next call.
    let containers = |state| {
        scrape.value(
            "ferrite_containers",
            &[("app", "m"), ("route", "/hot"), ("state", state)],
        )
    };
    assert_eq!(containers("hot_idle"), 1.0);
    assert_eq!(containers("hot_busy"), 0.0);

    // Async: one attempt per call, none again.
    let route = [("app", "m"), ("route", "/later")];
    assert_eq!(
        scrape.value("ferrite_async_attempts_total", &route),
        ASYNC as f64
    );
    assert_eq!(scrape.value("ferrite_async_retries_total", &route), 0.0);
    assert!(scrape
        .get("ferrite_async_oldest_queued_seconds", &[])
        .is_some());

    // The API by route template, never the raw path.
    let api = |route, status| {
        scrape.get(
            "ferrite_api_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert!(api("/v1/apps/{app}/routes/{*path}", "200").is_some_and(|n| n >= 1.0));
    assert!(api("/v1/apps/{app}/calls/{id}", "200").is_some_and(|n| n >= ASYNC as f64));
    assert_eq!(api("/v1/apps/{app}", "404"), Some(1.0));
    assert!(api("/metrics", "200").is_some_and(|n| n >= 1.0));
    assert!(
        scrape
            .get(
                "ferrite_api_request_duration_seconds_count",
                &[("method", "GET"), ("route", "/v1/apps/{app}")]
            )
            .is_some_and(|n| n >= 1.0),
        "API durations"
    );

    // The process.
    assert!(scrape.value("process_resident_memory_bytes", &[]) > 0.0);
    assert!(scrape.value("process_open_fds", &[]) > 0.0);
    assert!(scrape.get("process_cpu_seconds_total", &[]).is_some());

    // Bounded labels: no call id, no raw path, no unknown route.
    assert_eq!(call_ids.len(), COLD + HOT + ASYNC);
    for (name, labels) in scrape.0.keys() {
        for (key, value) in labels {
            assert!(
                !call_ids.iter().any(|id| value.contains(id.as_str())),
                "{name}: a call id in {key}={value}"
            );
            assert!(
                !value.starts_with("/r/") && !value.contains("no-such"),
                "{name}: a raw path in {key}={value}"
            );
        }
    }
}

/// The PromQL of the "Metrics" section of docs/operating.md parses, by
/// Prometheus' own parser (`promtool check rules`, each query a recording
/// rule).
#[test]
fn the_documented_queries_are_promql() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operating.md"
    ))
    .expect("docs/operating.md");
    let section = doc
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Metrics section");
    let questions = section
        .split("Questions in PromQL:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").nth(1))
        .expect("a list of questions");
    let queries: Vec<&str> = questions
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.contains('('))
        .collect();
    assert!(queries.len() >= 5, "{queries:?}");
    let mut rules = String::from("groups:\n  - name: docs\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        assert!(query.contains("ferrite_"), "{query}");
        let quoted = query.replace('\'', "''");
        rules.push_str(&format!(
            "      - record: doc_query_{i}\n        expr: '{quoted}'\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.yml");
    std::fs::write(&file, rules).unwrap();
    let output = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (the prometheus package)");
    assert!(
        output.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
