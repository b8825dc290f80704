//! Routes as Swarm services on the machine's real single-node Swarm (made
//! active by scripts/test.sh). Ferrite runs as a container (ferrite/ferrite)
//! on an attachable overlay network, because task addresses are reachable
//! only from inside it; the functions are service images built from the
//! example functions by `ferrite services image`.
//!
//! One scenario, in order: create, the first call from zero, scale-up under
//! load, scale to zero, back from zero, update, adoption after Ferrite's
//! restart, delete.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, eventually, free_port, require_images, run, succeed};
use serde_json::{json, Value};

/// Everything the scenario makes, removed whatever happens.
struct Fixture {
    owner: String,
    network: String,
    container: String,
    images: Vec<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = run("docker", &["logs", "--tail", "60", &self.container]);
            eprintln!(
                "ferrite's log:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        let _ = run("docker", &["rm", "-f", &self.container]);
        let _ = run("docker", &["volume", "rm", "-f", &self.container]);
        let services = run(
            "docker",
            &[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=org.ferrite.owner={}", self.owner),
            ],
        );
        for id in String::from_utf8_lossy(&services.stdout).split_whitespace() {
            let _ = run("docker", &["service", "rm", id]);
        }
        // Tasks leave the network a moment after their service.
        eventually(Duration::from_secs(30), || {
            run("docker", &["network", "rm", &self.network])
                .status
                .success()
                || !run("docker", &["network", "inspect", &self.network])
                    .status
                    .success()
        });
        for image in &self.images {
            let _ = run("docker", &["rmi", "-f", image]);
        }
    }
}

impl Fixture {
    /// The owner's services as Swarm lists them: (name, replicas asked).
    fn services(&self) -> Vec<(String, u64)> {
        let out = succeed(
            "docker",
            &[
                "service",
                "ls",
                "--filter",
                &format!("label=org.ferrite.owner={}", self.owner),
                "--format",
                "{{.Name}} {{.Replicas}}",
            ],
        );
        out.lines()
            .filter_map(|l| {
                let (name, replicas) = l.split_once(' ')?;
                // "2/3": running/asked.
                let asked = replicas.split('/').nth(1)?.split(' ').next()?;
                Some((name.to_string(), asked.parse().ok()?))
            })
            .collect()
    }

    fn start_ferrite(&self, port: u16) {
        succeed(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                &self.container,
                "--label",
                "org.ferrite.test=1",
                "--network",
                &self.network,
                "-p",
                &format!("127.0.0.1:{port}:8080"),
                "-v",
                "/var/run/docker.sock:/var/run/docker.sock",
                "-v",
                &format!("{}:/var/lib/ferrite", self.container),
                "-e",
                &format!("FERRITE_NODE_ID={}", self.owner),
                "-e",
                &format!("FERRITE_SERVICE_OWNER={}", self.owner),
                "-e",
                &format!("FERRITE_SERVICE_NETWORK={}", self.network),
                // Short enough to watch scale-down in a test.
                "-e",
                "FERRITE_AUTOSCALE_WINDOW=6s",
                "ferrite/ferrite",
            ],
        );
    }
}

fn api(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, format!("{url}{path}"));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn call(url: &str, path: &str, body: &str) -> (u16, String, Duration) {
    let began = Instant::now();
    let reply = client()
        .post(format!("{url}/r/svc{path}"))
        .body(body.to_string())
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.text().unwrap(), began.elapsed())
}

fn service_view(url: &str, path: &str) -> Value {
    let (status, body) = api(url, reqwest::Method::GET, "/v1/services", None);
    assert_eq!(status, 200, "{body}");
    body["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["path"] == path).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn a_route_runs_as_a_swarm_service_that_scales_with_its_load() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/sleep"]);
    let id = format!("svc-{}", std::process::id());
    let fixture = Fixture {
        owner: format!("test-{id}"),
        network: format!("ferrite-test-{id}"),
        container: format!("ferrite-test-{id}"),
        images: vec![
            format!("ferrite/hello-service:{id}"),
            format!("ferrite/sleep-service:{id}"),
        ],
    };
    // Service images of two example functions, by the CLI.
    for (source, image) in [
        ("ferrite/hello", &fixture.images[0]),
        ("ferrite/sleep", &fixture.images[1]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(["services", "image", source, "-t", image])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    succeed(
        "docker",
        &[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            "--label",
            "org.ferrite.test=1",
            &fixture.network,
        ],
    );
    let port = free_port();
    fixture.start_ferrite(port);
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        eventually(Duration::from_secs(30), || client()
            .get(format!("{url}/version"))
            .send()
            .is_ok_and(|r| r.status().is_success())),
        "ferrite did not answer"
    );

    // Create: the services exist at once, at zero replicas.
    let hello = json!({"route": {"path": "/hello", "image": fixture.images[0],
        "service": {"min_replicas": 0, "max_replicas": 2, "scale_to_zero_after": 4}}});
    let (status, body) = api(
        &url,
        reqwest::Method::POST,
        "/v1/apps/svc/routes",
        Some(hello),
    );
    assert_eq!(status, 200, "{body}");
    let sleep = json!({"route": {"path": "/sleep", "image": fixture.images[1], "timeout": 30,
        "service": {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 1}}});
    let (status, body) = api(
        &url,
        reqwest::Method::POST,
        "/v1/apps/svc/routes",
        Some(sleep),
    );
    assert_eq!(status, 200, "{body}");
    let services = fixture.services();
    assert_eq!(services.len(), 2, "{services:?}");
    let hello_view = service_view(&url, "/hello");
    assert_eq!(hello_view["replicas"], 0, "{hello_view}");
    let hello_service = hello_view["service"].as_str().unwrap().to_string();
    let labels = succeed(
        "docker",
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.Labels}}",
            &hello_service,
        ],
    );
    assert!(labels.contains(&fixture.owner), "{labels}");

    // The first call, from zero: held until a task is ready, then answered.
    let (status, body, first) = call(&url, "/hello", r#"{"name":"Johnny"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Johnny!\n"));
    eprintln!(
        "scale from zero: first call answered in {} ms",
        first.as_millis()
    );
    let (status, _, warm) = call(&url, "/hello", r#"{"name":"Warm"}"#);
    assert_eq!(status, 200);
    eprintln!("warm call: {} ms", warm.as_millis());

    // Load: 4 clients calling a 1 s function with a target of 1 call per
    // replica; the autoscaler panics and adds replicas up to the max (3).
    let step = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, body, _) = call(&url, "/sleep", "1");
                    if status != 200 || body != "slept\n" {
                        failures.push((status, body));
                    }
                }
                failures
            })
        })
        .collect();
    let scaled = eventually(Duration::from_secs(60), || {
        service_view(&url, "/sleep")["running"].as_u64() == Some(3)
    });
    let to_three = step.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        assert_eq!(client.join().unwrap(), vec![], "calls failed under load");
    }
    let view = service_view(&url, "/sleep");
    assert!(scaled, "not scaled to 3 running: {view}");
    eprintln!(
        "load step to 3 tasks serving: {} ms; last scaling: {}",
        to_three.as_millis(),
        view["last_scaling"]
    );
    assert!(view["requests"].as_u64().unwrap_or(0) > 4, "{view}");
    // The CLI's list shows the same.
    let listed = common::ferrite_cmd_at(&url)
        .arg("services")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains(view["service"].as_str().unwrap()),
        "{listed}"
    );
    assert!(listed.contains("REPLICAS"), "{listed}");

    // Idle: /hello goes to zero after its 4 s, /sleep back down to its min.
    assert!(
        eventually(Duration::from_secs(60), || {
            let (h, s) = (service_view(&url, "/hello"), service_view(&url, "/sleep"));
            h["replicas"] == 0 && h["running"] == 0 && s["replicas"] == 1
        }),
        "{} {}",
        service_view(&url, "/hello"),
        service_view(&url, "/sleep")
    );
    let view = service_view(&url, "/hello");
    assert!(
        view["last_scaling"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("zero"),
        "{view}"
    );

    // Back from zero: the first call is answered.
    let (status, body, back) = call(&url, "/hello", r#"{"name":"Again"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Again!\n"));
    eprintln!("back from zero: {} ms", back.as_millis());

    // Update: a config change is a rolling update of the same service.
    let version = |name: &str| -> u64 {
        succeed(
            "docker",
            &["service", "inspect", "-f", "{{.Version.Index}}", name],
        )
        .parse()
        .unwrap()
    };
    let before = version(&hello_service);
    let (status, body) = api(
        &url,
        reqwest::Method::PATCH,
        "/v1/apps/svc/routes/hello",
        Some(json!({"route": {"config": {"greeting": "hi"}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(version(&hello_service) > before);
    let env = succeed(
        "docker",
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
            &hello_service,
        ],
    );
    assert!(env.contains("GREETING=hi"), "{env}");
    assert!(
        eventually(Duration::from_secs(60), || call(
            &url,
            "/hello",
            r#"{"name":"New"}"#
        )
        .0 == 200),
        "the updated service does not answer"
    );

    // Adoption: a restarted Ferrite takes its services back, no duplicate.
    succeed("docker", &["restart", "-t", "30", &fixture.container]);
    assert!(eventually(Duration::from_secs(30), || client()
        .get(format!("{url}/version"))
        .send()
        .is_ok_and(|r| r.status().is_success())));
    assert!(
        eventually(Duration::from_secs(10), || service_view(&url, "/hello")
            != Value::Null),
        "not adopted"
    );
    assert_eq!(fixture.services().len(), 2, "{:?}", fixture.services());
    let (status, body, _) = call(&url, "/hello", r#"{"name":"Adopted"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Adopted!\n"));

    // Delete: the service goes with its route.
    let (status, body) = api(
        &url,
        reqwest::Method::DELETE,
        "/v1/apps/svc/routes/hello",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let left = fixture.services();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left.iter().any(|(name, _)| *name == hello_service));
    let (status, _) = api(
        &url,
        reqwest::Method::DELETE,
        "/v1/apps/svc/routes/sleep",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(fixture.services(), vec![]);
}
