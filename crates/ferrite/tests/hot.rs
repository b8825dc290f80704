//! Hot functions (`format: http`) against the real engine: reuse, growth to
//! `max_concurrency`, idle stop, replacement after a crash, a timeout or a
//! broken response, and after a route update; both transports.

mod common;

use std::time::{Duration, Instant};

use common::{client, create_route, eventually, node_containers, require_images, TestServer};
use serde_json::{json, Value};

/// Call the chaos function with `behaviour`; (status, headers, body).
fn chaos(
    server: &TestServer,
    path: &str,
    behaviour: Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .body(behaviour.to_string())
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    let headers = reply.headers().clone();
    (status, headers, reply.text().unwrap())
}

/// The pid of the function process that answered (the chaos echo).
fn pid(server: &TestServer, path: &str) -> u64 {
    let (status, _, body) = chaos(server, path, json!({}));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["pid"]
        .as_u64()
        .unwrap()
}

fn containers(server: &TestServer) -> usize {
    node_containers(&server.node_id).len()
}

fn reuse_and_contract(server: &TestServer) {
    create_route(
        server,
        "hot",
        json!({"path":"/chaos","image":"ferrite/chaos","format":"http","config":{"greeting":"hi"}}),
    );
    let reply = client()
        .post(format!("{}/r/hot/chaos?x=1", server.url))
        .header("X-Custom", "c")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let echo: Value = reply.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/r/hot/chaos?x=1");
    assert_eq!(echo["body"], "{}");
    let headers = &echo["headers"];
    assert_eq!(headers["fn-call-id"], call_id.as_str());
    assert_eq!(headers["fn-app-name"], "hot");
    assert_eq!(headers["fn-route"], "/chaos");
    assert_eq!(headers["fn-method"], "POST");
    assert!(
        headers["fn-request-url"]
            .as_str()
            .unwrap()
            .ends_with("/r/hot/chaos?x=1"),
        "{headers}"
    );
    assert_eq!(headers["x-custom"], "c");
    assert_eq!(echo["env"]["FN_FORMAT"], "http");
    assert_eq!(echo["env"]["APP_NAME"], "hot");
    assert_eq!(echo["env"]["ROUTE"], "/chaos");
    // The same process answers the next calls: the container stays warm.
    let first = echo["pid"].as_u64().unwrap();
    assert_eq!(pid(server, "/r/hot/chaos"), first);
    let (_, _, body) = chaos(server, "/r/hot/chaos", json!({}));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["requests"], 3);
    assert_eq!(containers(server), 1);
    // The function's status code, headers and body reach the client.
    let (status, headers, body) = chaos(
        server,
        "/r/hot/chaos",
        json!({"status":201,"headers":{"X-Chaos":"yes"},"body":"made"}),
    );
    assert_eq!((status, body.as_str()), (201, "made"));
    assert_eq!(headers["x-chaos"], "yes");
}

#[test]
fn hot_containers_are_reused_and_get_the_contract() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    reuse_and_contract(&server);
}

#[test]
fn through_the_engine_attach_stream_too() {
    require_images(&["ferrite/chaos"]);
    // No shared socket directory: the engine relays the function's stdio.
    let server = TestServer::start_with_env(&[("FERRITE_HOT_SOCKET_DIR", "off")]);
    reuse_and_contract(&server);
    let (status, _, body) = chaos(&server, "/r/hot/chaos", json!({"crash":true}));
    assert_eq!(status, 502, "{body}");
    assert_eq!(pid(&server, "/r/hot/chaos"), pid(&server, "/r/hot/chaos"));
}

#[test]
fn the_pool_grows_to_max_concurrency_and_no_further() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    create_route(
        &server,
        "grow",
        json!({"path":"/c","image":"ferrite/chaos","format":"http","max_concurrency":2}),
    );
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let url = format!("{}/r/grow/c", server.url);
            std::thread::spawn(move || {
                let reply = client()
                    .post(url)
                    .body(r#"{"sleep_ms":1200}"#)
                    .send()
                    .unwrap();
                assert_eq!(reply.status(), 200);
                reply.json::<Value>().unwrap()["pid"].as_u64().unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        containers(&server) <= 2,
        "{:?}",
        node_containers(&server.node_id)
    );
    let mut pids: Vec<u64> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() <= 2, "{pids:?}");
    assert_eq!(containers(&server), 2, "both containers stay warm");
}

#[test]
fn broken_containers_are_replaced_and_the_call_gets_502_or_504() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    create_route(
        &server,
        "bad",
        json!({"path":"/c","image":"ferrite/chaos","format":"http","timeout":1,"memory":32}),
    );
    for (behaviour, status, needle) in [
        (json!({"crash":true}), 502, ""),
        (json!({"exit":3}), 502, ""),
        (json!({"malformed":true}), 502, ""),
        (json!({"no_length":true}), 502, "Content-Length"),
        (json!({"sleep_ms":3000}), 504, "Timed out"),
        (json!({"allocate_mb":64}), 502, ""),
        (json!({"large_kb":7000}), 502, "larger than the limit"),
    ] {
        let before = pid(&server, "/r/bad/c");
        let started = Instant::now();
        let (got, _, body) = chaos(&server, "/r/bad/c", behaviour.clone());
        assert_eq!(got, status, "{behaviour}: {body}");
        assert!(body.contains(needle), "{behaviour}: {body}");
        assert!(started.elapsed() < Duration::from_secs(10), "{behaviour}");
        let after = pid(&server, "/r/bad/c");
        // A fresh process in a fresh container (pids restart in each).
        let requests = serde_json::from_str::<Value>(&chaos(&server, "/r/bad/c", json!({})).2)
            .unwrap()["requests"]
            .clone();
        assert_eq!(
            requests, 2,
            "{behaviour}: the container after it is new ({before} -> {after})"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || containers(&server) == 1),
        "{:?}",
        node_containers(&server.node_id)
    );
}

#[test]
fn idle_containers_stop_after_idle_timeout() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    create_route(
        &server,
        "idle",
        json!({"path":"/c","image":"ferrite/chaos","format":"http","idle_timeout":1}),
    );
    pid(&server, "/r/idle/c");
    assert_eq!(containers(&server), 1);
    assert!(
        eventually(Duration::from_secs(10), || containers(&server) == 0),
        "{:?}",
        node_containers(&server.node_id)
    );
    pid(&server, "/r/idle/c");
}

#[test]
fn a_route_update_replaces_its_containers() {
    require_images(&["ferrite/chaos"]);
    let server = TestServer::start();
    create_route(
        &server,
        "upd",
        json!({"path":"/c","image":"ferrite/chaos","format":"http","config":{"VERSION":"1"}}),
    );
    let first = chaos(&server, "/r/upd/c", json!({})).2;
    let reply = client()
        .patch(format!("{}/v1/apps/upd/routes/c", server.url))
        .body(json!({"route":{"config":{"VERSION":"2"}}}).to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let second = chaos(&server, "/r/upd/c", json!({})).2;
    let requests = |body: &str| serde_json::from_str::<Value>(body).unwrap()["requests"].clone();
    assert_eq!(
        (requests(&first), requests(&second)),
        (json!(1), json!(1)),
        "a new container after the update"
    );
    assert!(eventually(Duration::from_secs(10), || containers(&server) == 1));
    // Deleting the route removes its containers.
    let reply = client()
        .delete(format!("{}/v1/apps/upd/routes/c", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(eventually(Duration::from_secs(10), || containers(&server) == 0));
}
