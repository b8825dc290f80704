//! A rebuilt image serves the next call: after `docker build -t` moves a
//! route's image name to a new image, the containers of the old image (a
//! cold route's containers started ahead, a hot route's idle container)
//! are removed, and the next call on each route runs the new image.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{client, create_route, eventually, require_images, succeed, TestServer};
use serde_json::json;

/// Answers `version` as a cold function (one line on stdout) and as a hot
/// one (an HTTP/1.1 response to each request on stdin; the test sends GETs,
/// which have no body, so a request ends at its blank line).
fn function(version: &str) -> String {
    format!(
        r#"#!/bin/sh
if [ "$FN_FORMAT" = http ]; then
  cr=$(printf '\r')
  while IFS= read -r line; do
    if [ "$line" = "$cr" ] || [ -z "$line" ]; then
      printf 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{version}\n'
    fi
  done
else
  echo {version}
fi
"#
    )
}

/// Build `tag` answering `version`; its image id.
fn build(dir: &Path, tag: &str, version: &str) -> String {
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM ferrite/busybox\nCOPY fn.sh /fn.sh\nCMD [\"/bin/sh\", \"/fn.sh\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("fn.sh"), function(version)).unwrap();
    succeed("docker", &["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    succeed("docker", &["image", "inspect", "-f", "{{.Id}}", tag])
}

/// Removes the images the test built, whatever happens.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = common::run("docker", &["rmi", "-f", image]);
        }
    }
}

/// Names of the containers (any state) made from image `id`; `node`
/// narrows to one node's.
fn containers_of(id: &str, node: Option<&str>) -> Vec<String> {
    let ancestor = format!("ancestor={id}");
    let mut args = vec![
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        ancestor.as_str(),
    ];
    let label = node.map(|n| format!("label=org.ferrite.node={n}"));
    if let Some(label) = &label {
        args.extend(["--filter", label.as_str()]);
    }
    succeed("docker", &args)
        .lines()
        .map(str::to_string)
        .collect()
}

fn call(server: &TestServer, path: &str) -> String {
    let reply = client()
        .get(format!("{}/r/rebuild{path}", server.url))
        .send()
        .unwrap();
    let status = reply.status();
    let body = reply.text().unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body.trim().to_string()
}

#[test]
fn rebuilt_image_serves_the_next_call() {
    require_images(&["ferrite/busybox"]);
    let random = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("ferrite/test-rebuild-{random}:latest");
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), &tag, "v1");
    let mut built = Images(vec![tag.clone(), v1.clone()]);

    let mut server = TestServer::start();
    create_route(&server, "rebuild", json!({"path":"/cold","image":tag}));
    create_route(
        &server,
        "rebuild",
        json!({"path":"/hot","image":tag,"format":"http"}),
    );
    assert_eq!(call(&server, "/cold"), "v1");
    assert_eq!(call(&server, "/hot"), "v1");
    // Waiting for calls of the old image: the hot container, and those
    // started ahead for the cold route after its call.
    let node = server.node_id.clone();
    let waiting = || {
        let names = containers_of(&v1, Some(&node));
        names.iter().any(|n| n.contains("-hot-")) && names.iter().any(|n| n.contains("-ahead-"))
    };
    assert!(
        eventually(Duration::from_secs(30), waiting),
        "{:?}",
        containers_of(&v1, Some(&node))
    );

    let v2 = build(dir.path(), &tag, "v2");
    built.0.push(v2.clone());
    assert_ne!(v1, v2);
    // The engine tells of the new tag on its event stream, which the node
    // reads on its own time: wait until it has acted on it, not for a time.
    assert!(
        eventually(Duration::from_secs(30), || containers_of(&v1, Some(&node))
            .is_empty()),
        "containers of the old image left: {:?}",
        containers_of(&v1, Some(&node))
    );
    // One call each, no retry: both run the new image.
    assert_eq!(call(&server, "/cold"), "v2");
    assert_eq!(call(&server, "/hot"), "v2");

    server.terminate();
    assert_eq!(containers_of(&v1, None), Vec::<String>::new());
    assert_eq!(containers_of(&v2, Some(&node)), Vec::<String>::new());
}
