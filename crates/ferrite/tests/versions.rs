//! Route versions and traffic against the real binary and engine: versions
//! made by changes (not by changes of nothing), listed, shown and compared
//! through the API and the CLI; a 90/10 split measured over 200 calls, each
//! version on its own warm container; a header rule; roll-backs; call
//! records and metrics that say which version served; bad input refused
//! with a 400 and one error line. Then two nodes on PostgreSQL and Redis: a
//! split changed on one is applied by the other.
//!
//! The two versions run the chaos function (`format: http`) with different
//! memory limits, which it echoes (`FN_MEMORY`): the answer says which
//! version served it, and its pid which container.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cli::{fails, ok, ok_json};
use common::redis::RedisServer;
use common::{client, create_route, eventually, node_containers, require_images, TestServer};
use serde_json::{json, Value};

const APP: &str = "versions";
/// A nested path: the versions of a route are named by `?path=`, never by
/// the URL's path.
const ROUTE: &str = "/web/canary";
/// The memory of version 1 and of version 2, which the function echoes.
const MEMORY: [u64; 2] = [128, 192];

fn v1(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, format!("{url}/v1{path}"));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

fn get(url: &str, path: &str) -> (u16, Value) {
    v1(url, reqwest::Method::GET, path, None)
}

fn patch_route(url: &str, route: Value) -> (u16, Value) {
    v1(
        url,
        reqwest::Method::PATCH,
        &format!("/apps/{APP}/routes{ROUTE}"),
        Some(json!({ "route": route })),
    )
}

/// One call with `headers`: the version that served it (from the memory
/// its function echoed), its container's pid, and its call id.
fn call(url: &str, headers: &[(&str, &str)]) -> (u32, u64, String) {
    let mut request = client().post(format!("{url}/r/{APP}{ROUTE}")).body("{}");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = request.send().unwrap();
    assert_eq!(reply.status(), 200);
    let id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let echo: Value = reply.json().unwrap();
    let memory: u64 = echo["env"]["FN_MEMORY"].as_str().unwrap().parse().unwrap();
    let version = MEMORY.iter().position(|m| *m == memory).unwrap() as u32 + 1;
    (version, echo["pid"].as_u64().unwrap(), id)
}

/// The versions that served `n` calls, with how many each.
fn served(url: &str, n: usize, headers: &[(&str, &str)]) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        *counts.entry(call(url, headers).0).or_default() += 1;
    }
    counts
}

fn error(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

/// The route at version 2 (its memory changed), after checks that only a
/// change of what runs makes a version.
fn two_versions(url: &str) {
    let (status, answer) = patch_route(url, json!({"memory": MEMORY[1]}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["route"]["version"], 2);
    for nothing in [json!({"memory": MEMORY[1]}), json!({"jwt_key": ""})] {
        let (status, answer) = patch_route(url, nothing);
        assert_eq!(status, 200);
        assert_eq!(answer["route"]["version"], 2, "no version for no change");
    }
}

#[test]
fn versions_split_roll_back_and_are_recorded() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    let url = server.url.as_str();
    create_route(
        &server,
        APP,
        json!({"path": ROUTE, "image": "ferrite/chaos", "format": "http", "memory": MEMORY[0]}),
    );
    // A route whose path ends in `versions` is a route like any other.
    create_route(
        &server,
        APP,
        json!({"path": "/web/versions", "image": "ferrite/chaos", "format": "http"}),
    );
    let (status, answer) = get(url, &format!("/apps/{APP}/routes{ROUTE}"));
    assert_eq!(status, 200);
    assert_eq!(answer["route"]["version"], 1);
    assert_eq!(
        answer["route"]["serving"],
        json!([{"version": 1, "weight": 100}])
    );
    two_versions(url);

    // Listed, shown and compared, through the API and the CLI.
    let (status, list) = get(url, &format!("/apps/{APP}/versions?path={ROUTE}"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["newest"], 2);
    let numbers: Vec<&Value> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(numbers, [&json!(2), &json!(1)]);
    let (status, one) = get(url, &format!("/apps/{APP}/versions/1?path={ROUTE}"));
    assert_eq!(status, 200);
    assert_eq!(one["version"]["memory"], MEMORY[0]);
    assert_eq!(one["version"]["image"], "ferrite/chaos");
    let (status, diff) = get(url, &format!("/apps/{APP}/versions/1/diff/2?path={ROUTE}"));
    assert_eq!(status, 200);
    assert_eq!(
        diff["changes"],
        json!([{"field": "memory", "from": MEMORY[0], "to": MEMORY[1]}])
    );
    let (status, other) = get(url, &format!("/apps/{APP}/versions?path=/web/versions"));
    assert_eq!((status, other["newest"].clone()), (200, json!(1)));
    let table = ok(&server, &["routes", "versions", APP, ROUTE]);
    assert!(table.lines().nth(1).unwrap().starts_with("2 "), "{table}");
    assert!(table.lines().nth(1).unwrap().ends_with("100%"), "{table}");
    let diff = ok(
        &server,
        &["routes", "version", APP, ROUTE, "1", "--diff", "2"],
    );
    assert!(diff.contains("memory") && diff.contains("192"), "{diff}");

    // 90/10 between versions 1 and 2: each keeps its own warm container.
    let shown = ok_json(&server, &["routes", "traffic", APP, ROUTE, "1=90", "2=10"]);
    assert_eq!(
        shown["serving"],
        json!([{"version": 1, "weight": 90}, {"version": 2, "weight": 10}])
    );
    let mut pids = BTreeMap::<u32, BTreeSet<u64>>::new();
    let mut ids = Vec::new();
    for _ in 0..200 {
        let (version, pid, id) = call(url, &[]);
        pids.entry(version).or_default().insert(pid);
        ids.push((id, version));
    }
    let twos = ids.iter().filter(|(_, v)| *v == 2).count();
    println!("90/10 split over 200 calls: version 2 served {twos}");
    // 20 expected; the bounds are over six standard deviations away.
    assert!((5..=45).contains(&twos), "version 2 served {twos} of 200");
    assert_eq!(
        pids.values().map(BTreeSet::len).collect::<Vec<_>>(),
        [1, 1],
        "one container per version, never replaced: {pids:?}"
    );
    assert_eq!(node_containers(&server.node_id).len(), 2);

    // Each call's record says which version served it.
    for (id, version) in ids
        .iter()
        .step_by(20)
        .chain(ids.iter().filter(|(_, v)| *v == 2).take(1))
    {
        let found = eventually(Duration::from_secs(10), || {
            get(url, &format!("/apps/{APP}/calls/{id}")).1["call"]["version"] == json!(version)
        });
        assert!(
            found,
            "call {id} is not recorded as served by version {version}"
        );
    }
    let (id, version) = &ids[0];
    let details = ok(&server, &["calls", "inspect", APP, id]);
    assert_eq!(common::cli::field(&details, "VERSION"), version.to_string());

    // A header rule sends its calls to version 2 whatever the weights.
    let (status, answer) = patch_route(
        url,
        json!({"traffic": [
            {"version": 2, "header": {"name": "X-Canary", "value": "1"}},
            {"version": 1, "weight": 100}
        ]}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        served(url, 10, &[("X-Canary", "1")]),
        BTreeMap::from([(2, 10)])
    );
    assert_eq!(served(url, 10, &[]), BTreeMap::from([(1, 10)]));

    // Roll back and forth: one command, one request.
    ok(&server, &["routes", "traffic", APP, ROUTE, "2=100"]);
    assert_eq!(served(url, 5, &[]), BTreeMap::from([(2, 5)]));
    let said = ok(&server, &["routes", "rollback", APP, ROUTE]);
    assert!(said.contains("version 1"), "{said}");
    assert_eq!(served(url, 5, &[]), BTreeMap::from([(1, 5)]));
    let (status, _) = patch_route(url, json!({"traffic": [{"version": 2, "weight": 100}]}));
    assert_eq!(status, 200);
    assert_eq!(served(url, 5, &[]), BTreeMap::from([(2, 5)]));
    ok(&server, &["routes", "traffic", APP, ROUTE, "--newest"]);
    let (_, answer) = get(url, &format!("/apps/{APP}/routes{ROUTE}"));
    assert!(answer["route"].get("traffic").is_none(), "{answer}");

    // The metrics count calls by version.
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let series = format!(
        "ferrite_route_version_calls_total{{app=\"{APP}\",route=\"{ROUTE}\",version=\"2\"}}"
    );
    assert!(metrics.contains(&series), "no {series} in the metrics");

    bad_input_is_refused(&server);
}

fn bad_input_is_refused(server: &TestServer) {
    let url = server.url.as_str();
    for (traffic, needle) in [
        (
            json!([{"version": 1, "weight": 90}]),
            "weights must add up to 100, not 90",
        ),
        (
            json!([{"version": 9, "weight": 100}]),
            "newest version is 2",
        ),
        (json!([]), "at least one version a weight"),
        (json!([{"version": 1}]), "either a weight or a header"),
        (
            json!([{"version": 1, "weight": 100, "percent": 3}]),
            "unknown field",
        ),
    ] {
        let (status, answer) = patch_route(url, json!({ "traffic": traffic }));
        assert_eq!(status, 400, "{traffic}: {answer}");
        assert!(error(&answer).contains(needle), "{traffic}: {answer}");
    }
    for (path, status, needle) in [
        (format!("/apps/{APP}/versions"), 400, "?path=/hello"),
        (
            format!("/apps/{APP}/versions/x?path={ROUTE}"),
            400,
            "version number from 1",
        ),
        (
            format!("/apps/{APP}/versions/0?path={ROUTE}"),
            400,
            "version number from 1",
        ),
        (
            format!("/apps/{APP}/versions/7?path={ROUTE}"),
            404,
            "has no version 7",
        ),
        (
            format!("/apps/{APP}/versions?path=/nope"),
            404,
            "Route not found",
        ),
    ] {
        let (got, answer) = get(url, &path);
        assert_eq!(got, status, "{path}: {answer}");
        assert!(error(&answer).contains(needle), "{path}: {answer}");
    }
    let line = fails(server, &["routes", "traffic", APP, ROUTE, "3"]);
    assert!(line.contains("expected VERSION=WEIGHT"), "{line}");
    let line = fails(server, &["routes", "traffic", APP, ROUTE, "1=50"]);
    assert!(line.contains("add up to 100"), "{line}");
}

/// Two nodes sharing PostgreSQL and Redis: the traffic set through node 1
/// is applied by node 2 (its cached route is dropped by the change bus),
/// and a roll-back through node 1 holds on node 2 too.
#[test]
fn a_split_set_on_one_node_holds_on_the_other() {
    require_images(&["ferrite/chaos"]);
    let redis = RedisServer::start();
    let mq = redis.url(&format!("versions-{}", std::process::id()));
    let db = common::postgres::fresh_database();
    let env = [("DB_URL", db.as_str()), ("MQ_URL", mq.as_str())];
    let one = TestServer::start_with_env(&env);
    let two = TestServer::start_with_env(&env);
    create_route(
        &one,
        APP,
        json!({"path": ROUTE, "image": "ferrite/chaos", "format": "http", "memory": MEMORY[0]}),
    );
    two_versions(&one.url);
    // Node 2 caches the route as it is: version 2 takes every call.
    assert_eq!(served(&two.url, 3, &[]), BTreeMap::from([(2, 3)]));

    let (status, answer) = patch_route(
        &one.url,
        json!({"traffic": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}),
    );
    assert_eq!(status, 200, "{answer}");
    let mut seen = BTreeMap::new();
    let split = eventually(Duration::from_secs(10), || {
        seen = served(&two.url, 20, &[]);
        seen.len() == 2
    });
    assert!(split, "node 2 did not split its calls: {seen:?}");
    let (_, _, id) = call(&two.url, &[]);
    let recorded = eventually(Duration::from_secs(10), || {
        get(&one.url, &format!("/apps/{APP}/calls/{id}")).1["call"]["version"].is_u64()
    });
    assert!(
        recorded,
        "node 2's call has no version in the shared history"
    );

    let (status, _) = patch_route(
        &one.url,
        json!({"traffic": [{"version": 1, "weight": 100}]}),
    );
    assert_eq!(status, 200);
    let rolled_back = eventually(Duration::from_secs(10), || {
        served(&two.url, 10, &[]) == BTreeMap::from([(1, 10)])
    });
    assert!(
        rolled_back,
        "node 2 still serves version 2 after the roll-back on node 1"
    );
}
