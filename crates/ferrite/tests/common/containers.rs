//! What Ferrite runs on the engine, as fault tests look at it (through the
//! docker CLI: it only observes what Ferrite did).

/// Ids of the containers of `node` for routes at `path` (any app),
/// running or not.
pub fn route_containers(node: &str, path: &str) -> Vec<String> {
    let listed = super::run(
        "docker",
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.ferrite.node={node}"),
            "--filter",
            &format!("label=org.ferrite.route={path}"),
        ],
    );
    String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}
