//! Request ids and structured logs against the real binary: every answer
//! carries `Fn-Request-Id` (the client's when valid, a fresh UUIDv7
//! otherwise, never an invalid one echoed), and with `LOG_FORMAT=json` every
//! line the server writes is one JSON object, those about a request carrying
//! its `request_id`, those about a call its `call_id`. (The commands of
//! docs/operating.md's "Request ids and logs" are run by tests/docs.rs.)

mod common;

use std::time::Duration;

use common::{client, create_route, eventually, require_images, TestServer};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};

const ID: &str = "fn-request-id";

fn start_json() -> TestServer {
    TestServer::start_with_env(&[("LOG_FORMAT", "json")])
}

/// The id an answer carries.
fn id_of(request: RequestBuilder) -> (u16, String) {
    let reply = request.send().unwrap();
    let id = reply
        .headers()
        .get(ID)
        .unwrap_or_else(|| panic!("no {ID} on a {} answer", reply.status()))
        .to_str()
        .unwrap()
        .to_string();
    (reply.status().as_u16(), id)
}

fn assert_uuid_v7(id: &str) {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    assert!(
        id.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{id} is not a UUID"
    );
    assert_eq!(&hex[12..13], "7", "{id} is not a UUIDv7");
}

/// Every line the server wrote, each parsed: a line that is not one JSON
/// object fails the test.
fn json_lines(server: &TestServer) -> Vec<Value> {
    server
        .log()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

/// The field of the request's (or the call's) span on a JSON log line.
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|span| span[field].as_str())
}

/// The lines whose spans carry `request_id`.
fn lines_of(server: &TestServer, request_id: &str) -> Vec<Value> {
    json_lines(server)
        .into_iter()
        .filter(|line| span_field(line, "request_id") == Some(request_id))
        .collect()
}

#[test]
fn every_answer_carries_a_request_id_the_clients_when_valid() {
    let server = start_json();
    let url = &server.url;
    // Ours, then the proxies' header, kept as they are.
    let (status, id) = id_of(client().get(format!("{url}/version")).header(ID, "abc-123"));
    assert_eq!((status, id.as_str()), (200, "abc-123"));
    let (_, id) = id_of(
        client()
            .get(format!("{url}/version"))
            .header("x-request-id", "proxy.7:x_Y"),
    );
    assert_eq!(id, "proxy.7:x_Y");
    let longest = "a".repeat(128);
    let (_, id) = id_of(client().get(format!("{url}/version")).header(ID, &longest));
    assert_eq!(id, longest);

    // Invalid ones are replaced, never echoed.
    let too_long = "a".repeat(129);
    for bad in ["bad id", "a\"b", "x{y}", "a/b", too_long.as_str()] {
        let (_, id) = id_of(client().get(format!("{url}/version")).header(ID, bad));
        assert_uuid_v7(&id);
        assert!(!server.log().contains(bad), "{bad:?} reached the log");
    }
    // None given: a fresh one each time.
    let (_, first) = id_of(client().get(format!("{url}/version")));
    let (_, second) = id_of(client().get(format!("{url}/version")));
    assert_uuid_v7(&first);
    assert_uuid_v7(&second);
    assert_ne!(first, second);

    // Refusals and failures carry it too: unknown path and method, bad
    // input, missing app, a body over the cap, an unknown function.
    let big = vec![b'x'; 1024 * 1024 + 1];
    let refusals = [
        (client().get(format!("{url}/nope")), 404),
        (client().put(format!("{url}/v1/apps")), 405),
        (client().post(format!("{url}/v1/apps")).body("{"), 400),
        (client().get(format!("{url}/v1/apps/missing")), 404),
        (client().post(format!("{url}/v1/apps")).body(big), 413),
        (client().post(format!("{url}/r/missing/fn")), 404),
        (client().get(format!("{url}/metrics")), 200),
        (client().get(format!("{url}/health")), 200),
        (client().get(format!("{url}/v1/openapi.json")), 200),
    ];
    for (n, (request, expected)) in refusals.into_iter().enumerate() {
        let given = format!("refusal-{n}");
        let (status, id) = id_of(request.header(ID, &given));
        assert_eq!((status, id.as_str()), (expected, given.as_str()));
    }
}

#[test]
fn json_log_lines_carry_the_request_id_and_the_call_id() {
    require_images(&["ferrite/hello"]);
    let server = start_json();
    let url = &server.url;
    let (status, id) = id_of(
        client()
            .post(format!("{url}/v1/apps"))
            .header(ID, "abc-123")
            .body(json!({"app": {"name": "observed"}}).to_string()),
    );
    assert_eq!((status, id.as_str()), (200, "abc-123"));
    let created = lines_of(&server, "abc-123");
    assert!(
        created.iter().any(|l| l["message"] == "app created"
            && l["app"] == "observed"
            && l["level"] == "INFO"
            && l["span"]["request_id"] == "abc-123"
            && l["span"]["method"] == "POST"
            && l["span"]["path"] == "/v1/apps"),
        "{created:?}"
    );

    // A sync call: its lines carry the request's id and the call's.
    create_route(
        &server,
        "observed",
        json!({"path": "/hello", "image": "ferrite/hello"}),
    );
    let reply = client()
        .post(format!("{url}/r/observed/hello"))
        .header(ID, "sync-call-1")
        .body("Ferrite")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()[ID], "sync-call-1");
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let finished: Vec<Value> = lines_of(&server, "sync-call-1")
        .into_iter()
        .filter(|l| l["message"] == "call finished")
        .collect();
    assert_eq!(finished.len(), 1, "{}", server.log());
    assert_eq!(span_field(&finished[0], "call_id"), Some(call_id.as_str()));

    // An async call: the worker's lines name the call.
    create_route(
        &server,
        "observed",
        json!({"path": "/later", "image": "ferrite/hello", "type": "async"}),
    );
    let reply = client()
        .post(format!("{url}/r/observed/later"))
        .header(ID, "async-call-1")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    assert_eq!(reply.headers()[ID], "async-call-1");
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let worked = || {
        json_lines(&server).into_iter().any(|l| {
            l["message"] == "call finished"
                && l["span"]["name"] == "async_call"
                && l["span"]["call_id"] == call_id.as_str()
        })
    };
    assert!(
        eventually(Duration::from_secs(30), worked),
        "{}",
        server.log()
    );

    // No line, of any request, is anything but one JSON object.
    let all = json_lines(&server);
    assert!(all.len() > 5);
    assert!(all
        .iter()
        .all(|l| l["timestamp"].is_string() && l["level"].is_string()));
}

#[test]
fn text_log_lines_name_the_request_too() {
    let server = TestServer::start();
    let reply = client()
        .post(format!("{}/v1/apps", server.url))
        .header(ID, "text-77")
        .body(json!({"app": {"name": "plain"}}).to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("app created"))
        .unwrap_or_else(|| panic!("no line about the app: {log}"));
    assert!(line.contains("request_id=text-77"), "{line}");
}
