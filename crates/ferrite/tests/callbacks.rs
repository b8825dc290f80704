//! Callbacks of async calls against the real engine: a call that names a
//! receiver in `X-Callback-Url` has its result POSTed there, signed, tried
//! again while the receiver fails and given up after the last try; calls
//! naming a receiver the operator did not allow are refused before they are
//! queued.

mod common;

use std::time::Duration;

use common::receiver::{Received, Receiver};
use common::{client, create_route, eventually, metric_value, require_images, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const KEY: &str = "callback key of the tests, 32 bytes or more";

fn server_for(receiver: &Receiver) -> TestServer {
    TestServer::start_with_env(&[
        ("FERRITE_CALLBACK_HOSTS", &receiver.addr),
        ("FERRITE_CALLBACK_KEY", KEY),
    ])
}

/// POST to `path` naming `callback`: (status, body).
fn call_with(server: &TestServer, path: &str, callback: &str) -> (u16, Value) {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .header("X-Callback-Url", callback)
        .body(r#"{"name":"Callback"}"#)
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

/// The value of `X-Ferrite-Signature` as a receiver checks it.
fn signature_holds(got: &Received) -> bool {
    let header = &got.headers["x-ferrite-signature"];
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(
        format!(
            "{t}.{}.{}.",
            got.headers["x-call-id"], got.headers["x-function-status"]
        )
        .as_bytes(),
    );
    mac.update(&got.body);
    hex::decode(v1).is_ok_and(|v1| mac.verify_slice(&v1).is_ok())
}

fn metric(server: &TestServer, outcome: &str) -> f64 {
    let series = format!("ferrite_callbacks_total{{outcome=\"{outcome}\"}}");
    metric_value(server, &series).unwrap_or(-1.0)
}

#[test]
fn the_result_reaches_the_callback_signed_after_the_receiver_recovers() {
    require_images(&["ferrite/hello"]);
    // Fails twice, then takes it.
    let receiver = Receiver::start(&[503, 500]);
    let server = server_for(&receiver);
    create_route(
        &server,
        "cb",
        json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
    );
    let url = format!("http://{}/done?from=ferrite", receiver.addr);
    let (status, body) = call_with(&server, "/r/cb/hello", &url);
    assert_eq!(status, 202, "{body}");
    let id = body["call_id"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(90), || receiver.received().len() >= 3),
        "3 tries expected: {:?}\n{}",
        receiver.received(),
        server.log()
    );
    let output = client()
        .get(format!("{}/v1/apps/cb/calls/{id}/output", server.url))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(String::from_utf8_lossy(&output).contains("Callback"));
    for got in receiver.received() {
        assert_eq!(
            (got.method.as_str(), got.path.as_str()),
            ("POST", "/done?from=ferrite")
        );
        assert_eq!(got.headers["x-call-id"], id);
        assert_eq!(got.headers["x-ferrite-status"], "success");
        assert_eq!(got.headers["x-function-status"], "200");
        assert_eq!(got.headers["x-ferrite-app"], "cb");
        assert_eq!(got.headers["x-ferrite-route"], "/hello");
        assert_eq!(got.body, output.to_vec());
        assert!(signature_holds(&got), "{got:?}");
    }
    // Taken at the third try: no fourth, and the task is gone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(metric(&server, "retried"), 2.0);
    assert_eq!(metric(&server, "delivered"), 1.0);
    let record: Value = client()
        .get(format!("{}/v1/apps/cb/calls/{id}", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(record["call"]["status"], "success", "{record}");
    assert_eq!(record["call"]["attempts"], 1, "the call ran once: {record}");
}

#[test]
fn a_receiver_that_keeps_failing_is_given_up_after_five_tries() {
    require_images(&["ferrite/hello"]);
    let receiver = Receiver::start(&[]);
    receiver.always(500);
    let server = server_for(&receiver);
    create_route(
        &server,
        "cbfail",
        json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
    );
    let (status, body) = call_with(
        &server,
        "/r/cbfail/hello",
        &format!("http://{}/", receiver.addr),
    );
    assert_eq!(status, 202, "{body}");
    // Waits of 1, 2, 4 and 8 s between the five tries.
    assert!(
        eventually(Duration::from_secs(90), || metric(&server, "given_up")
            == 1.0),
        "{}",
        server.log()
    );
    assert_eq!(receiver.received().len(), 5);
    assert_eq!(metric(&server, "retried"), 4.0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.received().len(), 5, "no try after the last");
}

#[test]
fn callbacks_the_operator_did_not_allow_are_refused_before_queueing() {
    require_images(&["ferrite/hello"]);
    let receiver = Receiver::start(&[]);
    let open = server_for(&receiver);
    let closed = TestServer::start();
    for server in [&open, &closed] {
        create_route(
            server,
            "cbno",
            json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
        );
        create_route(
            server,
            "cbno",
            json!({"path": "/sync", "image": "ferrite/hello"}),
        );
    }
    let (status, body) = call_with(
        &closed,
        "/r/cbno/hello",
        &format!("http://{}/", receiver.addr),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("FERRITE_CALLBACK_HOSTS"), "{message}");
    let port = receiver.addr.rsplit(':').next().unwrap();
    for refused in [
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://127.0.0.2:{port}/"),
        format!("http://{}:1/", "127.0.0.1"),
        format!("file://{}/etc/passwd", receiver.addr),
        "not a url".to_string(),
    ] {
        let (status, body) = call_with(&open, "/r/cbno/hello", &refused);
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // Nothing of them was queued or recorded.
    for server in [&open, &closed] {
        let calls: Value = client()
            .get(format!("{}/v1/apps/cbno/calls", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(calls["calls"].as_array().map(Vec::len), Some(0), "{calls}");
    }
    // A sync call answers its caller itself: the header changes nothing.
    let (status, _) = call_with(
        &closed,
        "/r/cbno/sync",
        &format!("http://{}/", receiver.addr),
    );
    assert_eq!(status, 200);
    assert!(receiver.received().is_empty());
}
