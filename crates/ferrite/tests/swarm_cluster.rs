//! Ferrite on a real Swarm of three nodes (one manager, two workers:
//! Docker-in-Docker nodes on this machine, scripts/swarm-nodes.sh), deployed
//! from deploy/stack.yml. The short run of bench/cluster-swarm.sh: placement
//! constraints honoured, calls answered from tasks on every node over the
//! overlay, a scale from zero on a worker answered by that worker's task,
//! the same through a worker's Ferrite (a route made there, at zero, its
//! first call there), and `missing_image_on` naming the workers for a route whose image is on
//! the manager only. The machine's own engine and Swarm are not touched; the
//! nodes, their volumes and network are removed whatever happens. The full
//! run (a worker drained, another killed, under calls and async calls) is the
//! bench's, its figures in docs/benchmarks.md.

mod common;

use common::{require_images, run};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn a_three_node_swarm_places_serves_and_names_the_nodes_lacking_an_image() {
    require_images(&[
        "debian:bookworm-slim",
        "ferrite/ferrite",
        "ferrite/postgres",
        "ferrite/redis",
        "ferrite/haproxy",
        "ferrite/probe",
        "ferrite/hello",
    ]);
    let output = run(&format!("{ROOT}/bench/cluster-swarm.sh"), &["--short"]);
    let log = String::from_utf8_lossy(&output.stderr);
    eprintln!("{log}");
    assert!(
        output.status.success(),
        "bench/cluster-swarm.sh --short failed"
    );
    // The nodes are ferrite-dind-swarm-PID-1 (the manager), -2 and -3.
    let pid = log
        .split("ferrite-dind-swarm-")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .expect("the nodes' names are in the log");
    let node = |i: u32| format!("ferrite-dind-swarm-{pid}-{i}");
    let (manager, w1, w2) = (node(1), node(2), node(3));
    for line in [
        format!("placement honoured: answers from {w1},{w2} only"),
        format!("answered from tasks on every node: {manager},{w1},{w2}"),
        format!("scale from zero on {w2}: first answer in "),
        // A worker's Ferrite calls the tasks itself.
        format!("through a worker's Ferrite: answered from tasks on every node: {manager},{w1},{w2}"),
        "route made through a worker's Ferrite, scaled from zero by its first call there: first answer in ".to_string(),
        "short run done".to_string(),
    ] {
        assert!(log.contains(&line), "{line:?} is not in the log");
    }
    let missing = log
        .lines()
        .find(|l| l.contains("missing_image_on of /missing after "))
        .expect("the missing_image_on line is in the log");
    assert!(
        missing.ends_with(&format!(": {w1},{w2}")),
        "missing_image_on does not name both workers: {missing}"
    );
    let left = run(
        "docker",
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.ferrite.swarm-nodes=swarm-{pid}"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "nodes of the run are left"
    );
}
