//! Functions from a folder, through the real binary, the real engine and a
//! real server: `ferrite init` (each runtime and format, and detection from
//! the files), `ferrite build` (with `--push` to a local registry), `ferrite
//! run` (the same answer as the deployed call, no container left), `ferrite
//! deploy`, `ferrite bump`, and the one-line errors a user meets on the way.
//! Every image built is labelled with this run's owner and removed at the
//! end, failed runs included.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::cli::{error_line, run_cmd};
use common::{ferrite_cmd, ferrite_cmd_at, output_with_stdin, require_images, TestServer};

/// Labels the images this test run builds.
fn owner() -> String {
    format!("test-func-{}", std::process::id())
}

/// Removes the images built with [`owner`]'s label, whatever happens.
struct Images;

impl Drop for Images {
    fn drop(&mut self) {
        let listed = common::run(
            "docker",
            &[
                "images",
                "-q",
                "--filter",
                &format!("label=org.ferrite.owner={}", owner()),
            ],
        );
        let mut ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let _ = common::run("docker", &["rmi", "-f", &id]);
        }
    }
}

/// The binary in `dir` as a client of `server`.
fn in_dir(server: &TestServer, dir: &Path) -> Command {
    let mut cmd = ferrite_cmd(server);
    cmd.current_dir(dir);
    cmd
}

/// `ferrite ARGS` in `dir` that must succeed; its stdout.
#[track_caller]
fn ok_in(server: &TestServer, dir: &Path, args: &[&str]) -> String {
    let out = run_cmd(in_dir(server, dir), args);
    assert!(
        out.status.success(),
        "ferrite {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The owner label flag every build here passes.
fn label() -> String {
    format!("org.ferrite.owner={}", owner())
}

/// `ferrite deploy APP` in `dir`; the URL it prints last.
#[track_caller]
fn deploy(server: &TestServer, dir: &Path, app: &str) -> String {
    let label = label();
    let out = ok_in(server, dir, &["deploy", app, "--label", &label]);
    let url = out.lines().last().unwrap_or_default().to_string();
    assert!(
        url.starts_with(&format!("{}/r/{app}/", server.url)),
        "{out}"
    );
    url
}

/// POST `body` to `url`; the status and the answer.
fn call(url: &str, body: &str) -> (u16, String) {
    let reply = common::client()
        .post(url)
        .body(body.to_string())
        .send()
        .unwrap();
    (reply.status().as_u16(), reply.text().unwrap())
}

/// `ferrite run ARGS` in `dir` with `body` on stdin.
fn run_with(server: &TestServer, dir: &Path, args: &[&str], body: &str) -> Output {
    let mut cmd = in_dir(server, dir);
    cmd.arg("run").args(args);
    output_with_stdin(&mut cmd, body.as_bytes())
}

/// Containers (any state) of `app` on the engine.
fn app_containers(app: &str) -> Vec<String> {
    let out = common::succeed(
        "docker",
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.ferrite.app={app}"),
        ],
    );
    out.split_whitespace().map(str::to_string).collect()
}

/// The base images the templates build on (scripts/base-images.sh).
const BASE_IMAGES: [&str; 5] = [
    "debian:bookworm-slim",
    "rust:1-slim-bookworm",
    "golang:1-bookworm",
    "python:3.11-slim-bookworm",
    "node:18-bookworm-slim",
];

#[test]
fn every_template_deploys_and_runs_locally_with_the_same_answer() {
    for image in BASE_IMAGES {
        let status = Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "base image {image} is missing: run scripts/base-images.sh"
        );
    }
    let _images = Images;
    let server = TestServer::start();
    let root = tempfile::tempdir().unwrap();
    for runtime in ["rust", "go", "python", "node"] {
        for format in ["default", "http"] {
            let name = format!("ftest-{}-{runtime}-{format}", std::process::id());
            let dir = root.path().join(&name);
            std::fs::create_dir(&dir).unwrap();
            let wrote = ok_in(
                &server,
                &dir,
                &["init", "--runtime", runtime, "--format", format],
            );
            assert!(wrote.contains("func.yaml"), "{wrote}");
            assert!(wrote.contains("Dockerfile"), "{wrote}");

            let app = format!("t{runtime}{format}");
            let url = deploy(&server, &dir, &app);
            let deployed = call(&url, r#"{"name":"Ada"}"#);
            assert_eq!(
                deployed,
                (200, "Hello, Ada!\n".into()),
                "{runtime} {format}"
            );

            // The same call locally, no server involved, from the built image,
            // in an app of its own so that its containers can be told apart.
            let local_app = format!("{app}local");
            let local = run_with(
                &server,
                &dir,
                &["--no-build", "--app", &local_app],
                r#"{"name":"Ada"}"#,
            );
            assert!(
                local.status.success(),
                "{runtime} {format}: {}",
                String::from_utf8_lossy(&local.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&local.stdout), deployed.1);
            // The function's log line went to stderr, not into the answer.
            assert!(!local.stderr.is_empty(), "{runtime} {format}: no log");

            // Config as the server gives it: same answer both ways.
            let configured = run_with(
                &server,
                &dir,
                &["--no-build", "--app", &local_app, "-c", "GREETING=Hi"],
                "",
            );
            assert_eq!(String::from_utf8_lossy(&configured.stdout), "Hi, World!\n");
            assert!(
                app_containers(&local_app).is_empty(),
                "{runtime} {format}: left a container"
            );
            ok_in(
                &server,
                &dir,
                &["apps", "config", "set", &app, "GREETING", "Hi"],
            );
            assert_eq!(call(&url, ""), (200, "Hi, World!\n".into()));
        }
    }
}

#[test]
fn run_passes_stdin_config_env_and_exit_status_and_leaves_no_container() {
    require_images(&["ferrite/busybox"]);
    let _images = Images;
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ftest-{}-contract", std::process::id());
    std::fs::write(
        dir.path().join("func.yaml"),
        format!("name: {name}\nversion: 0.1.0\nconfig:\n  from_file: fromfile\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ferrite/busybox\nCOPY fn.sh /fn.sh\nCMD [\"/bin/sh\", \"/fn.sh\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fn.sh"),
        "read -r body\necho \"$body $FROM_FILE $EXTRA $Lower $METHOD $ROUTE $APP_NAME\"\n\
         echo logged >&2\nexit ${CODE:-0}\n",
    )
    .unwrap();
    let app = format!("contract{}", std::process::id());
    let label = label();
    let out = run_with(
        &server,
        dir.path(),
        &[
            "--app",
            &app,
            "--label",
            &label,
            "-c",
            "extra=set",
            "-e",
            "Lower=kept",
        ],
        "payload\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        format!("payload fromfile set kept POST /{name} {app}\n")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Step "), "{stderr}");
    assert!(stderr.ends_with("logged\n"), "{stderr}");
    assert!(app_containers(&app).is_empty(), "a container was left");

    let failed = run_with(
        &server,
        dir.path(),
        &["--no-build", "--app", &app, "-c", "CODE=3"],
        "x\n",
    );
    assert_eq!(failed.status.code(), Some(3));
    assert!(app_containers(&app).is_empty(), "a container was left");
}

#[test]
fn init_tells_the_runtime_from_the_files() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Nothing to tell from: one line naming the choices.
    let out = run_cmd(in_dir(&server, dir.path()), &["init"]);
    let line = error_line(&out, 1, &["init"]);
    assert!(
        line.contains("--runtime (rust, go, python or node)"),
        "{line}"
    );

    // Code of its own, with its own Dockerfile: only func.yaml is written.
    std::fs::write(dir.path().join("requirements.txt"), "").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM mine\n").unwrap();
    let wrote = ok_in(&server, dir.path(), &["init", "myfunc"]);
    assert!(wrote.contains(": func.yaml\n"), "{wrote}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
        "FROM mine\n"
    );
    let func = std::fs::read_to_string(dir.path().join("func.yaml")).unwrap();
    assert!(func.contains("name: myfunc\n"), "{func}");
    assert!(func.contains("runtime: python\n"), "{func}");

    // Never overwrites, unless asked.
    let out = run_cmd(in_dir(&server, dir.path()), &["init", "other"]);
    let line = error_line(&out, 1, &["init"]);
    assert!(line.contains("func.yaml exists already"), "{line}");
    ok_in(&server, dir.path(), &["init", "other", "--force"]);
    let func = std::fs::read_to_string(dir.path().join("func.yaml")).unwrap();
    assert!(func.contains("name: other\n"), "{func}");

    // Without a Dockerfile, the runtime's own is added.
    let bare = tempfile::tempdir().unwrap();
    std::fs::write(bare.path().join("func.py"), "").unwrap();
    let wrote = ok_in(&server, bare.path(), &["init", "bare"]);
    assert!(wrote.contains("Dockerfile, func.yaml"), "{wrote}");
    assert!(bare.path().join("Dockerfile").is_file());
}

#[test]
fn an_ironfunctions_func_yaml_without_dockerfile_deploys() {
    require_images(&["python:3.11-slim-bookworm"]);
    let _images = Images;
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ftest-{}-iron", std::process::id());
    // As IronFunctions' fn wrote them: entrypoint, a Go duration, headers.
    std::fs::write(
        dir.path().join("func.yaml"),
        format!(
            "name: {name}\nversion: 0.0.7\nruntime: python\nentrypoint: python func.py\n\
             type: sync\nmemory: 64\ntimeout: 20s\npath: /iron\nheaders:\n  x-made-by:\n  - iron\n\
             config:\n  GREETING: Howdy\n"
        ),
    )
    .unwrap();
    // The code is the runtime's own template's: what fn init left.
    let templates = tempfile::tempdir().unwrap();
    ok_in(
        &server,
        templates.path(),
        &["init", "--runtime", "python", "x"],
    );
    std::fs::copy(templates.path().join("func.py"), dir.path().join("func.py")).unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "").unwrap();

    let url = deploy(&server, dir.path(), "iron");
    assert!(url.ends_with("/r/iron/iron"), "{url}");
    let reply = common::client()
        .post(&url)
        .body(r#"{"name":"Ada"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.headers()["x-made-by"], "iron");
    assert_eq!(reply.text().unwrap(), "Howdy, Ada!\n");
    let route = common::cli::ok_json(&server, &["routes", "inspect", "iron", "/iron"]);
    assert_eq!(route["image"], format!("{name}:0.0.7"));
    assert_eq!(route["memory"], 64);
    assert_eq!(route["timeout"], 20);
}

#[test]
fn bump_raises_the_version_and_keeps_the_rest_of_the_file() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = "# my function\nname: hello # the image\nversion: 1.4.2 # the tag\n\n# limits\nmemory: 64\n";
    std::fs::write(dir.path().join("func.yaml"), text).unwrap();
    let said = ok_in(&server, dir.path(), &["bump"]);
    assert_eq!(said, "hello: version 1.4.2 to 1.4.3\n");
    let bumped = std::fs::read_to_string(dir.path().join("func.yaml")).unwrap();
    assert_eq!(bumped, text.replace("1.4.2", "1.4.3"));
    ok_in(&server, dir.path(), &["bump", "--minor"]);
    ok_in(&server, dir.path(), &["bump", "--major"]);
    let bumped = std::fs::read_to_string(dir.path().join("func.yaml")).unwrap();
    assert_eq!(bumped, text.replace("1.4.2", "2.0.0"));
}

#[test]
fn push_sends_the_image_to_the_registry_its_name_names() {
    require_images(&["ferrite/busybox"]);
    let _images = Images;
    let server = TestServer::start();
    let fixture = tempfile::tempdir().unwrap();
    let registry = registry_start(fixture.path());
    let _stop = StopRegistry(fixture.path().to_path_buf());
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("ftest-{}/pushed", std::process::id());
    std::fs::write(
        dir.path().join("func.yaml"),
        format!("name: {registry}/{repo}\nversion: 0.3.0\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ferrite/busybox\nCMD [\"echo\", \"pushed\"]\n",
    )
    .unwrap();
    // Credentials from a docker config of the test's own.
    let config = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("ferrite:ferrite-pass");
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{basic}"}}}}}}"#),
    )
    .unwrap();
    let label = label();
    let mut cmd = in_dir(&server, dir.path());
    cmd.env("DOCKER_CONFIG", config.path());
    let out = run_cmd(cmd, &["build", "--push", "--label", &label]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tags = common::client()
        .get(format!("http://{registry}/v2/{repo}/tags/list"))
        .basic_auth("ferrite", Some("ferrite-pass"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(tags.contains("\"0.3.0\""), "{tags}");

    // A name with no registry host: nowhere to push.
    std::fs::write(dir.path().join("func.yaml"), "name: local-only\n").unwrap();
    let out = run_cmd(
        in_dir(&server, dir.path()),
        &["build", "--push", "--label", &label],
    );
    let line = error_line(&out, 1, &["build", "--push"]);
    assert!(line.contains("names no registry to push to"), "{line}");
}

fn registry_start(dir: &Path) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = common::succeed(
        &format!("{root}/scripts/registry.sh"),
        &["start", dir.to_str().unwrap()],
    );
    out.lines()
        .find_map(|l| l.strip_prefix("REGISTRY="))
        .expect("REGISTRY=")
        .to_string()
}

/// Stops the registry of the fixture folder, whatever the test does.
struct StopRegistry(std::path::PathBuf);

impl Drop for StopRegistry {
    fn drop(&mut self) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let _ = common::run(
            &format!("{root}/scripts/registry.sh"),
            &["stop", self.0.to_str().unwrap_or_default()],
        );
    }
}

#[test]
fn errors_on_the_way_are_one_line_saying_what_to_do() {
    require_images(&["ferrite/busybox"]);
    let _images = Images;
    let server = TestServer::start();
    let label = label();
    let dir = tempfile::tempdir().unwrap();
    let fails = |cmd: Command, args: &[&str]| {
        let out = run_cmd(cmd, args);
        error_line(&out, 1, args)
    };

    // No func.yaml.
    for verb in ["build", "run", "bump"] {
        let line = fails(in_dir(&server, dir.path()), &[verb]);
        assert!(line.contains("no func.yaml in"), "{line}");
        assert!(
            line.ends_with("create a function with `ferrite init`"),
            "{line}"
        );
    }
    let line = fails(in_dir(&server, dir.path()), &["deploy", "someapp"]);
    assert!(line.contains("`ferrite init`"), "{line}");

    // A misspelt field, and a value the API refuses: file, line, field.
    std::fs::write(dir.path().join("func.yaml"), "name: hello\nmemroy: 64\n").unwrap();
    let line = fails(in_dir(&server, dir.path()), &["build"]);
    assert!(
        line.contains("func.yaml:2: unknown field `memroy`"),
        "{line}"
    );
    std::fs::write(
        dir.path().join("func.yaml"),
        "name: hello\n# in MiB\nmemory: 2\n",
    )
    .unwrap();
    let line = fails(in_dir(&server, dir.path()), &["deploy", "x"]);
    assert!(
        line.contains("func.yaml:3: memory: route memory must be at least 6 MiB"),
        "{line}"
    );

    // No Docker engine.
    let name = format!("ftest-{}-err", std::process::id());
    std::fs::write(
        dir.path().join("func.yaml"),
        format!("name: {name}\nversion: 0.0.1\n"),
    )
    .unwrap();
    let mut no_docker = in_dir(&server, dir.path());
    no_docker.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let line = fails(no_docker, &["build"]);
    assert!(line.contains("cannot reach the Docker engine"), "{line}");
    assert!(line.contains("start Docker, or set DOCKER_HOST"), "{line}");

    // The image was never built.
    let line = fails(in_dir(&server, dir.path()), &["run", "--no-build"]);
    assert!(
        line.ends_with(&format!(
            "image {name}:0.0.1 is not on the Docker engine: build it with `ferrite build`"
        )),
        "{line}"
    );

    // No Dockerfile and no runtime.
    let line = fails(in_dir(&server, dir.path()), &["build"]);
    assert!(
        line.contains("has no Dockerfile and func.yaml no runtime"),
        "{line}"
    );

    // The build fails: its output, then the error as the last line.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ferrite/busybox\nRUN echo broken-step >&2; exit 3\n",
    )
    .unwrap();
    let out = run_cmd(in_dir(&server, dir.path()), &["build", "--label", &label]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken-step"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: building {name}:0.0.1 failed: ")),
        "{stderr}"
    );

    // No server at API_URL: said before anything is built.
    let (cmd, url) = common::cli::unreachable_cmd();
    let mut cmd = cmd;
    cmd.current_dir(dir.path());
    let line = fails(cmd, &["deploy", "someapp"]);
    assert!(
        line.contains(&format!("cannot reach the server at {url}")),
        "{line}"
    );

    // An app that does not exist, for the commands that do not create it.
    let line = fails(
        ferrite_cmd_at(&server.url),
        &["routes", "list", "nosuchapp"],
    );
    assert!(line.contains("nosuchapp"), "{line}");
}
