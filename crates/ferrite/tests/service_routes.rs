//! A route's `service` section through the real server and the real CLI:
//! creation with defaults, PATCH merging, `null` removing, the rules' 400s,
//! and what `ferrite routes create|update|inspect` send and show. Nothing
//! here runs a service: this is the data the Swarm side reads.

mod common;

use common::cli::{error_line, field, ok, ok_json, run};
use common::TestServer;
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// Send `method path` with an optional JSON body; the status and the JSON answer.
fn send(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = Client::new().request(method, format!("{}{path}", server.url));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// A 400 with the standard error shape whose message contains `needle`.
#[track_caller]
fn assert_400((status, body): (u16, Value), needle: &str) {
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

fn defaults() -> Value {
    json!({"port": 8080, "min_replicas": 0, "max_replicas": 10, "target_concurrency": 10,
           "scale_to_zero_after": 300, "constraints": [], "labels": {}})
}

#[test]
fn api_creates_merges_and_removes_the_section() {
    let mut server = TestServer::start();
    let (status, body) = send(
        &server,
        "POST",
        "/v1/apps/myapp/routes",
        Some(json!({"route": {"path": "/plain", "image": "img"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["route"].get("service").is_none(),
        "left out when unset: {body}"
    );

    let (status, body) = send(
        &server,
        "POST",
        "/v1/apps/myapp/routes",
        Some(json!({"route": {"path": "/svc", "image": "img", "format": "http", "service": {}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Route successfully created");
    assert_eq!(body["route"]["service"], defaults());
    assert_eq!(body["route"]["format"], "http");

    let (status, body) = send(&server, "GET", "/v1/apps/myapp/routes/svc", None);
    assert_eq!(status, 200);
    assert_eq!(body["route"]["service"], defaults());

    // Merged field by field; labels merge, constraints replace.
    let (status, body) = send(
        &server,
        "PATCH",
        "/v1/apps/myapp/routes/svc",
        Some(json!({"route": {"service": {
            "max_replicas": 4, "constraints": ["node.role==worker"], "labels": {"team": "a", "tier": "web"}
        }}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Route successfully updated");
    let (status, body) = send(
        &server,
        "PATCH",
        "/v1/apps/myapp/routes/svc",
        Some(json!({"route": {"memory": 256, "service": {
            "port": 9000, "scale_to_zero_after": 60, "labels": {"tier": ""}
        }}})),
    );
    assert_eq!(status, 200, "{body}");
    let expected = json!({"port": 9000, "min_replicas": 0, "max_replicas": 4,
        "target_concurrency": 10, "scale_to_zero_after": 60,
        "constraints": ["node.role==worker"], "labels": {"team": "a"}});
    assert_eq!(body["route"]["service"], expected);
    assert_eq!(body["route"]["memory"], 256);

    // Not named: kept. The listing carries each route's section.
    let (_, body) = send(
        &server,
        "PATCH",
        "/v1/apps/myapp/routes/svc",
        Some(json!({"route": {"timeout": 10}})),
    );
    assert_eq!(body["route"]["service"], expected);
    let (status, body) = send(&server, "GET", "/v1/apps/myapp/routes", None);
    assert_eq!(status, 200);
    let routes = body["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 2);
    assert!(routes[0].get("service").is_none(), "{body}");
    assert_eq!(routes[1]["service"], expected);

    // Kept across a restart (the store, not a cache).
    server.restart();
    let (_, body) = send(&server, "GET", "/v1/apps/myapp/routes/svc", None);
    assert_eq!(body["route"]["service"], expected);

    // A PATCH adds a section to a plain route with defaults...
    let (status, body) = send(
        &server,
        "PATCH",
        "/v1/apps/myapp/routes/plain",
        Some(json!({"route": {"service": {"min_replicas": 2}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["route"]["service"]["min_replicas"], 2);
    assert_eq!(body["route"]["service"]["max_replicas"], 10);

    // ...and null removes it.
    let (status, body) = send(
        &server,
        "PATCH",
        "/v1/apps/myapp/routes/svc",
        Some(json!({"route": {"service": null}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["route"].get("service").is_none(), "{body}");
    let (_, body) = send(&server, "GET", "/v1/apps/myapp/routes/svc", None);
    assert!(body["route"].get("service").is_none(), "{body}");
    assert_eq!(body["route"]["memory"], 256, "the rest is kept");
}

#[test]
fn api_refuses_bad_sections_and_writes_nothing() {
    let server = TestServer::start();
    let create = |service: Value| {
        send(
            &server,
            "POST",
            "/v1/apps/myapp/routes",
            Some(json!({"route": {"path": "/bad", "image": "img", "service": service}})),
        )
    };
    assert_400(
        create(json!({"min_replicas": 3, "max_replicas": 2})),
        "route service.max_replicas must be at least min_replicas (3), got 2",
    );
    assert_400(
        create(json!({"port": -1})),
        "route service.port must be between 1 and 65535, got -1",
    );
    assert_400(create(json!({"port": 0})), "route service.port");
    assert_400(
        create(json!({"max_replicas": 101})),
        "route service.max_replicas must be between 1 and 100",
    );
    assert_400(
        create(json!({"target_concurrency": 0})),
        "route service.target_concurrency",
    );
    assert_400(
        create(json!({"scale_to_zero_after": -5})),
        "route service.scale_to_zero_after",
    );
    assert_400(
        create(json!({"labels": {"org.ferrite.app": "x"}})),
        "reserved",
    );
    assert_400(
        create(json!({"labels": {"com.docker.stack.namespace": "x"}})),
        "reserved",
    );
    assert_400(
        create(json!({"constraints": ["node.role=worker"]})),
        "route service.constraints entry \"node.role=worker\"",
    );
    assert_400(
        create(json!({"max_replica": 3})),
        "route.service.max_replica: unknown field",
    );
    assert_400(create(json!({"port": "80"})), "route.service.port:");
    assert_400(create(json!([1])), "route.service:");
    // A service is reached over its overlay network: no "network": "none".
    let (status, body) = send(
        &server,
        "POST",
        "/v1/apps/myapp/routes",
        Some(
            json!({"route": {"path": "/bad", "image": "img", "service": {},
            "confinement": {"network": "none"}}}),
        ),
    );
    assert_400((status, body), "confinement.network");
    let (status, _) = send(&server, "GET", "/v1/apps/myapp/routes/bad", None);
    assert_eq!(status, 404, "nothing was created");

    let (status, _) = send(
        &server,
        "POST",
        "/v1/apps/myapp/routes",
        Some(json!({"route": {"path": "/svc", "image": "img", "service": {"max_replicas": 5}}})),
    );
    assert_eq!(status, 200);
    let (_, before) = send(&server, "GET", "/v1/apps/myapp/routes/svc", None);
    let patch = |route: Value| {
        send(
            &server,
            "PATCH",
            "/v1/apps/myapp/routes/svc",
            Some(json!({ "route": route })),
        )
    };
    assert_400(
        patch(json!({"memory": 512, "service": {"min_replicas": 6}})),
        "route service.min_replicas must be at most max_replicas (5), got 6",
    );
    assert_400(
        patch(json!({"service": {"labels": {"a": "1", "org.ferrite.x": "y"}}})),
        "reserved",
    );
    assert_400(
        patch(json!({"confinement": {"network": "none"}})),
        "confinement.network",
    );
    let (_, after) = send(&server, "GET", "/v1/apps/myapp/routes/svc", None);
    assert_eq!(after, before, "a refused PATCH writes nothing");

    // An async route keeps its section: its calls are queued, and run on
    // its service.
    let (status, body) = patch(json!({"type": "async"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["route"]["type"], "async");
    assert_eq!(body["route"]["service"]["max_replicas"], 5, "{body}");
    let (status, body) = send(
        &server,
        "POST",
        "/v1/apps/myapp/routes",
        Some(json!({"route": {"path": "/queued", "image": "img", "type": "async", "service": {}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["route"]["service"], defaults());
}

#[test]
fn cli_creates_updates_and_shows_the_section() {
    let server = TestServer::start();
    let route = ok_json(
        &server,
        &["routes", "create", "myapp", "/svc", "img", "--service"],
    );
    assert_eq!(route["service"], defaults());

    let details = ok(&server, &["routes", "inspect", "myapp", "/svc"]);
    assert_eq!(field(&details, "SERVICE"), "swarm, port 8080");
    assert_eq!(field(&details, "REPLICAS"), "0 to 10");
    assert_eq!(field(&details, "TARGET CONCURRENCY"), "10 per replica");
    assert_eq!(field(&details, "SCALE TO ZERO"), "after 300s idle");
    assert_eq!(field(&details, "CONSTRAINTS"), "-");
    assert_eq!(field(&details, "SERVICE LABELS"), "-");

    // Any service flag implies --service.
    let route = ok_json(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/full",
            "img",
            "--format",
            "http",
            "--service-port",
            "9000",
            "--min-replicas",
            "1",
            "--max-replicas",
            "20",
            "--target-concurrency",
            "50",
            "--scale-to-zero-after",
            "10m",
            "--constraint",
            "node.role==worker",
            "--constraint",
            "node.labels.zone != b",
            "--service-label",
            "team=a",
            "--service-label",
            "tier=web",
        ],
    );
    assert_eq!(
        route["service"],
        json!({"port": 9000, "min_replicas": 1, "max_replicas": 20, "target_concurrency": 50,
               "scale_to_zero_after": 600, "constraints": ["node.role==worker", "node.labels.zone != b"],
               "labels": {"team": "a", "tier": "web"}})
    );
    let details = ok(&server, &["routes", "inspect", "myapp", "/full"]);
    assert_eq!(field(&details, "SERVICE"), "swarm, port 9000");
    assert_eq!(field(&details, "REPLICAS"), "1 to 20");
    assert_eq!(field(&details, "SCALE TO ZERO"), "no (min replicas 1)");
    assert!(
        details.contains("node.role==worker") && details.contains("node.labels.zone != b"),
        "{details}"
    );
    assert!(
        details.contains("team=a") && details.contains("tier=web"),
        "{details}"
    );

    // Updates merge; `KEY=` removes a label, `--constraint ''` clears.
    let route = ok_json(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/full",
            "--max-replicas",
            "30",
            "--service-label",
            "tier=",
            "--constraint",
            "",
        ],
    );
    assert_eq!(route["service"]["max_replicas"], 30);
    assert_eq!(route["service"]["port"], 9000, "not given, kept");
    assert_eq!(route["service"]["labels"], json!({"team": "a"}));
    assert_eq!(route["service"]["constraints"], json!([]));
    let out = ok(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/full",
            "--scale-to-zero-after",
            "45",
        ],
    );
    assert_eq!(out.trim(), "Route /full of app myapp updated");
    let route = ok_json(&server, &["routes", "inspect", "myapp", "/full"]);
    assert_eq!(route["service"]["scale_to_zero_after"], 45);

    // --no-service removes it; the route shows no service.
    let route = ok_json(
        &server,
        &["routes", "update", "myapp", "/full", "--no-service"],
    );
    assert!(route.get("service").is_none(), "{route}");
    let details = ok(&server, &["routes", "inspect", "myapp", "/full"]);
    assert_eq!(field(&details, "SERVICE"), "-");
    assert!(!details.contains("REPLICAS"), "{details}");

    // An update adds it back with the defaults.
    let route = ok_json(
        &server,
        &["routes", "update", "myapp", "/full", "--service"],
    );
    assert_eq!(route["service"], defaults());
}

#[test]
fn cli_errors_are_one_line() {
    let server = TestServer::start();
    let create =
        |flags: &[&'static str]| [&["routes", "create", "myapp", "/a", "img"], flags].concat();
    // The server's rule, as one line.
    for (flags, needle) in [
        (
            &["--min-replicas", "3", "--max-replicas", "2"][..],
            "route service.max_replicas must be at least min_replicas (3), got 2",
        ),
        (
            &["--service", "--constraint", "node.role=worker"][..],
            "route service.constraints entry \"node.role=worker\"",
        ),
    ] {
        let args = create(flags);
        let err = error_line(&run(&server, &args), 1, &args);
        assert!(err.contains(needle), "{err}");
    }

    // The client's own checks, before anything is sent.
    for args in [
        create(&["--scale-to-zero-after", "soon"]),
        create(&["--min-replicas", "-1"]),
        create(&["--no-service"]),
        vec![
            "routes",
            "update",
            "myapp",
            "/a",
            "--no-service",
            "--max-replicas",
            "3",
        ],
        vec!["routes", "update", "myapp", "/a", "--service-label", "nope"],
    ] {
        let args = &args[..];
        let out = run(&server, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    assert_eq!(
        ok_json(&server, &["apps", "list"]),
        json!([]),
        "nothing was created"
    );
}
