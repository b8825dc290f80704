//! The function templates (`crates/ferrite/templates/<runtime>/<format>/`,
//! which `ferrite init` writes out) work for real: each of the eight, its
//! `{{name}}` replaced as `ferrite init` replaces it, is built with
//! `docker build` on the base images of `scripts/base-images.sh`, given a
//! route of its format on a real `ferrite server`, and called with a body
//! and without (a hot route's second call served by the same container),
//! then again once the app's `GREETING` config is set. Each call's log is
//! the line the function wrote to stderr. The size of each image is printed
//! (`--nocapture`).
//!
//! The images are labelled `org.ferrite.owner=test-templates` and removed at
//! the end; their build stages stay in Docker's build cache, so a second run
//! compiles nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cli::{ok, run};
use common::containers::route_containers;
use common::{client, eventually, require_images, TestServer};

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
const RUNTIMES: [&str; 4] = ["rust", "go", "python", "node"];
const FORMATS: [&str; 2] = ["default", "http"];
/// The official images the templates name, as scripts/base-images.sh builds them.
const BASES: [&str; 5] = [
    "debian:bookworm-slim",
    "rust:1-slim-bookworm",
    "golang:1-bookworm",
    "python:3.11-slim-bookworm",
    "node:18-bookworm-slim",
];
const OWNER: &str = "org.ferrite.owner=test-templates";
const APP: &str = "templates";

/// Removes the images the test built, whatever happens.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = common::run("docker", &["rmi", "-f", image]);
        }
    }
}

/// Copies the template at `from` to `to`, `{{name}}` replaced by `name` in
/// every file, as `ferrite init` writes it.
fn write_template(from: &Path, to: &Path, name: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            write_template(&entry.path(), &target, name);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, text.replace("{{name}}", name)).unwrap();
        }
    }
}

/// Builds the template directory `dir` as `tag`, labelled as the test's;
/// the whole build output when it fails.
fn build(dir: &Path, tag: &str) {
    let output = Command::new("docker")
        .args(["build", "--force-rm", "--label", OWNER, "-t", tag])
        .arg(dir)
        // The legacy builder, as scripts/images.sh: no buildx plugin here.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(
        output.status.success(),
        "docker build of {tag} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn size_mb(image: &str) -> f64 {
    let size = common::succeed("docker", &["image", "inspect", "-f", "{{.Size}}", image]);
    size.parse::<f64>().expect("a size") / 1e6
}

/// Calls `path` of the app with `body`; the answer (which must be a 200)
/// and the call's id.
fn call(server: &TestServer, path: &str, body: &str) -> (String, String) {
    let reply = client()
        .post(format!("{}/r/{APP}{path}", server.url))
        .body(body.to_string())
        .send()
        .unwrap_or_else(|e| panic!("cannot call {path}: {e}"));
    let status = reply.status();
    let id = reply
        .headers()
        .get("fn-call-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = reply.text().unwrap();
    assert_eq!(status, 200, "{path}: {text}\n{}", server.log());
    (text, id)
}

/// What the function of call `id` wrote to stderr, once the history has it.
fn log_of(server: &TestServer, id: &str) -> String {
    let mut log = String::new();
    eventually(Duration::from_secs(30), || {
        let out = run(server, &["calls", "logs", APP, id]);
        log = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success() && !log.is_empty()
    });
    log
}

#[test]
fn every_template_builds_and_answers_under_ferrite() {
    require_images(&BASES);
    let work = tempfile::tempdir().unwrap();
    let mut images = Images(Vec::new());
    let mut routes = Vec::new();
    // Built once each, one after the other (two cores; the compiles are
    // cached by Docker from one run to the next).
    for runtime in RUNTIMES {
        for format in FORMATS {
            let dir = work.path().join(format!("{runtime}-{format}"));
            write_template(
                &Path::new(TEMPLATES).join(runtime).join(format),
                &dir,
                "hello",
            );
            let tag = format!("ferrite/test-template-{runtime}-{format}:latest");
            images.0.push(tag.clone());
            build(&dir, &tag);
            println!("{tag}: {:.1} MB", size_mb(&tag));
            routes.push((format!("/{runtime}-{format}"), tag, format));
        }
    }
    // The compiled ones carry their program, not their toolchain.
    for (runtime, base) in [
        ("rust", "rust:1-slim-bookworm"),
        ("go", "golang:1-bookworm"),
    ] {
        for format in FORMATS {
            let image = format!("ferrite/test-template-{runtime}-{format}:latest");
            assert!(size_mb(&image) < size_mb(base) / 4.0, "{image} is large");
        }
    }

    let server = TestServer::start();
    ok(&server, &["apps", "create", APP]);
    for (path, tag, format) in &routes {
        ok(
            &server,
            &["routes", "create", APP, path, tag, "--format", format],
        );
    }
    for (path, _, format) in &routes {
        let (answer, id) = call(&server, path, r#"{"name":"Ada"}"#);
        assert_eq!(answer, "Hello, Ada!\n", "{path}");
        assert_eq!(log_of(&server, &id), "greeting Ada\n", "{path}");
        let hot = route_containers(&server.node_id, path);
        let (answer, _) = call(&server, path, "");
        assert_eq!(answer, "Hello, World!\n", "{path}");
        if *format == "http" {
            // The same container served both calls.
            assert_eq!(hot.len(), 1, "{path}: {hot:?}");
            assert_eq!(route_containers(&server.node_id, path), hot, "{path}");
        }
        let (answer, _) = call(&server, path, "not JSON");
        assert_eq!(answer, "Hello, World!\n", "{path}");
    }

    // A config key reaches every function as an environment variable (a hot
    // route gets fresh containers that have it).
    ok(&server, &["apps", "config", "set", APP, "GREETING", "Hi"]);
    for (path, _, _) in &routes {
        let (answer, _) = call(&server, path, r#"{"name":"Ada"}"#);
        assert_eq!(answer, "Hi, Ada!\n", "{path}");
    }
    let node = server.node_id.clone();
    drop(server);
    assert!(
        eventually(Duration::from_secs(30), || routes
            .iter()
            .all(|(path, _, _)| route_containers(&node, path).is_empty())),
        "containers left behind"
    );
}
