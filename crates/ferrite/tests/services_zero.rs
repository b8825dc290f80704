//! A service route's first calls at zero replicas, on the machine's real
//! single-node Swarm with Ferrite as a container (common/swarm_fixture.rs):
//! while the service has no ready task, a sync call to a route of a plain
//! function image runs on the node in a container of that image (one kept
//! ready as a standby while the route is at zero), the service scales up
//! beside it, and once its task is ready calls go to the service. Nothing
//! is left behind: the standby goes with its route, and every container
//! of the node with the node.

mod common;

use std::time::Duration;

use common::swarm_fixture::{Ferrite, Fixture};
use common::{eventually, require_images, succeed};
use serde_json::json;

/// The image Ferrite runs from (its binary is the watchdog too).
fn server_image() -> String {
    std::env::var("FERRITE_TEST_SERVER_IMAGE").unwrap_or_else(|_| "ferrite/ferrite".to_string())
}

/// The function containers of `node` for `route` (all its routes: None),
/// running or not.
fn containers(node: &str, route: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "ps".to_string(),
        "-aq".to_string(),
        "--filter".to_string(),
        format!("label=org.ferrite.node={node}"),
    ];
    if let Some(route) = route {
        args.extend([
            "--filter".to_string(),
            format!("label=org.ferrite.route={route}"),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeed("docker", &args)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Calls the service forwarded to a task (`requests` of `GET /v1/services`).
fn forwarded(ferrite: &Ferrite, path: &str) -> u64 {
    ferrite.service_view(path)["requests"].as_u64().unwrap_or(0)
}

#[test]
fn a_call_at_zero_replicas_runs_on_the_node_while_the_service_scales_up() {
    let server = server_image();
    require_images(&[&server, "ferrite/hello"]);
    // The service image made below, removed with the fixture whatever happens.
    let fixture = Fixture::new("zero", &["ferrite/hello-service"]);
    fixture.create_network();
    let node = fixture.container.clone();
    let ferrite = fixture.start_node(&node, &[("FERRITE_WATCHDOG_IMAGE", &server)]);

    // A route of a plain function image, at zero: a container of its image
    // is kept ready on the node, and no task runs.
    ferrite.create_route(json!({"path": "/hello", "image": "ferrite/hello",
        "service": {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after": 300}}));
    assert!(
        eventually(Duration::from_secs(30), || !containers(
            &node,
            Some("/hello")
        )
        .is_empty()),
        "no standby container for the route at zero"
    );
    let view = ferrite.service_view("/hello");
    assert_eq!(
        (view["replicas"].as_u64(), view["running"].as_u64()),
        (Some(0), Some(0)),
        "{view}"
    );

    // The first call: answered by the node, not by a task.
    let (status, body, took) = ferrite.call("/hello", r#"{"name":"Zero"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Zero!\n"));
    eprintln!("first call at zero answered in {} ms", took.as_millis());
    assert_eq!(
        forwarded(&ferrite, "/hello"),
        0,
        "the first call went to a task"
    );
    // ... and recorded like any call (the history writes sync calls in
    // batches, a moment after their answer).
    let listed = || {
        let (status, calls) = ferrite.api(reqwest::Method::GET, "/v1/apps/svc/calls", None);
        assert_eq!(status, 200, "{calls}");
        calls["calls"].as_array().cloned().unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(10), || !listed().is_empty()),
        "the call was not recorded"
    );
    let calls = listed();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["status"], "success", "{calls:?}");

    // The call scaled the service up all the same.
    assert!(
        eventually(Duration::from_secs(60), || ferrite.service_view("/hello")
            ["running"]
            == 1),
        "the service did not scale up: {}",
        ferrite.service_view("/hello")
    );
    // Once its task is ready, calls go to it.
    let mut failures = Vec::new();
    let reached = eventually(Duration::from_secs(30), || {
        let (status, body, _) = ferrite.call("/hello", r#"{"name":"Task"}"#);
        if (status, body.as_str()) != (200, "Hello Task!\n") {
            failures.push((status, body));
        }
        forwarded(&ferrite, "/hello") > 0
    });
    assert!(
        reached,
        "no call went to the task: {}",
        ferrite.service_view("/hello")
    );
    assert_eq!(failures, vec![]);
    let before = forwarded(&ferrite, "/hello");
    let (status, _, _) = ferrite.call("/hello", r#"{"name":"Task"}"#);
    assert_eq!(status, 200);
    assert_eq!(
        forwarded(&ferrite, "/hello"),
        before + 1,
        "a later call ran on the node"
    );

    // A route whose image is a service image already is never run on the
    // node: its first call waits for its task.
    let as_is = fixture.images[0].clone();
    succeed(
        env!("CARGO_BIN_EXE_ferrite"),
        &["services", "image", "ferrite/hello", "-t", &as_is],
    );
    ferrite.create_route(json!({"path": "/as-is", "image": as_is,
        "service": {"min_replicas": 0, "max_replicas": 1}}));
    let (status, body, _) = ferrite.call("/as-is", r#"{"name":"Task"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Task!\n"));
    assert_eq!(
        forwarded(&ferrite, "/as-is"),
        1,
        "{}",
        ferrite.service_view("/as-is")
    );
    assert_eq!(containers(&node, Some("/as-is")), Vec::<String>::new());

    // Deleting the routes takes their services and the node's containers.
    for path in ["hello", "as-is"] {
        let (status, body) = ferrite.api(
            reqwest::Method::DELETE,
            &format!("/v1/apps/svc/routes/{path}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(fixture.services(), vec![]);
    assert!(
        eventually(Duration::from_secs(30), || containers(&node, None)
            .is_empty()),
        "containers left after the routes went: {:?}",
        containers(&node, None)
    );

    // A route at zero has its standby again; stopping the node removes it.
    ferrite.create_route(json!({"path": "/again", "image": "ferrite/hello",
        "service": {"min_replicas": 0, "max_replicas": 1}}));
    assert!(
        eventually(Duration::from_secs(30), || !containers(
            &node,
            Some("/again")
        )
        .is_empty()),
        "no standby container for the route at zero"
    );
    succeed("docker", &["stop", "-t", "30", &node]);
    assert_eq!(
        containers(&node, None),
        Vec::<String>::new(),
        "left after shutdown"
    );
}
