//! `ferrite routes call` against a real server running real functions on the
//! local Docker engine (images from `scripts/images.sh`): the answer's body on
//! stdout byte for byte, failures as one `error:` line and exit code 1.

mod common;

use std::process::{Command, Output};

use common::cli::{self, only_error_line, unreachable_cmd};
use common::{ferrite_cmd, output_with_stdin, TestServer};

/// Run `ferrite routes call ARGS` with `stdin` piped in and closed.
fn call_with(server: &TestServer, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = ferrite_cmd(server);
    cmd.envs(env.iter().copied());
    run_call(cmd, args, stdin)
}

fn run_call(mut cmd: Command, args: &[&str], stdin: &[u8]) -> Output {
    output_with_stdin(cmd.args(["routes", "call"]).args(args), stdin)
}

fn call(server: &TestServer, args: &[&str], stdin: &[u8]) -> Output {
    call_with(server, &[], args, stdin)
}

/// A call that must succeed; its stdout, exactly.
fn ok(out: Output, args: &[&str]) -> Vec<u8> {
    assert!(
        out.status.success(),
        "ferrite routes call {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A call that must fail with exit code 1, nothing on stdout and one
/// `error:` line on stderr; that line.
#[track_caller]
fn failed(out: Output, args: &[&str]) -> String {
    only_error_line(&out, 1, args)
}

/// Stop the server as an operator would (SIGTERM), so that it removes the
/// containers it started ahead; dropping it would kill it and leave them.
fn stop(mut server: TestServer) {
    let status = server.terminate();
    assert!(
        status.success(),
        "server exited with {status}:\n{}",
        server.log()
    );
}

#[test]
fn successful_calls_print_the_body_as_is() {
    let server = TestServer::start();
    cli::ok(&server, &["apps", "create", "myapp"]);
    cli::ok(
        &server,
        &["routes", "create", "myapp", "/hello-sync", "ferrite/hello"],
    );
    cli::ok(
        &server,
        &["routes", "create", "myapp", "/a/echo", "ferrite/echo"],
    );

    let args = ["myapp", "/hello-sync"];
    let stdout = ok(call(&server, &args, b"{\"name\":\"Johnny\"}\n"), &args);
    assert_eq!(stdout, b"Hello Johnny!\n");

    // GET: the body travels as the `payload` query parameter.
    let args = ["myapp", "/hello-sync", "--method", "GET"];
    let stdout = ok(call(&server, &args, b"{\"name\":\"Get\"}"), &args);
    assert_eq!(stdout, b"Hello Get!\n");

    // --include: status and headers on stderr, stdout still only the body.
    let args = ["myapp", "hello-sync", "-i"];
    let out = call(&server, &args, b"{\"name\":\"Inc\"}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(ok(out, &args), b"Hello Inc!\n");
    assert!(stderr.starts_with("HTTP/1.1 200 OK\n"), "{stderr}");
    let call_id = stderr
        .lines()
        .find_map(|line| line.strip_prefix("fn-call-id: "))
        .unwrap_or_else(|| panic!("no fn-call-id in {stderr}"));
    assert!(!call_id.is_empty());

    // Binary bodies both ways, the method and request headers reach the
    // function, and the JWT_AUTH_KEY token (for /v1 only) is not sent.
    let args = ["myapp", "/a/echo", "-X", "put", "--header", "X-Trace: a b"];
    let body = b"\x00\xffbinary\n\n";
    let out = call_with(&server, &[("JWT_AUTH_KEY", "admin")], &args, body);
    let stdout = ok(out, &args);
    assert!(
        stdout.ends_with(b"--- stdin ---\n\x00\xffbinary\n\n"),
        "{stdout:?}"
    );
    let env = String::from_utf8_lossy(&stdout);
    assert!(env.lines().any(|l| l == "METHOD=PUT"), "{env}");
    assert!(env.lines().any(|l| l == "HEADER_X_TRACE=a b"), "{env}");
    assert!(!env.contains("HEADER_AUTHORIZATION"), "{env}");
    stop(server);
}

#[test]
fn failed_calls_are_one_error_line() {
    let server = TestServer::start();
    cli::ok(&server, &["apps", "create", "myapp"]);
    cli::ok(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/fail",
            "ferrite/fail",
            "--config",
            "EXIT_CODE=3",
        ],
    );
    cli::ok(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/slow",
            "ferrite/sleep",
            "--timeout",
            "1",
        ],
    );

    let args = ["myapp", "/fail"];
    let line = failed(call(&server, &args, b""), &args);
    assert_eq!(
        line,
        "error: 500 Internal Server Error: exit code 3 (/r/myapp/fail)"
    );

    let args = ["myapp", "/slow"];
    let line = failed(call(&server, &args, b"30"), &args);
    assert_eq!(
        line,
        "error: 504 Gateway Timeout: Timed out (/r/myapp/slow)"
    );

    let args = ["myapp", "/nope"];
    let line = failed(call(&server, &args, b""), &args);
    assert!(line.starts_with("error: 404 Not Found: "), "{line}");
    let args = ["noapp", "/fail"];
    let line = failed(call(&server, &args, b""), &args);
    assert!(line.starts_with("error: 404 Not Found: "), "{line}");

    // With --include a failed call still shows its id, then the error line.
    let args = ["myapp", "/fail", "--include"];
    let out = call(&server, &args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\nfn-call-id: "), "{stderr}");
    assert!(
        stderr.ends_with("\nerror: 500 Internal Server Error: exit code 3 (/r/myapp/fail)\n"),
        "{stderr}"
    );

    let args = ["myapp", "/fail", "--header", "no colon"];
    let line = failed(call(&server, &args, b""), &args);
    assert!(line.contains("expected 'NAME: VALUE'"), "{line}");
    stop(server);
}

#[test]
fn routes_with_a_jwt_key_need_its_token() {
    // The server's own key guards /v1 only; the route's key guards the call.
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "admin")]);
    let admin = [("JWT_AUTH_KEY", "admin")];
    let create = |args: &[&str]| {
        let mut cmd = ferrite_cmd(&server);
        cmd.envs(admin);
        cli::ok_cmd(cmd, args);
    };
    create(&["apps", "create", "myapp"]);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("route.key");
    std::fs::write(&key_file, "k\n").unwrap();
    create(&[
        "routes",
        "create",
        "myapp",
        "/secret",
        "ferrite/hello",
        "--jwt-key-file",
        key_file.to_str().unwrap(),
    ]);
    create(&["routes", "create", "myapp", "/open", "ferrite/hello"]);

    // The route's key comes from FERRITE_ROUTE_JWT_KEY, never from a flag.
    let name = b"{\"name\":\"Jwt\"}";
    let args = ["myapp", "/secret"];
    let line = failed(call_with(&server, &admin, &args, name), &args);
    assert!(line.starts_with("error: 401 Unauthorized: "), "{line}");
    let wrong = [("FERRITE_ROUTE_JWT_KEY", "wrong")];
    let line = failed(call_with(&server, &wrong, &args, name), &args);
    assert!(line.starts_with("error: 401 Unauthorized: "), "{line}");
    let flag = ["myapp", "/secret", "--jwt-key", "k"];
    let line = only_error_line(&call(&server, &flag, name), 2, &flag);
    assert!(line.contains("--jwt-key"), "{line}");

    let route_key = [("JWT_AUTH_KEY", "admin"), ("FERRITE_ROUTE_JWT_KEY", "k")];
    assert_eq!(
        ok(call_with(&server, &route_key, &args, name), &args),
        b"Hello Jwt!\n"
    );
    let args = ["myapp", "/open"];
    assert_eq!(ok(call(&server, &args, name), &args), b"Hello Jwt!\n");
    stop(server);
}

#[test]
fn an_unreachable_server_is_one_line() {
    let (cmd, url) = unreachable_cmd();
    let args = ["myapp", "/hello"];
    let line = failed(run_call(cmd, &args, b""), &args);
    assert!(
        line.starts_with(&format!("error: cannot reach the server at {url}")),
        "{line}"
    );
}
