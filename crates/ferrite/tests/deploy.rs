//! Ferrite's own image, deployed the two ways docs/operating.md gives: the
//! production stack (deploy/stack.yml) on the machine's Swarm, and the quick
//! install (one Ferrite container driving a remote engine over TLS). Both
//! need the images of scripts/deploy-images.sh and an active Swarm, which
//! scripts/test.sh provides.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::{client, eventually, free_port, node_containers, require_images, run, succeed};
use serde_json::{json, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn the_stack_deploys_on_swarm_and_serves_the_walkthrough_through_haproxy() {
    require_images(&[
        "ferrite/ferrite",
        "ferrite/postgres",
        "ferrite/redis",
        "ferrite/haproxy",
        "ferrite/hello",
        "ferrite/busybox",
    ]);
    // The script deploys, walks through (sync and async) and removes the
    // stack, its network and volumes whatever happens; it fails on any
    // wrong answer.
    let output = run(&format!("{ROOT}/scripts/stack-smoke.sh"), &[]);
    let log = String::from_utf8_lossy(&output.stderr);
    eprintln!("{log}");
    assert!(output.status.success(), "stack-smoke.sh failed");
    for line in [
        "/v1 without a token: 401",
        "walk-through through HAProxy: Hello Johnny!",
        "output Hello Later!",
        "functions network: resolves tasks.ferrite, cannot resolve redis, cannot resolve tasks.redis, \
         cannot resolve postgres, cannot resolve tasks.postgres, reaches ferrite, cannot reach redis",
        "Prometheus through tasks.ferrite: 1 of 1 Ferrite tasks scraped with the token",
        "Redis without a password: NOAUTH",
        "PostgreSQL without a password:",
    ] {
        assert!(log.contains(line), "{line:?} is not in the log");
    }
}

/// The TLS proxy in front of the engine (scripts/tls-proxy.sh) and the
/// Ferrite container; both stopped whatever the test does.
struct QuickInstall {
    certs: tempfile::TempDir,
    container: String,
}

impl Drop for QuickInstall {
    fn drop(&mut self) {
        let _ = run("docker", &["rm", "-f", &self.container]);
        let _ = Command::new(format!("{ROOT}/scripts/tls-proxy.sh"))
            .arg("stop")
            .arg(self.certs.path())
            .output();
    }
}

/// POST `body` to `url`, with a management token when `key` is given.
fn post(url: &str, key: Option<&str>, body: Value) -> (u16, String) {
    let mut request = client().post(url).body(body.to_string());
    if let Some(key) = key {
        request = request.bearer_auth(common::token(key, 600));
    }
    let reply = request.send().unwrap();
    (reply.status().as_u16(), reply.text().unwrap())
}

#[test]
fn the_quick_install_is_one_container_driving_a_tls_engine() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/hot-hello"]);
    let node = format!("quick-{}", std::process::id());
    let install = QuickInstall {
        certs: tempfile::tempdir().unwrap(),
        container: format!("ferrite-test-{node}"),
    };
    let certs = install.certs.path().to_str().unwrap().to_string();
    let vars: HashMap<String, String> =
        succeed(&format!("{ROOT}/scripts/tls-proxy.sh"), &["start", &certs])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let port = free_port();
    // The management key in a file, as `openssl rand -hex 32 > ferrite-jwt.key`
    // makes it (one trailing newline, which the server drops).
    let key = format!("quick-key-{}", free_port());
    let key_file = install.certs.path().join("ferrite-jwt.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let key_mount = format!("{}:/run/secrets/jwt-key:ro", key_file.display());

    // As docs/operating.md gives it, but on the host's network: the TLS
    // proxy standing in for a remote manager listens on 127.0.0.1.
    common::succeed(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &install.container,
            "--label",
            "org.ferrite.test=1",
            "--network",
            "host",
            "-v",
            &format!("{certs}:/certs:ro"),
            "-e",
            &format!("DOCKER_HOST={}", vars["DOCKER_HOST"]),
            "-e",
            "DOCKER_TLS_VERIFY=1",
            "-e",
            "DOCKER_CERT_PATH=/certs",
            "-e",
            &format!("PORT={port}"),
            "-e",
            &format!("FERRITE_NODE_ID={node}"),
            "-e",
            &format!("FERRITE_SERVICE_OWNER={node}"),
            "-e",
            &format!("FERRITE_SERVICE_NETWORK={}", common::TEST_SERVICE_NETWORK),
            "-v",
            &key_mount,
            "-e",
            "JWT_AUTH_KEY_FILE=/run/secrets/jwt-key",
            "ferrite/ferrite",
        ],
    );
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        eventually(Duration::from_secs(30), || client()
            .get(format!("{url}/version"))
            .send()
            .is_ok_and(|r| r.status().is_success())),
        "no answer from the Ferrite container: {}",
        String::from_utf8_lossy(&run("docker", &["logs", &install.container]).stderr)
    );

    // The walk-through, a hot route and an async call, all run by the
    // engine at the other end of the TLS connection.
    let routes = [
        json!({"path":"/hello","image":"ferrite/hello"}),
        json!({"path":"/hot","image":"ferrite/hot-hello","format":"http"}),
        json!({"path":"/later","image":"ferrite/hello","type":"async"}),
    ];
    // With a key, /v1 needs a token from every address.
    let app = json!({"app":{"name":"quick"}});
    assert_eq!(post(&format!("{url}/v1/apps"), None, app.clone()).0, 401);
    assert_eq!(post(&format!("{url}/v1/apps"), Some(&key), app).0, 200);
    for route in routes {
        let (status, body) = post(
            &format!("{url}/v1/apps/quick/routes"),
            Some(&key),
            json!({ "route": route }),
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        post(
            &format!("{url}/r/quick/hello"),
            None,
            json!({"name":"Johnny"})
        ),
        (200, "Hello Johnny!\n".to_string())
    );
    for name in ["One", "Two"] {
        let (status, body) = post(&format!("{url}/r/quick/hot"), None, json!({ "name": name }));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(name), "{body}");
    }
    let (status, body) = post(
        &format!("{url}/r/quick/later"),
        None,
        json!({"name":"Later"}),
    );
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    let call_status = || -> String {
        client()
            .get(format!("{url}/v1/apps/quick/calls/{id}"))
            .bearer_auth(common::token(&key, 600))
            .send()
            .and_then(|r| r.json::<Value>())
            .map(|v| v["call"]["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(30), || call_status() == "success"),
        "async call {id} is {}",
        call_status()
    );

    // `docker stop` is SIGTERM: the node removes every container it made
    // and exits cleanly.
    succeed("docker", &["stop", "-t", "30", &install.container]);
    let exit = succeed(
        "docker",
        &["inspect", "-f", "{{.State.ExitCode}}", &install.container],
    );
    assert_eq!(exit.trim(), "0");
    assert_eq!(node_containers(&node), vec![]);
}
