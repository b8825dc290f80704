//! `ferrite calls` against a real server running real functions on the local
//! Docker engine (images from `scripts/images.sh`): the call history as a
//! table and as JSON, one call's fields, its log and output byte for byte,
//! cancelling a queued call, and errors as one line.

mod common;

use std::time::Duration;

use common::cli::{field, first_column, header, ok, ok_json, ok_out, only_error_line, run, values};
use common::{client, eventually, require_images, TestServer};
use serde_json::Value;

/// How long a sync call may take to show in the history (written in batches).
const HISTORY_WAIT: Duration = Duration::from_secs(15);
/// How long an async call may take to run to its end.
const ASYNC_WAIT: Duration = Duration::from_secs(60);

/// Run a command that must fail with exit code `code` (1 for what the server
/// or the command reported, 2 for bad arguments), nothing on stdout and one
/// `error:` line on stderr; that line.
fn fails_with(server: &TestServer, code: i32, args: &[&str]) -> String {
    only_error_line(&run(server, args), code, args)
}

/// Call `/r/{app}{path}` with `body`; the answer's status and the call's id
/// (`fn-call-id` of a sync call, `call_id` of an async one's 202).
fn invoke(server: &TestServer, app: &str, path: &str, body: &[u8]) -> (u16, String) {
    let response = client()
        .post(format!("{}/r/{app}{path}", server.url))
        .body(body.to_vec())
        .send()
        .unwrap_or_else(|e| panic!("cannot call {path}: {e}"));
    let status = response.status().as_u16();
    if status == 202 {
        let answer: Value = response.json().expect("a JSON 202");
        let id = answer["call_id"].as_str().unwrap_or_default().to_string();
        assert!(!id.is_empty(), "no call_id in {answer}");
        return (status, id);
    }
    let id = response
        .headers()
        .get("fn-call-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no fn-call-id from {path} ({status})"))
        .to_string();
    (status, id)
}

/// Wait until the history of `app` holds `count` calls; them, newest first.
fn wait_for_calls(server: &TestServer, app: &str, count: usize) -> Value {
    let mut calls = Value::Null;
    let seen = eventually(HISTORY_WAIT, || {
        calls = ok_json(server, &["calls", "list", app]);
        calls.as_array().map(Vec::len) == Some(count)
    });
    assert!(seen, "{count} calls expected, the history has {calls}");
    calls
}

/// The app `myapp` with `routes`, each the arguments of `routes create myapp`.
fn myapp_with(server: &TestServer, routes: &[&[&str]]) {
    ok(server, &["apps", "create", "myapp"]);
    for route in routes {
        ok(server, &[&["routes", "create", "myapp"], *route].concat());
    }
}

/// An app with a route to `ferrite/hello` at /hello and `ferrite/fail` at /fail.
fn hello_and_fail(server: &TestServer) {
    myapp_with(
        server,
        &[&["/hello", "ferrite/hello"], &["/fail", "ferrite/fail"]],
    );
}

/// What `calls <what> myapp <id>` (`logs` or `output`) printed, byte for
/// byte; it must succeed.
#[track_caller]
fn printed(server: &TestServer, what: &str, id: &str) -> String {
    let out = run(server, &["calls", what, "myapp", id]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn list_filters_and_pages() {
    require_images(&["ferrite/hello", "ferrite/fail"]);
    let server = TestServer::start();
    hello_and_fail(&server);
    let (status, first) = invoke(&server, "myapp", "/hello", b"{\"name\":\"One\"}");
    assert_eq!(status, 200);
    let (status, failed) = invoke(&server, "myapp", "/fail", b"");
    assert!(status >= 400, "{status}");
    let (status, last) = invoke(&server, "myapp", "/hello", b"");
    assert_eq!(status, 200);
    let newest_first = [last.as_str(), failed.as_str(), first.as_str()];

    let calls = wait_for_calls(&server, "myapp", 3);
    assert_eq!(values(&calls, "id"), newest_first);
    assert_eq!(calls[1]["status"], "error", "{calls}");
    assert_eq!(calls[1]["path"], "/fail", "{calls}");
    assert_eq!(calls[0]["status"], "success", "{calls}");
    assert_eq!(calls[0]["type"], "sync", "{calls}");

    let (table, more) = ok_out(&server, &["calls", "list", "myapp"]);
    assert_eq!(more, "");
    assert_eq!(
        header(&table),
        ["ID", "PATH", "VERSION", "STATUS", "CREATED", "DURATION", "ATTEMPTS", "ERROR"]
    );
    assert_eq!(first_column(&table), newest_first);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][1..4], ["/hello", "1", "success"], "{table}");
    assert_eq!(rows[0][6..], ["1", "-"], "{table}");
    assert_eq!(rows[1][1..4], ["/fail", "1", "error"], "{table}");
    assert_ne!(rows[1][7], "-", "an error call shows its error:\n{table}");

    // Filters.
    let only_errors = ok(&server, &["calls", "list", "myapp", "--status", "error"]);
    assert_eq!(first_column(&only_errors), [failed.as_str()]);
    let successes = ok_json(&server, &["calls", "list", "myapp", "--status", "success"]);
    assert_eq!(values(&successes, "id"), [last.as_str(), first.as_str()]);
    let hello = ok(&server, &["calls", "list", "myapp", "--path", "/hello"]);
    assert_eq!(first_column(&hello), [last.as_str(), first.as_str()]);
    let fail = ok(&server, &["calls", "list", "myapp", "--path", "fail"]);
    assert_eq!(first_column(&fail), [failed.as_str()]);
    let none = ok(&server, &["calls", "list", "myapp", "--status", "queued"]);
    assert_eq!(first_column(&none), Vec::<String>::new());

    // Pages: the next one is named on stderr; --all follows them all.
    let (page, more) = ok_out(&server, &["calls", "list", "myapp", "--limit", "1"]);
    assert_eq!(first_column(&page), [last.as_str()]);
    assert_eq!(more, format!("more: --cursor {last}\n"));
    let (page, more) = ok_out(
        &server,
        &["calls", "list", "myapp", "--limit", "1", "--cursor", &last],
    );
    assert_eq!(first_column(&page), [failed.as_str()]);
    assert_eq!(more, format!("more: --cursor {failed}\n"));
    let (page, more) = ok_out(
        &server,
        &["calls", "list", "myapp", "--limit", "2", "--cursor", &last],
    );
    assert_eq!(first_column(&page), [failed.as_str(), first.as_str()]);
    assert_eq!(more, format!("more: --cursor {first}\n"));

    let (all, more) = ok_out(
        &server,
        &["calls", "list", "myapp", "--limit", "1", "--all"],
    );
    assert_eq!(first_column(&all), newest_first);
    assert_eq!(more, "");
    let (json, more) = ok_out(
        &server,
        &["calls", "list", "myapp", "--limit", "2", "--all", "--json"],
    );
    assert_eq!(more, "");
    let json: Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(values(&json, "id"), newest_first);
    let (json, more) = ok_out(
        &server,
        &["calls", "list", "myapp", "--limit", "1", "--json"],
    );
    let json: Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(values(&json, "id"), [last.as_str()]);
    assert_eq!(more, format!("more: --cursor {last}\n"));
    let after = ok(
        &server,
        &["calls", "list", "myapp", "--all", "--cursor", &failed],
    );
    assert_eq!(first_column(&after), [first]);
}

#[test]
fn inspect_and_logs_of_sync_calls() {
    require_images(&["ferrite/hello", "ferrite/fail"]);
    let server = TestServer::start();
    hello_and_fail(&server);
    let (_, failed) = invoke(&server, "myapp", "/fail", b"");
    let (_, hello) = invoke(&server, "myapp", "/hello", b"{\"name\":\"Log\"}");
    wait_for_calls(&server, "myapp", 2);

    let details = ok(&server, &["calls", "inspect", "myapp", &failed]);
    assert_eq!(field(&details, "ID"), failed);
    assert_eq!(field(&details, "APP"), "myapp");
    assert_eq!(field(&details, "PATH"), "/fail");
    assert_eq!(field(&details, "TYPE"), "sync");
    assert_eq!(field(&details, "STATUS"), "error");
    assert_eq!(field(&details, "ATTEMPTS"), "1");
    for set in ["CREATED", "STARTED", "COMPLETED", "DURATION", "ERROR"] {
        assert_ne!(field(&details, set), "-", "{set} unset:\n{details}");
    }

    let call = ok_json(&server, &["calls", "inspect", "myapp", &failed]);
    assert_eq!(call["id"], failed.as_str());
    assert_eq!(call["app_name"], "myapp");
    assert_eq!(call["status"], "error");
    assert_eq!(call["attempts"], 1);
    assert!(call["error"].is_string(), "{call}");
    assert!(call["completed_at"].is_string(), "{call}");
    let call = ok_json(&server, &["calls", "inspect", "myapp", &hello]);
    assert_eq!(call["status"], "success");
    assert!(call.get("error").is_none(), "{call}");

    // The log is the function's stderr, byte for byte.
    assert_eq!(
        printed(&server, "logs", &failed),
        "fail: exiting with code 3\n"
    );
    assert_eq!(printed(&server, "logs", &hello), "");
    // A sync call's answer went to its caller: no output is kept.
    assert_eq!(printed(&server, "output", &hello), "");
}

#[test]
fn async_call_output_once_it_succeeds() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start();
    myapp_with(
        &server,
        &[&["/hello-async", "ferrite/hello", "--type", "async"]],
    );
    let (status, id) = invoke(&server, "myapp", "/hello-async", b"{\"name\":\"Async\"}");
    assert_eq!(status, 202);

    let mut call = Value::Null;
    let done = eventually(ASYNC_WAIT, || {
        call = ok_json(&server, &["calls", "inspect", "myapp", &id]);
        call["status"] == "success"
    });
    assert!(done, "not a success: {call}\n{}", server.log());
    assert_eq!(call["type"], "async");
    assert_eq!(call["path"], "/hello-async");

    assert_eq!(printed(&server, "output", &id), "Hello Async!\n");
    assert_eq!(printed(&server, "logs", &id), "");
    let listed = ok(&server, &["calls", "list", "myapp", "--status", "success"]);
    assert_eq!(first_column(&listed), [id]);
}

#[test]
fn cancel_a_queued_call() {
    // No async worker on this node: queued calls stay queued.
    let server = TestServer::start_with_env(&[("FERRITE_ASYNC_CONCURRENCY", "0")]);
    myapp_with(
        &server,
        &[&[
            "/sleep",
            "ferrite/sleep",
            "--type",
            "async",
            "--timeout",
            "600",
        ]],
    );
    let (status, id) = invoke(&server, "myapp", "/sleep", b"300");
    assert_eq!(status, 202);
    let (_, other) = invoke(&server, "myapp", "/sleep", b"300");

    let queued = ok(&server, &["calls", "list", "myapp", "--status", "queued"]);
    assert_eq!(first_column(&queued), [other.as_str(), id.as_str()]);
    let details = ok(&server, &["calls", "inspect", "myapp", &id]);
    assert_eq!(field(&details, "STATUS"), "queued");
    assert_eq!(field(&details, "STARTED"), "-");
    assert_eq!(field(&details, "ATTEMPTS"), "0");

    let out = ok(&server, &["calls", "cancel", "myapp", &id]);
    assert_eq!(out, format!("call {id} cancelled\n"));
    let details = ok(&server, &["calls", "inspect", "myapp", &id]);
    assert_eq!(field(&details, "STATUS"), "cancelled");
    assert_ne!(field(&details, "COMPLETED"), "-");

    // Only a queued call can be cancelled: the error names the state.
    let err = fails_with(&server, 1, &["calls", "cancel", "myapp", &id]);
    assert!(err.starts_with("error: 409 Conflict: "), "{err}");
    assert!(err.contains("cancelled"), "{err}");

    let call = ok_json(&server, &["calls", "cancel", "myapp", &other]);
    assert_eq!(call["id"], other.as_str());
    assert_eq!(call["status"], "cancelled");
    let cancelled = ok_json(
        &server,
        &["calls", "list", "myapp", "--status", "cancelled"],
    );
    assert_eq!(values(&cancelled, "id"), [other, id]);
    let queued = ok(&server, &["calls", "list", "myapp", "--status", "queued"]);
    assert_eq!(first_column(&queued), Vec::<String>::new());
}

#[test]
fn unknown_calls_and_bad_arguments_are_one_line() {
    let server = TestServer::start();
    myapp_with(&server, &[]);
    for args in [
        &["calls", "inspect", "myapp", "nope"][..],
        &["calls", "inspect", "myapp", "nope", "--json"],
        &["calls", "logs", "myapp", "nope"],
        &["calls", "output", "myapp", "nope"],
        &["calls", "cancel", "myapp", "nope"],
    ] {
        // Fn's and IronFunctions' words: the id is the one the command was given.
        let err = fails_with(&server, 1, args);
        assert!(
            err.starts_with("error: 404 Not Found: Call not found (/v1/apps/myapp/calls/nope"),
            "{args:?}: {err}"
        );
    }
    let err = fails_with(&server, 1, &["calls", "list", "nope"]);
    assert_eq!(
        err,
        "error: 404 Not Found: App not found (/v1/apps/nope/calls)"
    );

    // Rejected before anything is sent, by the argument parser (exit code 2).
    let err = fails_with(&server, 2, &["calls", "list", "myapp", "--status", "done"]);
    assert_eq!(
        err,
        "error: invalid value 'done' for '--status <STATUS>': \
         expected one of queued, running, success, error, timeout, cancelled"
    );
    for limit in ["0", "1001", "x"] {
        let err = fails_with(&server, 2, &["calls", "list", "myapp", "--limit", limit]);
        assert!(err.contains("--limit"), "{err}");
    }
    assert_eq!(
        first_column(&ok(&server, &["calls", "list", "myapp"])),
        Vec::<String>::new()
    );
}
