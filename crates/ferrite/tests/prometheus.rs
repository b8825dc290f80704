//! A real Prometheus scraping a real node: the figures it queries back are
//! the calls the test made, /metrics needs the token Prometheus is given
//! as docs/operating.md says, and every query of the Grafana dashboard
//! (deploy/grafana/ferrite.json) runs on it, over metrics the node has.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::prometheus::Prometheus;
use common::{client, create_routes, eventually, require_images, TestServer};
use serde_json::{json, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `host:port` of a test server, as a scrape target.
fn target(server: &TestServer) -> &str {
    server.url.trim_start_matches("http://")
}

/// Call `/r/{app}{path}` and return the status.
fn call(server: &TestServer, app: &str, path: &str) -> u16 {
    client()
        .post(format!("{}/r/{app}{path}", server.url))
        .body(r#"{"name":"Prometheus"}"#)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn prometheus_scrapes_a_node_with_a_token_and_counts_its_calls() {
    require_images(&["ferrite/hot-hello"]);
    let dir = tempfile::tempdir().unwrap();
    let key = format!("prometheus-key-{}-0123456789abcdef", std::process::id());
    let key_file = dir.path().join("ferrite-jwt.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", &key)]);
    let reply = client()
        .post(format!("{}/v1/apps/promapp/routes", server.url))
        .bearer_auth(common::token(&key, 600))
        .body(
            json!({"route": {"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}})
                .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    const CALLS: usize = 5;
    for _ in 0..CALLS {
        assert_eq!(call(&server, "promapp", "/hot"), 200);
    }

    // The token as docs/operating.md makes it, in the file Prometheus reads.
    let token = Command::new(format!("{ROOT}/deploy/prometheus/token.py"))
        .arg(&key_file)
        .output()
        .expect("run deploy/prometheus/token.py");
    assert!(
        token.status.success(),
        "token.py: {}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token_file = dir.path().join("ferrite-metrics.token");
    std::fs::write(&token_file, &token.stdout).unwrap();
    let prometheus = Prometheus::start(&[target(&server)], Some(&token_file));
    prometheus.wait_for(
        r#"sum(ferrite_calls_total{app="promapp",route="/hot",status="success"})"#,
        CALLS as f64,
    );
    prometheus.wait_for(r#"up{job="ferrite"}"#, 1.0);
    assert_eq!(prometheus.value("ferrite_store_up == 1"), Some(1.0));
    assert_eq!(
        prometheus.value(r#"sum(ferrite_calls_total{app="promapp",status!="success"})"#),
        Some(0.0),
        "no call failed"
    );

    // Without the token the node refuses the scrape: the target is down.
    let refused = Prometheus::start(&[target(&server)], None);
    refused.wait_for(r#"up{job="ferrite"}"#, 0.0);
    let targets = refused.targets();
    assert!(targets.contains("401"), "{targets}");
}

/// Every PromQL expression of the dashboard, with the dashboard's own
/// variables as a person who picks "All" has them.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            queries.push(expr.to_string());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        // label_values(SELECTOR, LABEL) is Grafana's: its selector is PromQL.
        let definition = variable["definition"].as_str().expect("a definition");
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.to_string())
            .unwrap_or_else(|| panic!("not label_values(...): {definition}"));
        queries.push(inner);
    }
    queries
        .into_iter()
        .map(|q| {
            q.replace("$__rate_interval", "1m")
                .replace("$job", ".*")
                .replace("$app", ".*")
                .replace("$route", ".*")
        })
        .collect()
}

/// The metric names an expression reads (`ferrite_...`, `process_...`).
fn metric_names(promql: &str) -> BTreeSet<String> {
    promql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("ferrite_") || word.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// Whether the server's source names `metric` (less a histogram's suffix).
fn named_in_server_source(metric: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| metric.strip_suffix(suffix))
        .unwrap_or(metric);
    let quoted = format!("\"{base}\"");
    fn search(dir: &Path, quoted: &str) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                search(&path, quoted)
            } else {
                path.extension().is_some_and(|e| e == "rs")
                    && std::fs::read_to_string(&path).is_ok_and(|s| s.contains(quoted))
            }
        })
    }
    search(&Path::new(ROOT).join("crates/ferrite-server/src"), &quoted)
}

/// Series that exist only after an event this test does not make: Swarm
/// services of routes with a service section (crates/ferrite/tests/services.rs
/// makes them).
const AFTER_SERVICE_EVENTS: [&str; 2] = [
    "ferrite_service_replicas",
    "ferrite_autoscaler_decisions_total",
];

#[test]
fn every_query_of_the_grafana_dashboard_runs_on_prometheus() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/grafana/ferrite.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_i64().unwrap() >= 36);
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{panel}");
        }
    }

    require_images(&["ferrite/hot-hello", "ferrite/hello", "ferrite/fail"]);
    let server = TestServer::start();
    create_routes(
        &server,
        "dash",
        [
            json!({"path": "/hot", "image": "ferrite/hot-hello", "format": "http"}),
            json!({"path": "/cold", "image": "ferrite/hello"}),
            json!({"path": "/fail", "image": "ferrite/fail"}),
            json!({"path": "/later", "image": "ferrite/fail", "type": "async", "max_retries": 1}),
        ],
    );
    let prometheus = Prometheus::start(&[target(&server)], None);
    // Calls of every kind and end: success, error, cold and hot, and an
    // async call that is retried once.
    for (path, status) in [("/hot", 200), ("/hot", 200), ("/cold", 200), ("/fail", 500)] {
        assert_eq!(call(&server, "dash", path), status, "{path}");
    }
    assert_eq!(call(&server, "dash", "/later"), 202);
    // Both runs of the async call, and the calls before it, in Prometheus.
    prometheus.wait_for(r#"sum(ferrite_async_attempts_total{app="dash"})"#, 2.0);
    prometheus.wait_for(r#"sum(ferrite_calls_total{app="dash"})"#, 5.0);
    let held: BTreeSet<String> = prometheus.metric_names().into_iter().collect();
    let mut read = BTreeSet::new();
    for query in dashboard_queries(&dashboard) {
        let answer = prometheus.query(&query);
        assert_eq!(answer["status"], "success", "{query}\n{answer}");
        let names = metric_names(&query);
        assert!(!names.is_empty(), "{query} reads no Ferrite metric");
        if names.iter().all(|n| held.contains(n)) {
            // rate() needs two scrapes of a series since the calls: the
            // next ones come within seconds.
            assert!(
                eventually(Duration::from_secs(30), || !prometheus
                    .samples(&query)
                    .is_empty()),
                "{query} has no result over metrics that exist: a label or matcher is wrong"
            );
        }
        read.extend(names);
    }
    for name in &read {
        if held.contains(name) {
            continue;
        }
        assert!(
            AFTER_SERVICE_EVENTS.iter().any(|m| name.starts_with(m)),
            "the dashboard reads {name}, which the node does not have"
        );
        assert!(
            named_in_server_source(name),
            "the dashboard reads {name}, which the server never names"
        );
    }
}
