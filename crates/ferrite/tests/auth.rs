// Long: each way in to /v1 (loopback, key, token, proxy, CLI credential) is a test sharing this file's token and request helpers; one binary for all.
//! Who may manage Ferrite, and secrets, against the real `ferrite` binary:
//! `/v1` closed to all but loopback without a key, every client needing a
//! token with one (checked before any body is read, as is a route's
//! `jwt_key`), the CLI's credentials from its environment or config file,
//! a route's `jwt_key` never shown, and no password or key in any log line
//! or answer, with the `*_FILE` settings against a real PostgreSQL and Redis
//! that need their passwords.
//!
//! Clients "from elsewhere" connect to one of this machine's own
//! non-loopback addresses (found at run time) of a server bound to all
//! interfaces, so that the server sees a peer that is not loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::cli::{error_line, ok_cmd, run_cmd};
use common::haproxy::HaProxy;
use common::redis::RedisServer;
use common::{
    client, create_route, eventually, ferrite_cmd, free_port, require_images, succeed, token,
    TestServer,
};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};

/// A management key of the recommended length.
const KEY: &str = "Mgmt-Key-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The first global IPv4 address of this machine (eth0, the docker0
/// bridge, ...): connecting to it from here gives a peer that is not loopback.
fn other_address() -> String {
    let listed = succeed("ip", &["-o", "-4", "addr", "show", "scope", "global"]);
    listed
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .map(str::to_string)
        .next()
        .unwrap_or_else(|| panic!("this machine has no global IPv4 address:\n{listed}"))
}

/// `server`'s URL with `host` in place of the loopback address.
fn url_via(server: &TestServer, host: &str) -> String {
    let port = server.url.rsplit(':').next().expect("a port");
    format!("http://{host}:{port}")
}

/// Send `request`; its status, `WWW-Authenticate` header and JSON body.
fn send(request: RequestBuilder) -> (u16, Option<String>, Value) {
    let reply = request.send().expect("request");
    let status = reply.status().as_u16();
    let www = reply
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = reply.json().unwrap_or(Value::Null);
    (status, www, body)
}

/// A 401 with `WWW-Authenticate: Bearer` and an error message holding `words`.
#[track_caller]
fn assert_401(answer: (u16, Option<String>, Value), words: &str) {
    let (status, www, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(www.as_deref(), Some("Bearer"));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} lacks {words:?}");
}

#[test]
fn without_a_key_v1_answers_loopback_clients_only() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start_bound("0.0.0.0", &[]);
    let remote = url_via(&server, &other_address());
    assert!(
        server
            .log()
            .contains("management API (/v1): loopback clients only"),
        "{}",
        server.log()
    );

    // From loopback: the walk-through works as before.
    let (status, _, body) = send(
        client()
            .post(format!("{}/v1/apps", server.url))
            .body(r#"{"app":{"name":"local"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    create_route(
        &server,
        "local",
        json!({"path": "/hello", "image": "ferrite/hello"}),
    );

    // From another address of this machine: 401 naming the setting, for
    // reads and writes, and the write did not happen.
    for request in [
        client().get(format!("{remote}/v1/apps")),
        client().get(format!("{remote}/v1/apps/local/routes/hello")),
        client()
            .post(format!("{remote}/v1/apps"))
            .body(r#"{"app":{"name":"remote"}}"#),
        client().delete(format!("{remote}/v1/apps/local?cascade=true")),
    ] {
        assert_401(send(request), "JWT_AUTH_KEY");
    }
    let (_, _, body) = send(client().get(format!("{}/v1/apps", server.url)));
    assert_eq!(body["apps"], json!([{"name": "local", "config": null}]));

    // The system endpoints and function calls stay open to everyone.
    for path in ["/", "/version", "/health"] {
        let reply = client().get(format!("{remote}{path}")).send().unwrap();
        assert_eq!(reply.status(), 200, "{path}");
    }
    let reply = client()
        .post(format!("{remote}/r/local/hello"))
        .body(r#"{"name":"Remote"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "Hello Remote!\n");

    // A loopback request through a proxy counts as remote.
    for header in ["Forwarded", "X-Forwarded-For", "X-Real-IP"] {
        let request = client()
            .get(format!("{}/v1/apps", server.url))
            .header(header, "192.0.2.77");
        assert_401(send(request), header);
    }
}

#[test]
fn loopback_on_a_dual_stack_socket_includes_ipv4_mapped_addresses() {
    let server = TestServer::start_bound("::", &[]);
    // An IPv4 client of an IPv6 socket is ::ffff:a.b.c.d.
    for local in ["127.0.0.1", "[::1]"] {
        let reply = client()
            .get(format!("{}/v1/apps", url_via(&server, local)))
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200, "{local}");
    }
    let remote = url_via(&server, &other_address());
    assert_401(
        send(client().get(format!("{remote}/v1/apps"))),
        "JWT_AUTH_KEY",
    );
}

#[test]
fn behind_a_proxy_on_the_same_host_v1_needs_the_key() {
    // HAProxy adds X-Forwarded-For, as a production proxy does: without a
    // key, nobody reaches /v1 through it, though its peer is loopback.
    let open = TestServer::start();
    let lb = HaProxy::start(&[open.url.as_str()]);
    assert_401(
        send(client().get(format!("{}/v1/apps", lb.url))),
        "X-Forwarded-For",
    );
    assert_eq!(
        client()
            .get(format!("{}/v1/apps", open.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    drop(lb);

    let keyed = TestServer::start_with_env(&[("JWT_AUTH_KEY", KEY)]);
    let lb = HaProxy::start(&[keyed.url.as_str()]);
    let request = client()
        .get(format!("{}/v1/apps", lb.url))
        .bearer_auth(token(KEY, 600));
    assert_eq!(send(request).0, 200);
}

#[test]
fn with_a_key_file_every_client_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("jwt.key");
    // As `docker secret create` from `echo`: one trailing newline.
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let server = TestServer::start_bound(
        "0.0.0.0",
        &[("JWT_AUTH_KEY_FILE", key_file.to_str().unwrap())],
    );
    let log = server.log();
    assert!(
        log.contains("management API (/v1): every client needs a token"),
        "{log}"
    );
    assert!(!log.contains("shorter than"), "{log}");
    let remote = url_via(&server, &other_address());

    for base in [server.url.as_str(), remote.as_str()] {
        let apps = format!("{base}/v1/apps");
        assert_401(send(client().get(&apps)), "missing Authorization");
        assert_401(
            send(client().get(&apps).bearer_auth(token("wrong", 600))),
            "signature",
        );
        assert_401(
            send(client().get(&apps).bearer_auth(token(KEY, -600))),
            "expired",
        );
        // The newline is not part of the key.
        assert_401(
            send(
                client()
                    .get(&apps)
                    .bearer_auth(token(&format!("{KEY}\n"), 600)),
            ),
            "signature",
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let not_yet = signed(KEY, json!({"exp": now + 7200, "nbf": now + 3600}));
        assert_401(
            send(client().get(&apps).bearer_auth(not_yet)),
            "not valid yet",
        );
        let no_exp = signed(KEY, json!({"sub": "forever"}));
        assert_401(send(client().get(&apps).bearer_auth(no_exp)), "exp");
        let (status, _, body) = send(client().get(&apps).bearer_auth(token(KEY, 600)));
        assert_eq!(status, 200, "{body}");
    }
    assert!(!server.log().contains(KEY));
}

/// An HS256 token of `claims` signed with `key`.
fn signed(key: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// Write `head` and the first bytes of a body it announces, then wait for
/// the answer without sending the rest: its status line and body. The
/// server must answer from the headers alone; 30 s without an answer fail.
fn answer_without_the_body(
    server: &TestServer,
    head: &str,
    first_bytes: &[u8],
) -> (String, String) {
    let mut stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first_bytes).unwrap();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while !complete(&got) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) => panic!(
                "no answer while the body was still expected ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = headers.lines().next().unwrap_or_default().to_string();
    (status_line, body.to_string())
}

/// Whether `got` holds a whole answer (headers, and a body as long as its
/// Content-Length).
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((headers, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = headers
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

fn post_head(path: &str, length: usize, authorization: Option<&str>) -> String {
    let authorization = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n{authorization}\r\n"
    )
}

#[test]
fn tokens_are_checked_before_the_body_is_read() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", KEY)]);
    // The route's own key guards its calls.
    let route_key = "Route-Key-a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let reply = client()
        .post(format!("{}/v1/apps/fast/routes", server.url))
        .bearer_auth(token(KEY, 600))
        .body(
            json!({"route": {"path": "/guarded", "image": "ferrite/hello", "jwt_key": route_key}})
                .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let bad = format!("Bearer {}", token("wrong", 600));

    // 50 MB announced, a few bytes sent, no or a bad token: 401 at once, on
    // /v1 and on the route. Then lengths under the body caps (1 MiB on /v1,
    // 6 MiB for calls), which a server reading the body first would wait for.
    for length in [50_000_000, 512 * 1024] {
        for authorization in [None, Some(bad.as_str())] {
            for path in ["/v1/apps", "/r/fast/guarded"] {
                let head = post_head(path, length, authorization);
                let (status, body) = answer_without_the_body(&server, &head, b"{\"app\"");
                assert!(
                    status.starts_with("HTTP/1.1 401"),
                    "{path} {length}: {status} {body}"
                );
                assert!(body.contains("\"error\""), "{body}");
            }
        }
    }

    // With the right tokens the same requests, whole, go through.
    let reply = client()
        .post(format!("{}/v1/apps", server.url))
        .bearer_auth(token(KEY, 600))
        .body(r#"{"app":{"name":"whole"}}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let reply = client()
        .post(format!("{}/r/fast/guarded", server.url))
        .bearer_auth(token(route_key, 600))
        .body(r#"{"name":"Whole"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.text().unwrap(), "Hello Whole!\n");
}

#[test]
fn a_routes_jwt_key_is_write_only() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start();
    let route_key = "Route-Key-never-shown-5d41402abc4b2a76b9719d91";
    let base = format!("{}/v1/apps/wo/routes", server.url);
    let mut answers = Vec::new();
    let mut answer = |request: RequestBuilder| -> Value {
        let (status, _, body) = send(request);
        assert_eq!(status, 200, "{body}");
        answers.push(body.to_string());
        body
    };

    let created = answer(
        client().post(&base).body(
            json!({"route": {"path": "/k", "image": "ferrite/hello", "jwt_key": route_key}})
                .to_string(),
        ),
    );
    assert_eq!(created["route"]["jwt_key_set"], true);
    let loaded = answer(client().get(format!("{base}/k")));
    assert_eq!(loaded["route"]["jwt_key_set"], true);
    let listed = answer(client().get(&base));
    assert_eq!(listed["routes"][0]["jwt_key_set"], true);
    // Changing another field keeps the key, and still does not show it.
    let patched = answer(
        client()
            .patch(format!("{base}/k"))
            .body(r#"{"route":{"timeout":20}}"#),
    );
    assert_eq!(patched["route"]["jwt_key_set"], true);
    assert_eq!(patched["route"]["timeout"], 20);
    let call = format!("{}/r/wo/k", server.url);
    assert_eq!(client().post(&call).send().unwrap().status(), 401);
    let reply = client()
        .post(&call)
        .bearer_auth(token(route_key, 600))
        .body(r#"{"name":"Kept"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.text().unwrap(), "Hello Kept!\n");

    // A new key replaces it; "" removes it.
    let replaced = answer(
        client()
            .patch(format!("{base}/k"))
            .body(r#"{"route":{"jwt_key":"Route-Key-replaced-0123456789abcdef"}}"#),
    );
    assert_eq!(replaced["route"]["jwt_key_set"], true);
    let old = client()
        .post(&call)
        .bearer_auth(token(route_key, 600))
        .send()
        .unwrap();
    assert_eq!(old.status(), 401);
    let removed = answer(
        client()
            .patch(format!("{base}/k"))
            .body(r#"{"route":{"jwt_key":""}}"#),
    );
    assert!(removed["route"].get("jwt_key_set").is_none(), "{removed}");
    assert_eq!(client().post(&call).send().unwrap().status(), 200);

    for text in answers.iter().chain([&server.log()]) {
        assert!(!text.contains(route_key), "{text}");
        assert!(!text.contains("\"jwt_key\""), "{text}");
    }
}

/// The `ferrite` client of `server`, with `XDG_CONFIG_HOME` at `config`.
fn cli(server: &TestServer, config: &Path) -> Command {
    let mut cmd = ferrite_cmd(server);
    cmd.env("XDG_CONFIG_HOME", config);
    cmd
}

/// Write `content` as the CLI's config file under `config` with `mode`.
fn write_config(config: &Path, content: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(config.join("ferrite")).unwrap();
    let path = config.join("ferrite/config.toml");
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn the_cli_takes_its_credential_from_the_environment_or_its_config_file() {
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", KEY)]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let list = ["apps", "list", "--json"];

    // Not from a flag: it would land in shell history.
    let args = ["apps", "list", "--jwt-auth-key", KEY];
    let line = error_line(&run_cmd(cli(&server, &config), &args), 2, &args);
    assert!(line.contains("--jwt-auth-key"), "{line}");

    // No credential: the server's 401 and its message, in one line.
    let line = error_line(&run_cmd(cli(&server, &config), &list), 1, &list);
    assert!(line.starts_with("error: 401 Unauthorized: "), "{line}");

    let mut cmd = cli(&server, &config);
    cmd.env("JWT_AUTH_KEY", KEY);
    ok_cmd(cmd, &["apps", "create", "from-env-key"]);

    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut cmd = cli(&server, &config);
    cmd.env("JWT_AUTH_KEY_FILE", &key_file);
    ok_cmd(cmd, &["apps", "create", "from-key-file"]);

    let mut cmd = cli(&server, &config);
    cmd.env("FERRITE_TOKEN", token(KEY, 600));
    ok_cmd(cmd, &["apps", "create", "from-token"]);
    let mut cmd = cli(&server, &config);
    cmd.env("FERRITE_TOKEN", token("wrong", 600));
    let line = error_line(&run_cmd(cmd, &list), 1, &list);
    assert!(line.contains("401"), "{line}");

    let mut cmd = cli(&server, &config);
    cmd.env("JWT_AUTH_KEY", KEY).env("FERRITE_TOKEN", "t");
    let line = error_line(&run_cmd(cmd, &list), 1, &list);
    assert!(line.contains("set only one of"), "{line}");

    // The config file gives the server and the key; the environment wins
    // over it.
    let path = write_config(
        &config,
        &format!("api_url = \"{}\"\njwt_auth_key = \"{KEY}\"\n", server.url),
        0o600,
    );
    let mut cmd = cli(&server, &config);
    cmd.env_remove("API_URL");
    ok_cmd(cmd, &["apps", "create", "from-config"]);
    write_config(&config, "jwt_auth_key = \"wrong\"\n", 0o600);
    let mut cmd = cli(&server, &config);
    cmd.env("FERRITE_TOKEN", token(KEY, 600));
    ok_cmd(cmd, &["apps", "create", "env-over-config"]);
    write_config(
        &config,
        &format!("token = \"{}\"\n", token(KEY, 600)),
        0o600,
    );
    ok_cmd(cli(&server, &config), &["apps", "create", "config-token"]);

    // Refused while others may read it, like ssh: one line, no secret.
    write_config(&config, &format!("jwt_auth_key = \"{KEY}\"\n"), 0o644);
    let out = run_cmd(cli(&server, &config), &list);
    let line = error_line(&out, 1, &list);
    assert_eq!(
        line,
        format!(
            "error: {path} may be read or changed by other users (mode 0644); run: chmod 600 {path}"
        )
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(KEY));

    let mut cmd = cli(&server, &config);
    cmd.env("JWT_AUTH_KEY", KEY);
    let names: Vec<String> = serde_json::from_str::<Value>(&ok_cmd(cmd, &list))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "config-token",
            "env-over-config",
            "from-config",
            "from-env-key",
            "from-key-file",
            "from-token"
        ]
    );
}

/// Run `ferrite server` where it must stop at start (within 90 s): its exit
/// status and everything it wrote.
fn server_stops_at_start(env: &[(&str, &str)]) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["server", "--host", "127.0.0.1", "--port"])
        .arg(free_port().to_string())
        .current_dir(dir.path())
        .env(
            "FERRITE_NODE_ID",
            format!("auth-stops-{}", std::process::id()),
        )
        .env_remove("JWT_AUTH_KEY")
        .env_remove("DB_URL")
        .env_remove("MQ_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn ferrite server");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferrite server did not stop at start with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    (status, output)
}

/// The server stopped at start with one `error:` line holding `words`, and
/// none of `secrets` anywhere in what it wrote.
#[track_caller]
fn assert_stops(env: &[(&str, &str)], words: &str, secrets: &[&str]) {
    let (status, output) = server_stops_at_start(env);
    assert!(!status.success(), "{output}");
    let errors: Vec<&str> = output.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{output}");
    assert!(errors[0].contains(words), "{output}");
    for secret in secrets {
        assert!(!output.contains(secret), "{secret} in: {output}");
    }
}

#[test]
fn bad_keys_stop_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    let key = key.to_str().unwrap();
    assert_stops(&[("JWT_AUTH_KEY", "")], "JWT_AUTH_KEY is empty", &[]);
    assert_stops(
        &[("JWT_AUTH_KEY_FILE", empty.to_str().unwrap())],
        "the file is empty",
        &[],
    );
    assert_stops(
        &[("JWT_AUTH_KEY_FILE", "/nonexistent/jwt.key")],
        "JWT_AUTH_KEY_FILE /nonexistent/jwt.key: cannot read it",
        &[],
    );
    assert_stops(
        &[("JWT_AUTH_KEY", KEY), ("JWT_AUTH_KEY_FILE", key)],
        "set JWT_AUTH_KEY or JWT_AUTH_KEY_FILE, not both",
        &[KEY],
    );
    // A short key works, with a warning.
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "k3y")]);
    assert!(
        server
            .log()
            .contains("JWT_AUTH_KEY is shorter than 32 bytes"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("k3y"));
}

#[test]
fn passwords_come_from_files_and_never_show() {
    require_images(&["ferrite/hello"]);
    // Characters that must be percent-encoded in a URL.
    let pg_password = "Pg-Secret:5f/4dcc@3b5aa#765d";
    let redis_password = "Redis-Secret-7c6a180b36896a0a";
    let db = common::postgres::database_with_password(pg_password);
    let redis = RedisServer::start_with_password(redis_password);
    let mq = redis.url(&format!("auth-{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let pg_file = dir.path().join("pg");
    std::fs::write(&pg_file, format!("{pg_password}\n")).unwrap();
    let redis_file = dir.path().join("redis");
    std::fs::write(&redis_file, format!("{redis_password}\n")).unwrap();
    let docker_auth = r#"{"auths":{"registry.example":{"auth":"dXNlcjpEb2NrZXItU2VjcmV0"}}}"#;
    let secrets = [
        pg_password,
        &url_encode(pg_password),
        redis_password,
        KEY,
        "dXNlcjpEb2NrZXItU2VjcmV0",
        "Docker-Secret",
    ];

    // Without the files the services refuse the node.
    assert_stops(
        &[("DB_URL", db.as_str())],
        "password authentication failed",
        &secrets,
    );
    assert_stops(&[("MQ_URL", mq.as_str())], "queue URL", &secrets);

    // With them it runs: apps are stored, an async call goes through Redis.
    let server = TestServer::start_with_env(&[
        ("DB_URL", db.as_str()),
        ("DB_PASSWORD_FILE", pg_file.to_str().unwrap()),
        ("MQ_URL", mq.as_str()),
        ("MQ_PASSWORD_FILE", redis_file.to_str().unwrap()),
        ("JWT_AUTH_KEY", KEY),
        ("DOCKER_AUTH", docker_auth),
    ]);
    let mut answers = Vec::new();
    let route = json!({"route": {"path": "/later", "image": "ferrite/hello", "type": "async"}});
    let reply = client()
        .post(format!("{}/v1/apps/pw/routes", server.url))
        .bearer_auth(token(KEY, 600))
        .body(route.to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    answers.push(reply.text().unwrap());
    let reply = client()
        .post(format!("{}/r/pw/later", server.url))
        .body(r#"{"name":"Queued"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let call: Value = reply.json().unwrap();
    let call_url = format!(
        "{}/v1/apps/pw/calls/{}",
        server.url,
        call["call_id"].as_str().unwrap()
    );
    assert!(eventually(Duration::from_secs(60), || {
        let text = client()
            .get(&call_url)
            .bearer_auth(token(KEY, 600))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let done = text.contains("\"success\"");
        answers.push(text);
        done
    }));
    for path in ["/", "/version", "/health", "/v1/apps", "/v1/services"] {
        let reply = client()
            .get(format!("{}{path}", server.url))
            .bearer_auth(token(KEY, 600))
            .send()
            .unwrap();
        answers.push(reply.text().unwrap());
    }
    let log = server.log();
    assert!(log.contains("starting ferrite"), "{log}");
    for text in answers.iter().chain([&log]) {
        for secret in &secrets {
            assert!(!text.contains(secret), "{secret} in: {text}");
        }
    }
    drop(server);

    // The password in the URL itself works, and is masked in the log.
    let inline = db.replacen("@", &format!(":{}@", url_encode(pg_password)), 1);
    let server = TestServer::start_with_env(&[("DB_URL", inline.as_str())]);
    assert!(server.log().contains(":***@"), "{}", server.log());
    assert!(!server.log().contains(&url_encode(pg_password)));
    drop(server);

    // Wrong or unusable URLs with passwords: one line, never the password.
    let wrong_pg = db.replacen("@", ":Wrong-Pg-Secret-aa11@", 1);
    assert_stops(
        &[("DB_URL", wrong_pg.as_str())],
        "password authentication failed",
        &["Wrong-Pg-Secret-aa11"],
    );
    let port = free_port();
    assert_stops(
        &[(
            "DB_URL",
            format!("postgres://ferrite:Down-Pg-Secret-bb22@127.0.0.1:{port}/f").as_str(),
        )],
        "cannot connect to PostgreSQL",
        &["Down-Pg-Secret-bb22"],
    );
    let wrong_redis = format!(
        "redis://:Wrong-Redis-Secret-cc33@127.0.0.1:{}/x",
        redis.port
    );
    assert_stops(
        &[("MQ_URL", wrong_redis.as_str())],
        "queue URL",
        &["Wrong-Redis-Secret-cc33"],
    );
    for bad in [
        format!("redis://:Down-Redis-Secret-dd44@127.0.0.1:{port}/x"),
        "redis://:Bad-Redis-Secret-ee55@127.0.0.1:6379/a prefix".to_string(),
        "amqp://user:Other-Secret-ff66@127.0.0.1/x".to_string(),
    ] {
        let secret = bad
            .split(['@', ':'])
            .find(|part| part.contains("Secret"))
            .unwrap()
            .to_string();
        assert_stops(&[("MQ_URL", bad.as_str())], "URL", &[&secret]);
    }
    assert_stops(
        &[(
            "DOCKER_AUTH",
            r#"{"auths":{"r.example":"Docker-Secret-0a0a"}}"#,
        )],
        "DOCKER_AUTH",
        &["Docker-Secret-0a0a"],
    );
    assert_stops(
        &[
            ("DB_URL", inline.as_str()),
            ("DB_PASSWORD_FILE", pg_file.to_str().unwrap()),
        ],
        "DB_URL already has a password",
        &secrets,
    );

    // `--help` names the settings, never their values.
    let help = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["server", "--help"])
        .env("DB_URL", &inline)
        .env("MQ_URL", &wrong_redis)
        .env("JWT_AUTH_KEY", KEY)
        .env("DOCKER_AUTH", docker_auth)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for setting in [
        "DB_URL",
        "MQ_URL",
        "JWT_AUTH_KEY_FILE",
        "DB_PASSWORD_FILE",
        "MQ_PASSWORD_FILE",
    ] {
        assert!(help.contains(setting), "{setting}: {help}");
    }
    for secret in [
        &url_encode(pg_password),
        "Wrong-Redis-Secret-cc33",
        KEY,
        docker_auth,
    ] {
        assert!(!help.contains(secret), "{secret} in: {help}");
    }
}

/// `text` percent-encoded for a URL's user info.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
