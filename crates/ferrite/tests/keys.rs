//! Per-app API keys end to end: the operator issues them, a key reaches its
//! app alone and only as far as its access goes, a revoked key is refused at
//! once (on every node of a PostgreSQL and Redis cluster too), the CLI works
//! with a key as its token, and the database keeps no secret.

mod common;

use std::time::Duration;

use common::cli::{ok, ok_cmd, run_cmd};
use common::redis::RedisServer;
use common::{client, eventually, ferrite_cmd, require_images, token, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A `/v1` request with `bearer` (none: the operator on loopback).
fn v1(
    server: &str,
    bearer: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, format!("{server}/v1{path}"));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

/// Issue a key as `operator`; its id and token.
fn issue(server: &str, operator: Option<&str>, app: &str, access: &str) -> (String, String) {
    let body = json!({"key": {"app": app, "access": access, "name": format!("{access} of {app}")}});
    let (status, answer) = v1(server, operator, Method::POST, "/keys", Some(body));
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap().to_string();
    let id = answer["key"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("fk_{id}_")), "{token}");
    (id, token)
}

fn message(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

/// The key's row as the store keeps it: the hash of its secret, not the
/// secret; and no file of the database holds the secret in any form.
fn assert_only_the_hash_is_kept(db_url: &str, files: &[std::path::PathBuf], id: &str, token: &str) {
    let secret_hex = token.rsplit('_').next().unwrap();
    let secret = hex::decode(secret_hex).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(async {
        let store = ferrite_store::open(db_url, ferrite_store::DEFAULT_TIMEOUT)
            .await
            .unwrap();
        store.get_key(id).await.unwrap()
    });
    assert_eq!(stored.secret_hash, Sha256::digest(&secret).to_vec());
    assert_ne!(stored.secret_hash, secret);
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!holds(&secret), "{} holds the secret", file.display());
        assert!(
            !holds(secret_hex.as_bytes()),
            "{} holds the token",
            file.display()
        );
    }
}

#[test]
fn a_key_reaches_its_app_as_far_as_its_access_goes() {
    require_images(&["ferrite/echo"]);
    let server = TestServer::start();
    let url = server.url.as_str();
    for app in ["ka", "kb"] {
        common::create_route(
            &server,
            app,
            json!({"path": "/echo", "image": "ferrite/echo"}),
        );
    }
    let (manage_id, manage) = issue(url, None, "ka", "manage");
    let (_, read) = issue(url, None, "ka", "read");
    let (_, other) = issue(url, None, "kb", "read");
    let as_key = |key: &str, method: Method, path: &str, body: Option<Value>| {
        v1(url, Some(key), method, path, body)
    };

    // A manage key manages its app...
    assert_eq!(as_key(&manage, Method::GET, "/apps/ka", None).0, 200);
    let patch = json!({"app": {"config": {"TEAM": "a"}}});
    let (status, answer) = as_key(&manage, Method::PATCH, "/apps/ka", Some(patch.clone()));
    assert_eq!(
        (status, &answer["app"]["config"]["TEAM"]),
        (200, &json!("a"))
    );
    let route = json!({"route": {"path": "/more", "image": "ferrite/echo"}});
    assert_eq!(
        as_key(&manage, Method::POST, "/apps/ka/routes", Some(route)).0,
        200
    );
    let (status, listed) = as_key(&manage, Method::GET, "/apps", None);
    assert_eq!(status, 200);
    assert_eq!(listed["apps"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["apps"][0]["name"], "ka");

    // ...and nothing else: another app, new apps, keys, the node.
    for (method, path) in [
        (Method::GET, "/apps/kb"),
        (Method::PATCH, "/apps/kb"),
        (Method::GET, "/apps/kb/routes"),
    ] {
        let (status, answer) = as_key(&manage, method.clone(), path, Some(patch.clone()));
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(message(&answer).contains("\"ka\""), "{answer}");
    }
    for (method, path) in [
        (Method::POST, "/apps"),
        (Method::GET, "/keys"),
        (Method::POST, "/keys"),
        (Method::DELETE, &format!("/keys/{manage_id}") as &str),
        (Method::GET, "/services"),
    ] {
        let body = json!({"app": {"name": "kc"}, "key": {"app": "ka", "access": "manage"}});
        let (status, answer) = as_key(&manage, method.clone(), path, Some(body));
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(message(&answer).contains("operator"), "{answer}");
    }
    let metrics = client()
        .get(format!("{url}/metrics"))
        .bearer_auth(&manage)
        .send()
        .unwrap();
    assert_eq!(metrics.status(), 403);

    // A read key reads, and is refused every write.
    assert_eq!(as_key(&read, Method::GET, "/apps/ka/routes", None).0, 200);
    for (method, path) in [
        (Method::PATCH, "/apps/ka"),
        (Method::DELETE, "/apps/ka/routes/more"),
        (Method::POST, "/apps/ka/routes"),
    ] {
        let (status, answer) = as_key(&read, method.clone(), path, Some(patch.clone()));
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(message(&answer).contains("needs manage"), "{answer}");
    }

    // Fn's /v1/calls/{call}: a call of its app, not another's.
    let called = client()
        .post(format!("{url}/r/ka/echo"))
        .body("hi")
        .send()
        .unwrap();
    assert_eq!(called.status(), 200);
    let call_id = called.headers()["fn-call-id"].to_str().unwrap().to_string();
    let found = eventually(Duration::from_secs(10), || {
        as_key(&read, Method::GET, &format!("/calls/{call_id}"), None).0 == 200
    });
    assert!(found, "the call of ka is readable with ka's key");
    let (status, answer) = as_key(&other, Method::GET, &format!("/calls/{call_id}"), None);
    assert_eq!(status, 403, "{answer}");

    // Revoked: refused from the next request on, as an unknown key is.
    let (status, _) = v1(
        url,
        None,
        Method::DELETE,
        &format!("/keys/{manage_id}"),
        None,
    );
    assert_eq!(status, 200);
    let (status, answer) = as_key(&manage, Method::GET, "/apps/ka", None);
    assert_eq!(status, 401, "{answer}");
    assert!(message(&answer).contains("revoked"), "{answer}");
    let forged = format!("{}{}", &read[..read.len() - 4], "0000");
    assert_eq!(as_key(&forged, Method::GET, "/apps/ka", None).0, 401);
    assert_eq!(as_key("fk_nonsense", Method::GET, "/apps/ka", None).0, 401);

    let db = server.db_path();
    let files = [
        db.clone(),
        db.with_extension("db-wal"),
        server.data_dir.path().join("server.log"),
    ];
    let read_id = read.split('_').nth(1).unwrap();
    assert_only_the_hash_is_kept(&server.db_url(), &files, read_id, &read);
}

#[test]
fn a_team_uses_the_cli_with_its_key() {
    require_images(&["ferrite/echo"]);
    let server = TestServer::start();
    common::create_route(
        &server,
        "team",
        json!({"path": "/echo", "image": "ferrite/echo"}),
    );
    common::create_route(
        &server,
        "others",
        json!({"path": "/echo", "image": "ferrite/echo"}),
    );
    let token = ok(
        &server,
        &["keys", "create", "team", "--access", "read", "--name", "ci"],
    );
    let token = token.trim();
    assert!(token.starts_with("fk_"), "{token}");
    let id = token.split('_').nth(1).unwrap();
    let list = ok(&server, &["keys", "list"]);
    assert!(
        list.contains(id) && list.contains("ci") && list.contains("read"),
        "{list}"
    );
    assert!(!list.contains(token), "a listing never shows a token");

    let with_key = || {
        let mut cmd = ferrite_cmd(&server);
        cmd.env("FERRITE_TOKEN", token);
        cmd
    };
    let apps = ok_cmd(with_key(), &["apps", "list"]);
    assert!(apps.contains("team") && !apps.contains("others"), "{apps}");
    let routes = ok_cmd(with_key(), &["routes", "list", "team"]);
    assert!(routes.contains("/echo"), "{routes}");
    let refused = run_cmd(with_key(), &["apps", "update", "team", "--config", "A=1"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("needs manage"),
        "{stderr}"
    );

    ok(&server, &["keys", "revoke", id]);
    let revoked = run_cmd(with_key(), &["apps", "list"]);
    let stderr = String::from_utf8_lossy(&revoked.stderr);
    assert!(
        !revoked.status.success() && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!ok(&server, &["keys", "list"]).contains(id));
}

/// Two nodes on one PostgreSQL and one Redis, with a management key: a key
/// issued through node 1 works on node 2, and revoked through node 1 it is
/// refused by node 2 from the next request on.
#[test]
fn a_key_revoked_on_one_node_is_refused_by_the_other() {
    const OPERATOR_KEY: &str = "keys-test-operator-key";
    let redis = RedisServer::start();
    let mq = redis.url(&format!("keys-{}", std::process::id()));
    let db = common::postgres::fresh_database();
    let env = [
        ("DB_URL", db.as_str()),
        ("MQ_URL", mq.as_str()),
        ("JWT_AUTH_KEY", OPERATOR_KEY),
    ];
    let one = TestServer::start_with_env(&env);
    let two = TestServer::start_with_env(&env);
    let operator = token(OPERATOR_KEY, 600);
    let app = json!({"app": {"name": "shared"}});
    let (status, answer) = v1(&one.url, Some(&operator), Method::POST, "/apps", Some(app));
    assert_eq!(status, 200, "{answer}");
    let (id, key) = issue(&one.url, Some(&operator), "shared", "manage");

    assert_eq!(
        v1(&two.url, Some(&key), Method::GET, "/apps/shared", None).0,
        200
    );
    let (status, answer) = v1(&two.url, Some(&key), Method::GET, "/keys", None);
    assert_eq!(status, 403, "an app key is not the operator's: {answer}");
    let (status, listed) = v1(&two.url, Some(&operator), Method::GET, "/keys", None);
    assert_eq!(status, 200);
    assert_eq!(listed["keys"][0]["id"], id.as_str());
    assert!(listed["keys"][0].get("token").is_none(), "{listed}");
    let logs = [
        one.data_dir.path().join("server.log"),
        two.data_dir.path().join("server.log"),
    ];
    assert_only_the_hash_is_kept(&db, &logs, &id, &key);

    let (status, _) = v1(
        &one.url,
        Some(&operator),
        Method::DELETE,
        &format!("/keys/{id}"),
        None,
    );
    assert_eq!(status, 200);
    let refused = eventually(Duration::from_secs(2), || {
        v1(&two.url, Some(&key), Method::GET, "/apps/shared", None).0 == 401
    });
    assert!(refused, "node 2 still takes a key revoked on node 1");
}
