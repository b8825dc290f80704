//! Async calls and the call history against the real engine: 202 with a
//! call id, the worker's result and output, retries with `max_retries`,
//! cancelling a queued call, calls whose route went away, and the history
//! of sync calls with its filters and pages.

mod common;

use std::time::Duration;

use common::{
    client, create_route, create_routes, eventually, node_containers, require_images, TestServer,
};
use serde_json::{json, Value};

/// Call an async route; the call id of its 202.
fn enqueue(server: &TestServer, path: &str, body: &str) -> String {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let header = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let json: Value = reply.json().unwrap();
    let id = json["call_id"].as_str().expect("call_id").to_string();
    assert_eq!(id, header);
    id
}

/// GET a /v1 path: (status, JSON body).
fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let reply = client()
        .get(format!("{}/v1{path}", server.url))
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

fn text(server: &TestServer, path: &str) -> String {
    let reply = client()
        .get(format!("{}/v1{path}", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{path}");
    reply.text().unwrap()
}

fn call(server: &TestServer, app: &str, id: &str) -> Value {
    let (status, json) = get(server, &format!("/apps/{app}/calls/{id}"));
    assert_eq!(status, 200, "{json}");
    json["call"].clone()
}

/// Wait until the call is in a final state; the record.
fn finished(server: &TestServer, app: &str, id: &str, within: Duration) -> Value {
    let mut last = Value::Null;
    let done = eventually(within, || {
        last = call(server, app, id);
        matches!(
            last["status"].as_str(),
            Some("success" | "error" | "timeout" | "cancelled")
        )
    });
    assert!(done, "call {id} did not finish: {last}");
    last
}

#[test]
fn async_calls_run_and_keep_their_output() {
    require_images(&["ferrite/hello", "ferrite/hot-hello"]);
    let server = TestServer::start();
    create_route(
        &server,
        "asyncapp",
        json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
    );
    let id = enqueue(&server, "/r/asyncapp/hello", r#"{"name":"Queue"}"#);
    let record = finished(&server, "asyncapp", &id, Duration::from_secs(60));
    assert_eq!(record["status"], "success", "{record}");
    assert_eq!(record["type"], "async");
    assert_eq!(record["attempts"], 1);
    assert!(record["started_at"].is_string() && record["completed_at"].is_string());
    let output = text(&server, &format!("/apps/asyncapp/calls/{id}/output"));
    assert_eq!(output.trim(), "Hello Queue!");

    // A hot function behind an async route: its HTTP body is the output.
    create_route(
        &server,
        "asyncapp",
        json!({"path": "/hot", "image": "ferrite/hot-hello", "type": "async", "format": "http"}),
    );
    let ids: Vec<String> = (0..20)
        .map(|_| enqueue(&server, "/r/asyncapp/hot", ""))
        .collect();
    for id in &ids {
        let record = finished(&server, "asyncapp", id, Duration::from_secs(60));
        assert_eq!(record["status"], "success", "{record}");
        let output = text(&server, &format!("/apps/asyncapp/calls/{id}/output"));
        assert!(!output.is_empty());
    }
}

#[test]
fn failures_are_retried_as_the_route_allows() {
    require_images(&["ferrite/fail", "ferrite/sleep"]);
    let server = TestServer::start();
    create_routes(
        &server,
        "retryapp",
        [
            json!({"path": "/fail", "image": "ferrite/fail", "type": "async", "max_retries": 2}),
            json!({"path": "/slow", "image": "ferrite/sleep", "type": "async", "timeout": 1, "max_retries": 1}),
        ],
    );
    let slow = enqueue(&server, "/r/retryapp/slow", "30");
    create_route(
        &server,
        "retryapp",
        json!({"path": "/once", "image": "ferrite/fail", "type": "async"}),
    );
    let retried = enqueue(&server, "/r/retryapp/fail", "");
    let once = enqueue(&server, "/r/retryapp/once", "");

    let record = finished(&server, "retryapp", &once, Duration::from_secs(60));
    assert_eq!(record["status"], "error", "{record}");
    assert_eq!(record["attempts"], 1, "{record}");
    assert_eq!(record["error"], "exit code 3");

    // Three runs, one second then two seconds apart.
    let record = finished(&server, "retryapp", &retried, Duration::from_secs(90));
    assert_eq!(record["status"], "error", "{record}");
    assert_eq!(record["attempts"], 3, "{record}");
    let log = text(&server, &format!("/apps/retryapp/calls/{retried}/log"));
    assert!(log.contains("fail: exiting with code 3"), "{log:?}");
    assert!(node_containers(&server.node_id)
        .iter()
        .all(|(_, _, call)| call != &retried));

    // Past its timeout twice: a timeout is a failure that is retried too.
    let record = finished(&server, "retryapp", &slow, Duration::from_secs(60));
    assert_eq!(record["status"], "timeout", "{record}");
    assert_eq!(record["attempts"], 2, "{record}");
    assert_eq!(record["error"], "Timed out");
}

#[test]
fn queued_calls_can_be_cancelled() {
    require_images(&["ferrite/hello"]);
    // No workers on this node: calls stay queued.
    let server = TestServer::start_with_env(&[("FERRITE_ASYNC_CONCURRENCY", "0")]);
    create_route(
        &server,
        "cancelapp",
        json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
    );
    let id = enqueue(&server, "/r/cancelapp/hello", "");
    assert_eq!(call(&server, "cancelapp", &id)["status"], "queued");

    let url = format!("{}/v1/apps/cancelapp/calls/{id}", server.url);
    let reply = client().delete(&url).send().unwrap();
    assert_eq!(reply.status(), 200);
    let json: Value = reply.json().unwrap();
    assert_eq!(json["call"]["status"], "cancelled");
    let again = client().delete(&url).send().unwrap();
    assert_eq!(again.status(), 409);
    let json: Value = again.json().unwrap();
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{json}"
    );
    let (status, _) = get(&server, "/apps/cancelapp/calls/nope");
    assert_eq!(status, 404);
    let missing = client()
        .delete(format!("{}/v1/apps/cancelapp/calls/nope", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn a_call_whose_route_went_away_fails() {
    require_images(&["ferrite/hello"]);
    let mut server = TestServer::start_with_env(&[("FERRITE_ASYNC_CONCURRENCY", "0")]);
    create_routes(
        &server,
        "goneapp",
        [
            json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
            json!({"path": "/keep", "image": "ferrite/hello"}),
        ],
    );
    let id = enqueue(&server, "/r/goneapp/hello", "");
    let reply = client()
        .delete(format!("{}/v1/apps/goneapp/routes/hello", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    // Now with workers: the call ends in error instead of waiting forever.
    server.set_env("FERRITE_ASYNC_CONCURRENCY", "4");
    server.restart();
    let record = finished(&server, "goneapp", &id, Duration::from_secs(30));
    assert_eq!(record["status"], "error");
    assert!(
        record["error"].as_str().unwrap().contains("not found"),
        "{record}"
    );
}

#[test]
fn sync_calls_are_in_the_history() {
    require_images(&["ferrite/hello", "ferrite/fail"]);
    let server = TestServer::start();
    create_routes(
        &server,
        "histapp",
        [
            json!({"path": "/hello", "image": "ferrite/hello"}),
            json!({"path": "/fail", "image": "ferrite/fail"}),
        ],
    );
    let mut ids = Vec::new();
    for path in ["/r/histapp/hello", "/r/histapp/hello", "/r/histapp/fail"] {
        let reply = client()
            .post(format!("{}{path}", server.url))
            .send()
            .unwrap();
        ids.push(reply.headers()["fn-call-id"].to_str().unwrap().to_string());
    }
    let mut listed = Value::Null;
    assert!(eventually(Duration::from_secs(10), || {
        listed = get(&server, "/apps/histapp/calls").1;
        listed["calls"].as_array().is_some_and(|c| c.len() == 3)
    }));
    // Newest first.
    let listed_ids: Vec<&str> = listed["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, [&ids[2], &ids[1], &ids[0]]);

    let failed = call(&server, "histapp", &ids[2]);
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["type"], "sync");
    assert_eq!(failed["error"], "exit code 3");
    let log = text(&server, &format!("/apps/histapp/calls/{}/log", ids[2]));
    assert!(log.contains("fail: exiting with code 3"), "{log:?}");

    let (_, by_status) = get(&server, "/apps/histapp/calls?status=success");
    assert_eq!(by_status["calls"].as_array().unwrap().len(), 2);
    let (_, by_path) = get(&server, "/apps/histapp/calls?path=/fail");
    assert_eq!(by_path["calls"].as_array().unwrap().len(), 1);

    // Pages of one, following the cursor.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get(
            &server,
            &format!("/apps/histapp/calls?per_page=1&cursor={cursor}"),
        );
        assert_eq!(status, 200);
        for c in page["calls"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);

    for bad in ["?status=bogus", "?per_page=0", "?per_page=1001"] {
        let (status, json) = get(&server, &format!("/apps/histapp/calls{bad}"));
        assert_eq!(status, 400, "{bad}: {json}");
        assert!(json["error"]["message"].is_string());
    }
    let (status, _) = get(&server, "/apps/nosuchapp/calls");
    assert_eq!(status, 404);
}

#[test]
fn hot_calls_keep_their_own_stderr() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    create_routes(
        &server,
        "hotlog",
        [
            json!({"path": "/chaos", "image": "ferrite/chaos", "format": "http"}),
            json!({"path": "/later", "image": "ferrite/chaos", "format": "http", "type": "async"}),
        ],
    );
    // One container serves these one after the other: each call's log is
    // its own line only. (The pause lets stderr, which comes through the
    // engine, arrive before the next call starts even on a loaded machine.)
    let mut ids = Vec::new();
    for n in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        let reply = client()
            .post(format!("{}/r/hotlog/chaos", server.url))
            .body(json!({ "log": format!("line {n} of a sync call") }).to_string())
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200);
        ids.push(reply.headers()["fn-call-id"].to_str().unwrap().to_string());
    }
    for (n, id) in ids.iter().enumerate() {
        let mut log = String::new();
        assert!(eventually(Duration::from_secs(10), || {
            let reply = client()
                .get(format!("{}/v1/apps/hotlog/calls/{id}/log", server.url))
                .send()
                .unwrap();
            log = if reply.status() == 200 {
                reply.text().unwrap()
            } else {
                String::new()
            };
            !log.is_empty()
        }));
        assert_eq!(log, format!("line {n} of a sync call\n"));
    }
    let id = enqueue(
        &server,
        "/r/hotlog/later",
        &json!({"log": "from an async call"}).to_string(),
    );
    let record = finished(&server, "hotlog", &id, Duration::from_secs(60));
    assert_eq!(record["status"], "success", "{record}");
    let log = text(&server, &format!("/apps/hotlog/calls/{id}/log"));
    assert_eq!(log, "from an async call\n");
}

#[test]
fn old_records_are_purged() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start_with_env(&[("FERRITE_CALL_RETENTION", "2s")]);
    create_route(
        &server,
        "purgeapp",
        json!({"path": "/hello", "image": "ferrite/hello"}),
    );
    let reply = client()
        .post(format!("{}/r/purgeapp/hello", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let path = format!("/apps/purgeapp/calls/{id}");
    assert!(eventually(Duration::from_secs(10), || get(&server, &path)
        .0
        == 200));
    assert!(
        eventually(Duration::from_secs(15), || get(&server, &path).0 == 404),
        "the record outlived its retention"
    );
}
