//! The default node id: generated once, kept in the data directory, so two
//! servers on one engine with default ids never touch each other's
//! containers, and a restarted one keeps its id.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::call::post;
use common::{
    client, create_route, eventually, free_port, node_containers, require_images, TestServer,
};
use serde_json::{json, Value};

/// The node's id as `/health` says it.
fn node_of(server: &TestServer) -> String {
    let health: Value = client()
        .get(format!("{}/health", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    health["node"].as_str().unwrap().to_string()
}

fn call(server: &TestServer) -> u16 {
    post(server, "/r/ids/hello")
}

/// The containers of `node` started ahead and waiting for a call.
fn waiting(node: &str) -> BTreeSet<String> {
    node_containers(node)
        .into_iter()
        .filter(|(_, state, call)| state == "running" && call.is_empty())
        .map(|(id, _, _)| id)
        .collect()
}

#[test]
fn two_servers_with_default_ids_share_an_engine() {
    require_images(&["ferrite/hello"]);
    // An empty FERRITE_NODE_ID is no id: each server generates its own.
    let default_id = [("FERRITE_NODE_ID", "")];
    let a = TestServer::start_with_env(&default_id);
    let mut b = TestServer::start_with_env(&default_id);
    let (id_a, id_b) = (node_of(&a), node_of(&b));
    println!("generated ids: {id_a}, {id_b}");
    for id in [&id_a, &id_b] {
        assert!(id.starts_with("n-") && id.len() == 14, "{id}");
    }
    assert_ne!(id_a, id_b);
    for server in [&a, &b] {
        create_route(
            server,
            "ids",
            json!({"path":"/hello","image":"ferrite/hello","idle_timeout":600,
                   "confinement":{"network":"none"}}),
        );
        for _ in 0..3 {
            assert_eq!(call(server), 200);
        }
    }
    assert!(eventually(Duration::from_secs(30), || !waiting(&id_a)
        .is_empty()
        && !waiting(&id_b).is_empty()));
    let a_before = waiting(&id_a);

    b.restart(); // SIGKILL, then the same data directory
    let id_b_again = node_of(&b);
    println!(
        "after the restart: {id_b_again}; {}'s containers started ahead before {:?}, now {:?}",
        id_a,
        a_before,
        waiting(&id_a)
    );
    assert_eq!(id_b_again, id_b, "the restarted server keeps its id");
    assert!(
        a_before.is_subset(&waiting(&id_a)),
        "the other server's containers are untouched"
    );
    assert_eq!(b.log().matches("generated this node's id").count(), 1);
    assert_eq!(call(&a), 200);
    assert_eq!(call(&b), 200);
}

#[test]
fn a_data_directory_that_cannot_hold_the_id_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &free_port().to_string(),
        ])
        .arg("--db-url")
        .arg(format!("sqlite://{}/data/ferrite.db", file.display()))
        .env_remove("FERRITE_NODE_ID")
        .env_remove("DB_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stderr}");
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot hold this node's generated id"),
        "{stderr}"
    );
    assert!(stderr.contains("FERRITE_NODE_ID"), "{stderr}");
}
