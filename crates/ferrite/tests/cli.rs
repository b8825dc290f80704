// Long: one test per CLI verb group, sharing common/cli.rs's runners; one binary for all.
//! The client commands of the real `ferrite` binary against a real server:
//! tables for people, `--json` for scripts, and one-line errors.

mod common;

use common::cli::{
    error_line, fails, field, first_column, header, ok, ok_cmd, ok_json, run_cmd, unreachable_cmd,
    values,
};
use common::{ferrite_cmd, TestServer};
use serde_json::Value;

/// A server with the app `myapp`, and in it a route of `ferrite/hello` at
/// each of `paths`.
fn start_with_myapp(paths: &[&str]) -> TestServer {
    let server = TestServer::start();
    ok(&server, &["apps", "create", "myapp"]);
    for path in paths {
        ok(
            &server,
            &["routes", "create", "myapp", path, "ferrite/hello"],
        );
    }
    server
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// `delete` with `--json` answers a message, and `list` then has one left.
#[track_caller]
fn assert_deleted_leaving_one(server: &TestServer, delete: &[&str], list: &[&str]) {
    let answer = ok_json(server, delete);
    assert!(answer["message"].is_string(), "{answer}");
    let left = ok_json(server, list);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
}

#[test]
fn apps_in_tables() {
    let server = TestServer::start();
    assert_eq!(
        first_column(&ok(&server, &["apps", "list"])),
        Vec::<String>::new()
    );

    let out = ok(&server, &["apps", "create", "myapp", "--config", "A=1"]);
    assert_eq!(out.trim(), "App myapp created");
    ok(&server, &["apps", "create", "other"]);

    let list = ok(&server, &["apps", "list"]);
    assert_eq!(header(&list), ["NAME", "CONFIG"]);
    assert_eq!(sorted(first_column(&list)), ["myapp", "other"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("myapp"))
        .unwrap_or_default();
    assert!(row.contains("A=1"), "{list}");

    let details = ok(&server, &["apps", "inspect", "myapp"]);
    assert_eq!(field(&details, "NAME"), "myapp");
    assert_eq!(field(&details, "CONFIG"), "A=1");

    let out = ok(&server, &["apps", "update", "myapp", "--config", "B=2"]);
    assert_eq!(out.trim(), "App myapp updated");
    let details = ok(&server, &["apps", "inspect", "myapp"]);
    assert!(
        details.contains("A=1") && details.contains("B=2"),
        "{details}"
    );

    let out = ok(&server, &["apps", "delete", "other"]);
    assert_eq!(out.trim(), "App other deleted");
    assert_eq!(first_column(&ok(&server, &["apps", "list"])), ["myapp"]);
}

#[test]
fn apps_in_json() {
    let server = TestServer::start();
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));

    let app = ok_json(
        &server,
        &[
            "apps", "create", "myapp", "--config", "A=1", "--config", "B=x=y",
        ],
    );
    assert_eq!(app["name"], "myapp");
    assert_eq!(app["config"], serde_json::json!({"A": "1", "B": "x=y"}));

    let app = ok_json(&server, &["apps", "create", "bare"]);
    assert_eq!(app["config"], Value::Null);

    let apps = ok_json(&server, &["apps", "list"]);
    assert_eq!(sorted(values(&apps, "name")), ["bare", "myapp"]);

    let app = ok_json(&server, &["apps", "inspect", "myapp"]);
    assert_eq!(app["config"]["A"], "1");

    let app = ok_json(
        &server,
        &[
            "apps", "update", "myapp", "--config", "C=3", "--config", "A=",
        ],
    );
    assert_eq!(app["config"], serde_json::json!({"B": "x=y", "C": "3"}));

    assert_deleted_leaving_one(&server, &["apps", "delete", "bare"], &["apps", "list"]);
}

#[test]
fn app_config_set_and_unset() {
    let server = start_with_myapp(&[]);

    config_set_and_unset(
        &server,
        &["apps", "config"],
        &["myapp"],
        "App myapp",
        [("DB", "postgres://db/x"), ("LEVEL", "debug")],
    );
    assert_eq!(
        ok_json(&server, &["apps", "inspect", "myapp"])["config"],
        Value::Null
    );

    let err = fails(&server, &["apps", "config", "set", "myapp", "K", ""]);
    assert!(err.contains("unset"), "{err}");
}

#[test]
fn routes_in_tables() {
    let server = start_with_myapp(&[]);
    assert_eq!(
        first_column(&ok(&server, &["routes", "list", "myapp"])),
        Vec::<String>::new()
    );

    let out = ok(
        &server,
        &["routes", "create", "myapp", "/hello", "ferrite/hello"],
    );
    assert_eq!(out.trim(), "Route /hello of app myapp created");
    let out = ok(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a/b",
            "ferrite/other:1.0",
            "--memory",
            "256",
            "--type",
            "async",
            "--format",
            "http",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(out.trim(), "Route /a/b of app myapp created");

    let list = ok(&server, &["routes", "list", "myapp"]);
    assert_eq!(
        header(&list),
        ["PATH", "IMAGE", "TYPE", "FORMAT", "MEMORY", "TIMEOUT"]
    );
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("/a/b"))
        .unwrap_or_else(|| panic!("no /a/b in:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "/a/b",
            "ferrite/other:1.0",
            "async",
            "http",
            "256",
            "MiB",
            "60s"
        ]
    );
    assert_eq!(sorted(first_column(&list)), ["/a/b", "/hello"]);

    let details = ok(&server, &["routes", "inspect", "myapp", "/hello"]);
    assert_eq!(field(&details, "APP"), "myapp");
    assert_eq!(field(&details, "PATH"), "/hello");
    assert_eq!(field(&details, "IMAGE"), "ferrite/hello");
    assert_eq!(field(&details, "TYPE"), "sync");
    assert_eq!(field(&details, "FORMAT"), "default");
    assert_eq!(field(&details, "MEMORY"), "128 MiB");
    assert_eq!(field(&details, "TIMEOUT"), "30s");
    assert_eq!(field(&details, "IDLE TIMEOUT"), "30s");
    assert_eq!(field(&details, "MAX CONCURRENCY"), "1");
    assert_eq!(field(&details, "MAX RETRIES"), "0");
    assert_eq!(field(&details, "JWT KEY"), "-");

    let out = ok(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/hello",
            "--image",
            "ferrite/hello:2",
            "--memory",
            "64",
        ],
    );
    assert_eq!(out.trim(), "Route /hello of app myapp updated");
    let details = ok(&server, &["routes", "inspect", "myapp", "/hello"]);
    assert_eq!(field(&details, "IMAGE"), "ferrite/hello:2");
    assert_eq!(field(&details, "MEMORY"), "64 MiB");

    let out = ok(&server, &["routes", "delete", "myapp", "/a/b"]);
    assert_eq!(out.trim(), "Route /a/b of app myapp deleted");
    assert_eq!(
        first_column(&ok(&server, &["routes", "list", "myapp"])),
        ["/hello"]
    );
}

#[test]
fn routes_in_json() {
    let server = start_with_myapp(&[]);
    // A route's key comes from a file: a flag would land in shell history.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("route.key");
    std::fs::write(&key_file, "route-secret\n").unwrap();
    let key_file = key_file.to_str().unwrap();

    let route = ok_json(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a/b",
            "ferrite/hello",
            "--memory",
            "256",
            "--type",
            "async",
            "--format",
            "http",
            "--max-concurrency",
            "3",
            "--timeout",
            "10",
            "--idle-timeout",
            "5",
            "--max-retries",
            "2",
            "--header",
            "X-A=1",
            "--header",
            "X-A=2",
            "--header",
            "X-B=b",
            "--config",
            "K=V",
            "--jwt-key-file",
            key_file,
        ],
    );
    assert_eq!(route["app_name"], "myapp");
    assert_eq!(route["path"], "/a/b");
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["memory"], 256);
    assert_eq!(route["type"], "async");
    assert_eq!(route["format"], "http");
    assert_eq!(route["max_concurrency"], 3);
    assert_eq!(route["timeout"], 10);
    assert_eq!(route["idle_timeout"], 5);
    assert_eq!(route["max_retries"], 2);
    assert_eq!(
        route["headers"],
        serde_json::json!({"X-A": ["1", "2"], "X-B": ["b"]})
    );
    assert_eq!(route["config"], serde_json::json!({"K": "V"}));
    // Write-only: the answer says that there is a key, never what it is.
    assert_eq!(route["jwt_key_set"], true);
    assert!(!route.to_string().contains("route-secret"), "{route}");

    let route = ok_json(
        &server,
        &["routes", "create", "myapp", "plain", "ferrite/hello"],
    );
    assert_eq!(route["path"], "/plain");
    assert_eq!(route["memory"], 128);
    assert_eq!(route["type"], "sync");

    let routes = ok_json(&server, &["routes", "list", "myapp"]);
    assert_eq!(sorted(values(&routes, "path")), ["/a/b", "/plain"]);

    let route = ok_json(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["jwt_key_set"], true);
    assert!(!route.to_string().contains("route-secret"), "{route}");
    let details = ok(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(field(&details, "JWT KEY"), "set");
    assert!(!details.contains("route-secret"), "{details}");

    let route = ok_json(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/a/b",
            "--timeout",
            "20",
            "--header",
            "X-A=",
            "--config",
            "K=",
            "--config",
            "L=2",
            "--no-jwt-key",
        ],
    );
    assert_eq!(route["timeout"], 20);
    assert_eq!(route["memory"], 256);
    assert_eq!(route["headers"], serde_json::json!({"X-B": ["b"]}));
    assert_eq!(route["config"], serde_json::json!({"L": "2"}));
    assert!(route.get("jwt_key").is_none(), "{route}");
    assert!(route.get("jwt_key_set").is_none(), "{route}");
    let details = ok(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(field(&details, "JWT KEY"), "-");

    assert_deleted_leaving_one(
        &server,
        &["routes", "delete", "myapp", "/plain"],
        &["routes", "list", "myapp"],
    );
}

#[test]
fn route_config_set_and_unset() {
    let server = start_with_myapp(&["/a/b"]);

    config_set_and_unset(
        &server,
        &["routes", "config"],
        &["myapp", "/a/b"],
        "Route /a/b of app myapp",
        [("K", "v 1"), ("L", "2")],
    );
}

/// `config set` of two keys on what `target` names (`shown` in messages),
/// then `config unset` of both: the messages, and with `--json` the config.
fn config_set_and_unset(
    server: &TestServer,
    config: &[&str],
    target: &[&str],
    shown: &str,
    [(k1, v1), (k2, v2)]: [(&str, &str); 2],
) {
    let out = ok(server, &[config, &["set"], target, &[k1, v1]].concat());
    assert_eq!(out.trim(), format!("{shown}: config {k1} set"));
    let object = ok_json(server, &[config, &["set"], target, &[k2, v2]].concat());
    assert_eq!(object["config"], serde_json::json!({ k1: v1, k2: v2 }));

    let out = ok(server, &[config, &["unset"], target, &[k1]].concat());
    assert_eq!(out.trim(), format!("{shown}: config {k1} unset"));
    let object = ok_json(server, &[config, &["unset"], target, &[k2]].concat());
    assert_eq!(object["config"], Value::Null);
}

#[test]
fn deleting_an_app_with_routes_needs_cascade() {
    let server = start_with_myapp(&["/hello"]);

    let err = fails(&server, &["apps", "delete", "myapp"]);
    assert!(err.starts_with("error: 400 Bad Request: "), "{err}");

    let out = ok(&server, &["apps", "delete", "myapp", "--cascade"]);
    assert_eq!(out.trim(), "App myapp deleted");
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));
}

#[test]
fn server_errors_are_one_line_with_the_servers_message() {
    let server = TestServer::start();
    for args in [
        &["apps", "inspect", "nope"][..],
        &["apps", "delete", "nope"],
        &["apps", "update", "nope", "--config", "A=1"],
        &["routes", "list", "nope"],
        &["apps", "inspect", "nope", "--json"],
    ] {
        let err = fails(&server, args);
        assert!(err.starts_with("error: 404 Not Found: "), "{args:?}: {err}");
        assert!(err.contains("nope"), "{args:?}: {err}");
    }

    ok(&server, &["apps", "create", "myapp"]);
    let err = fails(&server, &["apps", "create", "myapp"]);
    assert!(err.starts_with("error: 409 Conflict: "), "{err}");
    let err = fails(&server, &["routes", "inspect", "myapp", "/missing"]);
    assert!(err.starts_with("error: 404 Not Found: "), "{err}");
    let err = fails(&server, &["apps", "create", "bad name"]);
    assert!(err.starts_with("error: 400 Bad Request: "), "{err}");
    assert!(err.contains("bad name"), "{err}");
    let err = fails(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a",
            "ferrite/x",
            "--memory",
            "999999999",
        ],
    );
    assert!(err.starts_with("error: 400 Bad Request: "), "{err}");
    assert!(err.contains("memory"), "{err}");
}

#[test]
fn bad_arguments_are_one_line() {
    let server = TestServer::start();
    let err = fails(&server, &["apps", "create", "myapp", "--config", "nope"]);
    assert_eq!(err, "error: invalid --config \"nope\": expected KEY=VALUE");
    let err = fails(
        &server,
        &[
            "routes", "create", "myapp", "/a", "img", "--header", "X-A: 1",
        ],
    );
    assert_eq!(
        err,
        "error: invalid --header \"X-A: 1\": expected NAME=VALUE"
    );
    let err = fails(
        &server,
        &["routes", "update", "myapp", "/a", "--config", "=v"],
    );
    assert!(err.contains("--config"), "{err}");
    let err = fails(&server, &["routes", "update", "myapp", "/a"]);
    assert!(err.contains("nothing to update"), "{err}");
    // Nothing reached the server.
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));
}

#[test]
fn unreachable_server_is_one_line() {
    for args in [
        &["apps", "list"][..],
        &["routes", "list", "myapp", "--json"],
    ] {
        let (cmd, url) = unreachable_cmd();
        let err = error_line(&run_cmd(cmd, args), 1, args);
        assert!(
            err.starts_with(&format!("error: cannot reach the server at {url}: ")),
            "{err}"
        );
    }
}

#[test]
fn version_shows_client_and_server() {
    let server = TestServer::start();
    let out = ok(&server, &["version"]);
    let client = env!("CARGO_PKG_VERSION");
    assert!(out.contains(&format!("Client version: {client}")), "{out}");
    assert!(out.contains("Server version: "), "{out}");
    let versions = ok_json(&server, &["version"]);
    assert_eq!(versions["client"], client);
    assert!(versions["server"].is_string(), "{versions}");

    let (cmd, url) = unreachable_cmd();
    let out = run_cmd(cmd, &["version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Client version: {client}")
    );
    let err = error_line(&out, 1, &["version"]);
    assert!(
        err.contains(&format!("cannot reach the server at {url}")),
        "{err}"
    );
}

#[test]
fn jwt_auth() {
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "secret")]);

    // The client signs with the key in its environment, or sends no token.
    let with_key = |key: Option<&str>| {
        let mut cmd = ferrite_cmd(&server);
        match key {
            Some(key) => cmd.env("JWT_AUTH_KEY", key),
            None => cmd.env_remove("JWT_AUTH_KEY"),
        };
        cmd
    };
    ok_cmd(with_key(Some("secret")), &["apps", "create", "myapp"]);

    let stdout = ok_cmd(with_key(Some("secret")), &["apps", "list", "--json"]);
    let apps: Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(apps[0]["name"], "myapp", "{apps}");

    for key in [None, Some("wrong")] {
        let args = ["apps", "list"];
        let err = error_line(&run_cmd(with_key(key), &args), 1, &args);
        assert!(
            err.starts_with("error: 401 Unauthorized: "),
            "{key:?}: {err}"
        );
    }
}
