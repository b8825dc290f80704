//! The dead-letter list against the real engine: async calls that failed
//! for good are listed with their requests (secrets hidden), replayed one
//! by one or all at once as new calls once the route is fixed, and dropped;
//! calls that succeed never land there.

mod common;

use std::time::Duration;

use common::cli::{fails, ok, ok_json, ok_out};
use common::{client, create_route, eventually, require_images, TestServer};
use serde_json::{json, Value};

fn v1(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let reply = client()
        .request(method, format!("{}/v1{path}", server.url))
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

fn get(server: &TestServer, path: &str) -> (u16, Value) {
    v1(server, reqwest::Method::GET, path)
}

fn enqueue(server: &TestServer, path: &str, body: &str) -> String {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .header("Authorization", "Bearer caller-secret")
        .header("X-Order", "42")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let json: Value = reply.json().unwrap();
    json["call_id"].as_str().unwrap().to_string()
}

/// Wait until call `id` of `app` is final; its status.
fn ended(server: &TestServer, app: &str, id: &str) -> String {
    let mut status = String::new();
    let done = eventually(Duration::from_secs(60), || {
        let (_, json) = get(server, &format!("/apps/{app}/calls/{id}"));
        status = json["call"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        matches!(status.as_str(), "success" | "error" | "timeout")
    });
    assert!(done, "call {id} did not end: {status}");
    status
}

fn letters(server: &TestServer, app: &str) -> Vec<String> {
    let (status, json) = get(server, &format!("/apps/{app}/dead-letters"));
    assert_eq!(status, 200, "{json}");
    json["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn failed_calls_are_kept_inspected_replayed_and_dropped() {
    require_images(&["ferrite/fail", "ferrite/echo"]);
    let server = TestServer::start();
    create_route(
        &server,
        "dl",
        json!({"path": "/job", "image": "ferrite/fail", "type": "async", "max_retries": 1}),
    );
    let ids: Vec<String> = (1..=3)
        .map(|n| enqueue(&server, "/r/dl/job", &format!("body {n}")))
        .collect();
    for id in &ids {
        assert_eq!(ended(&server, "dl", id), "error");
    }
    // Newest first, each after its retries.
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(letters(&server, "dl"), newest_first);
    let (status, letter) = get(&server, &format!("/apps/dl/dead-letters/{}", ids[0]));
    assert_eq!(status, 200, "{letter}");
    assert_eq!(letter["call"]["attempts"], 2, "{letter}");
    let request = &letter["request"];
    assert_eq!(request["method"], "POST");
    assert!(
        request["url"].as_str().unwrap().ends_with("/r/dl/job"),
        "{request}"
    );
    assert_eq!(
        request["headers"]["authorization"],
        json!(["***"]),
        "{request}"
    );
    assert_eq!(request["headers"]["x-order"], json!(["42"]));
    assert_eq!(request["body"], "body 1");
    assert_eq!(request["body_encoding"], "utf-8");
    assert!(!letter.to_string().contains("caller-secret"));

    // Fixed: the route now answers with what it got.
    let reply = client()
        .patch(format!("{}/v1/apps/dl/routes/job", server.url))
        .body(json!({"route": {"image": "ferrite/echo"}}).to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (status, replayed) = v1(
        &server,
        reqwest::Method::POST,
        &format!("/apps/dl/dead-letters/{}/replay", ids[0]),
    );
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["replay_of"], ids[0].as_str());
    let new = replayed["call_id"].as_str().unwrap().to_string();
    assert_ne!(new, ids[0]);
    assert_eq!(ended(&server, "dl", &new), "success");
    let output = client()
        .get(format!("{}/v1/apps/dl/calls/{new}/output", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    // The same request: its body and its headers reached the function.
    assert!(output.ends_with("--- stdin ---\nbody 1"), "{output}");
    assert!(output.contains("HEADER_X_ORDER=42"), "{output}");
    assert_eq!(letters(&server, "dl"), vec![ids[2].clone(), ids[1].clone()]);
    let (status, gone) = get(&server, &format!("/apps/dl/dead-letters/{}", ids[0]));
    assert_eq!(
        (status, &gone["error"]["message"]),
        (404, &json!("Dead letter not found"))
    );
    // The failed call's record stays in the history.
    let (status, _) = get(&server, &format!("/apps/dl/calls/{}", ids[0]));
    assert_eq!(status, 200);

    // The rest at once, oldest first.
    let (status, all) = v1(
        &server,
        reqwest::Method::POST,
        "/apps/dl/dead-letters/replay",
    );
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["more"], false, "{all}");
    let of: Vec<&str> = all["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replay_of"].as_str().unwrap())
        .collect();
    assert_eq!(of, vec![ids[1].as_str(), ids[2].as_str()]);
    for r in all["replayed"].as_array().unwrap() {
        assert_eq!(
            ended(&server, "dl", r["call_id"].as_str().unwrap()),
            "success"
        );
    }
    assert!(
        letters(&server, "dl").is_empty(),
        "successes are no dead letters"
    );

    // Dropped without a replay; another app does not see them.
    let route = json!({"route": {"image": "ferrite/fail"}});
    client()
        .patch(format!("{}/v1/apps/dl/routes/job", server.url))
        .body(route.to_string())
        .send()
        .unwrap();
    let id = enqueue(&server, "/r/dl/job", "again");
    assert_eq!(ended(&server, "dl", &id), "error");
    assert_eq!(letters(&server, "dl"), vec![id.clone()]);
    create_route(
        &server,
        "other",
        json!({"path": "/x", "image": "ferrite/echo"}),
    );
    let (status, _) = get(&server, &format!("/apps/other/dead-letters/{id}"));
    assert_eq!(status, 404);
    let path = format!("/apps/dl/dead-letters/{id}");
    assert_eq!(v1(&server, reqwest::Method::DELETE, &path).0, 200);
    assert_eq!(v1(&server, reqwest::Method::DELETE, &path).0, 404);
    assert!(letters(&server, "dl").is_empty());
    let (status, _) = get(&server, "/apps/nope/dead-letters");
    assert_eq!(status, 404);
}

#[test]
fn the_cli_lists_inspects_replays_and_deletes_dead_letters() {
    require_images(&["ferrite/fail", "ferrite/echo"]);
    let server = TestServer::start();
    create_route(
        &server,
        "dlcli",
        json!({"path": "/job", "image": "ferrite/fail", "type": "async"}),
    );
    let ids: Vec<String> = (1..=3)
        .map(|n| enqueue(&server, "/r/dlcli/job", &format!("cli {n}")))
        .collect();
    for id in &ids {
        assert_eq!(ended(&server, "dlcli", id), "error");
    }
    let table = ok(&server, &["dead-letters", "list", "dlcli"]);
    for id in &ids {
        assert!(table.contains(id.as_str()), "{table}");
    }
    let (page, more) = ok_out(&server, &["dead-letters", "list", "dlcli", "--limit", "1"]);
    assert!(
        page.contains(ids[2].as_str()) && !page.contains(ids[0].as_str()),
        "{page}"
    );
    assert_eq!(more.trim(), format!("more: --cursor {}", ids[2]));
    let shown = ok(&server, &["dead-letters", "inspect", "dlcli", &ids[0]]);
    assert!(shown.contains("request: POST "), "{shown}");
    assert!(shown.contains("authorization: ***"), "{shown}");
    assert!(shown.contains("body (utf-8): cli 1"), "{shown}");
    assert!(!shown.contains("caller-secret"), "{shown}");
    let letter = ok_json(&server, &["dead-letters", "inspect", "dlcli", &ids[0]]);
    assert_eq!(letter["call"]["id"], ids[0].as_str());

    client()
        .patch(format!("{}/v1/apps/dlcli/routes/job", server.url))
        .body(json!({"route": {"image": "ferrite/echo"}}).to_string())
        .send()
        .unwrap();
    let one = ok(&server, &["dead-letters", "replay", "dlcli", &ids[0]]);
    assert!(
        one.starts_with(&format!("{} replayed as ", ids[0])),
        "{one}"
    );
    assert_eq!(
        ok(&server, &["dead-letters", "delete", "dlcli", &ids[1]]).trim(),
        format!("dead letter {} deleted", ids[1])
    );
    let all = ok_json(&server, &["dead-letters", "replay", "dlcli", "--all"]);
    let of: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replay_of"].as_str().unwrap())
        .collect();
    assert_eq!(of, vec![ids[2].as_str()]);
    assert_eq!(
        ok(&server, &["dead-letters", "replay", "dlcli", "--all"]).trim(),
        "no dead letters"
    );
    let line = fails(&server, &["dead-letters", "inspect", "dlcli", &ids[1]]);
    assert!(
        line.contains("404 Not Found: Dead letter not found"),
        "{line}"
    );
    let neither = common::cli::run(&server, &["dead-letters", "replay", "dlcli"]);
    assert!(!neither.status.success());
    assert!(String::from_utf8_lossy(&neither.stderr).contains("<ID>"));
}
