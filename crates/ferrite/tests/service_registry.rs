//! Service images through a registry (FERRITE_SERVICE_REGISTRY): the node
//! pushes the image it derives for a service route to a local authenticated
//! registry (scripts/registry.sh), the service names it there by digest and
//! carries the credentials, and a task whose node lacks the image pulls it.
//! On this single-node Swarm the pull is proved by removing the node's copy
//! of the image before the service scales up from zero. Wrong credentials
//! are a clear error in `GET /v1/services`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::swarm_fixture::Fixture;
use common::{client, eventually, require_images, run, succeed};
use serde_json::json;

const USER: &str = "ferrite";
const PASSWORD: &str = "ferrite-pass";

fn root() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
}

/// Stops the registry whatever the test does.
struct Registry {
    dir: tempfile::TempDir,
    address: String,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let out = succeed(
            &format!("{}/scripts/registry.sh", root()),
            &["start", dir.path().to_str().unwrap()],
        );
        let address = out
            .lines()
            .find_map(|l| l.strip_prefix("REGISTRY="))
            .expect("REGISTRY=")
            .to_string();
        Registry { dir, address }
    }

    /// The tags the registry holds of repository `name`.
    fn tags(&self, name: &str) -> Vec<String> {
        let reply = client()
            .get(format!("http://{}/v2/{name}/tags/list", self.address))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .unwrap();
        let status = reply.status().as_u16();
        let body: serde_json::Value = reply.json().unwrap_or_default();
        assert_eq!(status, 200, "{body}");
        body["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = run(
            &format!("{}/scripts/registry.sh", root()),
            &["stop", self.dir.path().to_str().unwrap_or_default()],
        );
    }
}

/// A docker config document with `user:password` for `registry`.
fn auth_document(registry: &str, password: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    json!({"auths": {registry: {"auth": auth}}}).to_string()
}

/// A plain function image of this test's own (so that no other test
/// derives the same service image): it answers `answer`.
fn build_function(dir: &Path, tag: &str, answer: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM ferrite/busybox\nLABEL org.ferrite.test=1\n\
             CMD [\"/bin/sh\", \"-c\", \"cat >/dev/null; echo {answer}\"]\n"
        ),
    )
    .unwrap();
    succeed("docker", &["build", "-q", "-t", tag, dir.to_str().unwrap()]);
}

fn service_image(ferrite: &common::swarm_fixture::Ferrite, path: &str) -> String {
    let view = ferrite.service_view(path);
    view["service_image"]
        .as_str()
        .unwrap_or_else(|| panic!("no service image for {path}: {view}"))
        .to_string()
}

#[test]
fn service_images_go_through_the_registry_and_tasks_pull_them() {
    require_images(&["ferrite/ferrite", "ferrite/busybox"]);
    let registry = Registry::start();
    let fixture = Fixture::new("registry", &["ferrite/test-registry"]);
    let source = fixture.images[0].clone();
    let answer = format!("pulled-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    build_function(dir.path(), &source, &answer);
    let auth_file = dir.path().join("docker-auth.json");
    std::fs::write(&auth_file, auth_document(&registry.address, PASSWORD)).unwrap();

    fixture.create_network();
    // No stand-in and no standby: a call is served by a task or not at all.
    let ferrite = fixture.start_node_mounting(
        &fixture.container,
        &[
            ("FERRITE_SERVICE_REGISTRY", &registry.address),
            ("DOCKER_AUTH_FILE", "/run/secrets/docker-auth"),
            ("FERRITE_SERVICE_STAND_IN", "false"),
            ("FERRITE_SERVICE_STANDBY", "0"),
            ("FERRITE_SERVICE_START_WAIT", "60s"),
        ],
        &[(auth_file.to_str().unwrap(), "/run/secrets/docker-auth")],
    );

    // The route names only the plain image; at zero replicas nothing runs.
    ferrite.create_route(json!({"path": "/pull", "image": source,
        "service": {"min_replicas": 0, "max_replicas": 1}}));
    let view = ferrite.service_view("/pull");
    assert_eq!(view.get("error"), None, "{view}");
    let reference = service_image(&ferrite, "/pull");
    let prefix = format!("{}/ferrite/test-registry-service:", registry.address);
    assert!(reference.starts_with(&prefix), "{reference}");
    let (named, digest) = reference.split_once('@').expect("a digest");
    assert!(digest.starts_with("sha256:"), "{reference}");

    // The registry holds it, and the service names it there.
    let tag = named.rsplit_once(':').unwrap().1;
    assert_eq!(
        registry.tags("ferrite/test-registry-service"),
        vec![tag.to_string()]
    );
    let service = view["service"].as_str().unwrap();
    let spec_image = succeed(
        "docker",
        &[
            "service",
            "inspect",
            "-f",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            service,
        ],
    );
    assert_eq!(spec_image, reference);
    // The credentials are in no label of the service, nor in the answer.
    let labels = succeed(
        "docker",
        &["service", "inspect", "-f", "{{json .Spec.Labels}}", service],
    );
    assert!(!labels.contains(PASSWORD), "{labels}");
    assert!(!view.to_string().contains(PASSWORD), "{view}");

    // This node's copy goes: the task that scales up must pull it, with
    // the credentials the service carries.
    let id = succeed("docker", &["image", "inspect", "-f", "{{.Id}}", named]);
    succeed("docker", &["rmi", "-f", &id]);
    assert!(!run("docker", &["image", "inspect", &reference])
        .status
        .success());
    let (status, body, _) = ferrite.call("/pull", "");
    assert_eq!(
        (status, body.trim()),
        (200, answer.as_str()),
        "{}",
        ferrite.service_view("/pull")
    );
    assert!(run("docker", &["image", "inspect", &reference])
        .status
        .success());

    // Wrong credentials: the push fails, and the listing says why.
    let bad = Fixture::new("registry-bad", &[]);
    bad.create_network();
    let wrong = auth_document(&registry.address, "wrong-pass");
    let ferrite_bad = bad.start_node(
        &bad.container,
        &[
            ("FERRITE_SERVICE_REGISTRY", &registry.address),
            ("DOCKER_AUTH", &wrong),
        ],
    );
    ferrite_bad.create_route(json!({"path": "/pull", "image": source,
        "service": {"min_replicas": 0, "max_replicas": 1}}));
    let view = ferrite_bad.service_view("/pull");
    let error = view["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {view}"));
    assert!(
        error.contains(&format!("to registry {} failed", registry.address)),
        "{error}"
    );
    assert!(!error.contains("wrong-pass"), "{error}");
    assert_eq!(view["service_image"], serde_json::Value::Null, "{view}");
    assert!(bad.services().is_empty(), "{:?}", bad.services());

    // The services, the images (derived ones carry their owner's label:
    // the fixtures remove them) and the registry go.
    drop(bad);
    drop(fixture);
    assert!(eventually(Duration::from_secs(30), || !run(
        "docker",
        &["image", "inspect", &reference]
    )
    .status
    .success()));
}
