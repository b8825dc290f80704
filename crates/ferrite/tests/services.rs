//! Routes as Swarm services on the machine's real single-node Swarm (made
//! active by scripts/test.sh). Ferrite runs as a container (ferrite/ferrite)
//! on an attachable overlay network, because task addresses are reachable
//! only from inside it (common/swarm_fixture.rs); the functions are service
//! images built from the example functions by `ferrite services image`.
//!
//! One scenario, in order: create, the first call from zero, scale-up under
//! load, scale to zero, back from zero, update, adoption after Ferrite's
//! restart, delete. Then a service's confinement and its watchdog's key:
//! what a task may do, and that only Ferrite can call it. Then routes made
//! straight from plain function images: the service image Ferrite derives
//! and reuses, a rebuilt image serving the next call, and what a node
//! without the watchdog image answers.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::swarm_fixture::Fixture;
use common::{client, eventually, require_images, succeed};
use serde_json::{json, Value};

#[test]
fn a_route_runs_as_a_swarm_service_that_scales_with_its_load() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/sleep"]);
    let fixture = Fixture::new("svc", &["ferrite/hello-service", "ferrite/sleep-service"]);
    fixture.build_images(&["ferrite/hello", "ferrite/sleep"]);
    let ferrite = fixture.start();
    let url = ferrite.url.clone();

    // Without a token, the management API is closed to this client.
    let reply = client().get(format!("{url}/v1/services")).send().unwrap();
    assert_eq!(reply.status(), 401);

    // Create: the services exist at once, at zero replicas.
    let hello = json!({"route": {"path": "/hello", "image": fixture.images[0],
        "service": {"min_replicas": 0, "max_replicas": 2, "scale_to_zero_after": 4}}});
    let (status, body) = ferrite.api(reqwest::Method::POST, "/v1/apps/svc/routes", Some(hello));
    assert_eq!(status, 200, "{body}");
    let sleep = json!({"route": {"path": "/sleep", "image": fixture.images[1], "timeout": 30,
        "service": {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 1}}});
    let (status, body) = ferrite.api(reqwest::Method::POST, "/v1/apps/svc/routes", Some(sleep));
    assert_eq!(status, 200, "{body}");
    let services = fixture.services();
    assert_eq!(services.len(), 2, "{services:?}");
    let hello_view = ferrite.service_view("/hello");
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
    let (status, body, first) = ferrite.call("/hello", r#"{"name":"Johnny"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Johnny!\n"));
    eprintln!(
        "scale from zero: first call answered in {} ms",
        first.as_millis()
    );
    let (status, _, warm) = ferrite.call("/hello", r#"{"name":"Warm"}"#);
    assert_eq!(status, 200);
    eprintln!("warm call: {} ms", warm.as_millis());

    // Load: 4 clients calling a 1 s function with a target of 1 call per
    // replica; the autoscaler panics and adds replicas up to the max (3).
    let step = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (ferrite, stop) = (ferrite.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, body, _) = ferrite.call("/sleep", "1");
                    if status != 200 || body != "slept\n" {
                        failures.push((status, body));
                    }
                }
                failures
            })
        })
        .collect();
    let scaled = eventually(Duration::from_secs(60), || {
        ferrite.service_view("/sleep")["running"].as_u64() == Some(3)
    });
    let to_three = step.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        assert_eq!(client.join().unwrap(), vec![], "calls failed under load");
    }
    let view = ferrite.service_view("/sleep");
    assert!(scaled, "not scaled to 3 running: {view}");
    eprintln!(
        "load step to 3 tasks serving: {} ms; last scaling: {}",
        to_three.as_millis(),
        view["last_scaling"]
    );
    assert!(view["requests"].as_u64().unwrap_or(0) > 4, "{view}");
    // The CLI's list shows the same.
    let listed = common::ferrite_cmd_at(&url)
        .env("JWT_AUTH_KEY", &fixture.key)
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
            let (h, s) = (
                ferrite.service_view("/hello"),
                ferrite.service_view("/sleep"),
            );
            h["replicas"] == 0 && h["running"] == 0 && s["replicas"] == 1
        }),
        "{} {}",
        ferrite.service_view("/hello"),
        ferrite.service_view("/sleep")
    );
    let view = ferrite.service_view("/hello");
    assert!(
        view["last_scaling"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("zero"),
        "{view}"
    );

    // Back from zero: the first call is answered.
    let (status, body, back) = ferrite.call("/hello", r#"{"name":"Again"}"#);
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
    let key_before = watchdog_key(&hello_service);
    let (status, body) = ferrite.api(
        reqwest::Method::PATCH,
        "/v1/apps/svc/routes/hello",
        Some(json!({"route": {"config": {"greeting": "hi"}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(version(&hello_service) > before);
    let env = service_env(&hello_service);
    assert!(env.contains("GREETING=hi"), "{env}");
    assert_eq!(
        watchdog_key(&hello_service),
        key_before,
        "the watchdog's key survives the update"
    );
    assert!(
        eventually(Duration::from_secs(60), || ferrite
            .call("/hello", r#"{"name":"New"}"#)
            .0
            == 200),
        "the updated service does not answer"
    );

    // Adoption: a restarted Ferrite takes its services back, no duplicate.
    succeed("docker", &["restart", "-t", "30", &fixture.container]);
    assert!(eventually(Duration::from_secs(30), || client()
        .get(format!("{url}/version"))
        .send()
        .is_ok_and(|r| r.status().is_success())));
    assert!(
        eventually(Duration::from_secs(10), || ferrite.service_view("/hello")
            != Value::Null),
        "not adopted"
    );
    assert_eq!(fixture.services().len(), 2, "{:?}", fixture.services());
    let (status, body, _) = ferrite.call("/hello", r#"{"name":"Adopted"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Adopted!\n"));

    // Delete: the service goes with its route.
    let (status, body) = ferrite.api(reqwest::Method::DELETE, "/v1/apps/svc/routes/hello", None);
    assert_eq!(status, 200, "{body}");
    let left = fixture.services();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left.iter().any(|(name, _)| *name == hello_service));
    let (status, _) = ferrite.api(reqwest::Method::DELETE, "/v1/apps/svc/routes/sleep", None);
    assert_eq!(status, 200);
    assert_eq!(fixture.services(), vec![]);
}

/// The environment of `service`'s tasks, as `docker service inspect` prints it (JSON).
fn service_env(service: &str) -> String {
    succeed(
        "docker",
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
            service,
        ],
    )
}

/// The watchdog key Ferrite set on `service` (FERRITE_WATCHDOG_KEY).
fn watchdog_key(service: &str) -> String {
    let env: Vec<String> = serde_json::from_str(&service_env(service)).unwrap();
    let key = env
        .iter()
        .find_map(|e| e.strip_prefix("FERRITE_WATCHDOG_KEY="))
        .unwrap_or_else(|| panic!("no key in {env:?}"))
        .to_string();
    assert_eq!(key.len(), 64, "32 random bytes, hex: {key}");
    key
}

/// `docker service inspect -f {{json FIELD}}` of `service`, parsed.
fn spec_field(service: &str, field: &str) -> Value {
    let text = succeed(
        "docker",
        &[
            "service",
            "inspect",
            "-f",
            &format!("{{{{json {field}}}}}"),
            service,
        ],
    );
    serde_json::from_str(&text).unwrap()
}

/// What a probe call reports about the task it runs in, one fact a line.
const REPORT: &str = r#"
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -d '\t'
echo "nofile:$(ulimit -n)"
echo "pids.max:$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
if env | grep -q FERRITE_WATCHDOG_KEY; then echo 'key:seen'; else echo 'key:unseen'; fi
for p in /proc/[0-9]*; do
  if [ "$(cat $p/comm 2>/dev/null)" = watchdog ]; then
    if cat $p/environ >/dev/null 2>&1; then echo 'watchdog environ:open'; else echo 'watchdog environ:closed'; fi
    if dd if=$p/mem bs=1 count=0 2>/dev/null; then echo 'watchdog mem:open'; else echo 'watchdog mem:closed'; fi
    if readlink $p/fd/0 >/dev/null 2>&1; then echo 'watchdog fd:open'; else echo 'watchdog fd:closed'; fi
  fi
done
if touch /probe-root 2>/dev/null; then echo 'root:writable'; else echo 'root:read-only'; fi
if touch /tmp/probe 2>/dev/null; then echo 'tmp:writable'; else echo 'tmp:read-only'; fi
if [ -e /tmp/direct-ran ]; then echo 'direct:ran'; else echo 'direct:never'; fi
echo "sleeps:$(for p in /proc/[0-9]*; do cat $p/comm 2>/dev/null; echo; done | grep -c '^sleep$')"
echo "zombies:$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z ')"
ls /var/run/docker.sock >/dev/null 2>&1 && echo 'docker.sock:present'
true
"#;

/// `KEY:VALUE` lines of a report.
fn facts(report: &str) -> std::collections::HashMap<String, String> {
    report
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn a_service_runs_confined_and_takes_calls_only_from_ferrite() {
    require_images(&["ferrite/ferrite", "ferrite/probe", "ferrite/busybox"]);
    let fixture = Fixture::new("confined", &["ferrite/probe-service"]);
    fixture.build_images(&["ferrite/probe"]);
    let ferrite = fixture.start();
    let image = &fixture.images[0];
    // The probe runs its body as a script: one task each, so that calls
    // land on the same task.
    let service = json!({"min_replicas": 1, "max_replicas": 1});
    ferrite.create_route(json!({"path": "/probe", "image": image, "memory": 64,
        "timeout": 3, "service": service}));
    ferrite.create_route(json!({"path": "/tight", "image": image, "memory": 64,
        "service": service, "confinement": {"read_only": true, "pids_limit": 100,
        "nofile": 2048, "cpus": 0.5, "cap_add": ["NET_BIND_SERVICE"]}}));
    let name = |path: &str| -> String {
        ferrite.service_view(path)["service"]
            .as_str()
            .unwrap_or_else(|| panic!("no service for {path}"))
            .to_string()
    };
    let (probe, tight) = (name("/probe"), name("/tight"));

    // The specs: confined by default, the route's opt-ins on top.
    let container = spec_field(&probe, ".Spec.TaskTemplate.ContainerSpec");
    assert_eq!(container["CapabilityDrop"], json!(["ALL"]), "{container}");
    assert_eq!(container.get("CapabilityAdd"), None, "{container}");
    assert_eq!(
        container["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 1024}])
    );
    assert_eq!(container.get("Mounts"), None, "no host path: {container}");
    assert_ne!(container["ReadOnly"], true);
    let resources = spec_field(&probe, ".Spec.TaskTemplate.Resources");
    assert_eq!(resources["Limits"]["Pids"], 256, "{resources}");
    assert_eq!(resources["Limits"].get("NanoCPUs"), None, "{resources}");
    let log = spec_field(&probe, ".Spec.TaskTemplate.LogDriver");
    assert_eq!(log["Name"], "json-file", "{log}");
    assert!(log["Options"]["max-size"].is_string(), "{log}");
    assert!(log["Options"]["max-file"].is_string(), "{log}");
    let container = spec_field(&tight, ".Spec.TaskTemplate.ContainerSpec");
    assert_eq!(container["CapabilityAdd"], json!(["NET_BIND_SERVICE"]));
    assert_eq!(container["ReadOnly"], true);
    assert_eq!(container["Mounts"][0]["Type"], "tmpfs", "{container}");
    assert_eq!(container["Mounts"][0]["Target"], "/tmp", "{container}");
    assert_eq!(container["Ulimits"][0]["Hard"], 2048);
    let resources = spec_field(&tight, ".Spec.TaskTemplate.Resources");
    assert_eq!(resources["Limits"]["Pids"], 100, "{resources}");
    assert_eq!(resources["Limits"]["NanoCPUs"], 500_000_000_i64);

    // Inside the running tasks: no capability (but the one given back), no
    // new privileges, the limits, no key in sight.
    let report = |path: &str| {
        let (status, body, _) = ferrite.call(path, REPORT);
        assert_eq!(status, 200, "{path}: {body}");
        facts(&body)
    };
    let seen = report("/probe");
    for (fact, value) in [
        ("CapEff", "0000000000000000"),
        ("NoNewPrivs", "1"),
        ("nofile", "1024"),
        ("pids.max", "256"),
        ("key", "unseen"),
        ("watchdog environ", "closed"),
        ("watchdog mem", "closed"),
        ("watchdog fd", "closed"),
        ("root", "writable"),
        ("direct", "never"),
    ] {
        assert_eq!(
            seen.get(fact).map(String::as_str),
            Some(value),
            "{fact}: {seen:?}"
        );
    }
    assert!(!seen.contains_key("docker.sock"), "{seen:?}");
    let seen = report("/tight");
    for (fact, value) in [
        // CAP_NET_BIND_SERVICE is bit 10.
        ("CapEff", "0000000000000400"),
        ("NoNewPrivs", "1"),
        ("nofile", "2048"),
        ("pids.max", "100"),
        ("root", "read-only"),
        ("tmp", "writable"),
    ] {
        assert_eq!(
            seen.get(fact).map(String::as_str),
            Some(value),
            "{fact}: {seen:?}"
        );
    }

    // Without capabilities the watchdog still stops a call past its timeout
    // with what it started (its process group), and nothing is left, not
    // even a zombie, under Docker's init.
    let (status, body, took) = ferrite.call("/probe", "sleep 60 & sleep 60");
    assert_eq!(status, 504, "{body}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        eventually(Duration::from_secs(10), || {
            let seen = report("/probe");
            seen["sleeps"] == "0" && seen["zombies"] == "0"
        }),
        "{:?}",
        report("/probe")
    );

    // A container on the overlay calls the task directly: without the key it
    // is refused before the function runs; with the service's key it runs.
    let task = ferrite.service_view("/probe")["addresses"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no task address: {}", ferrite.service_view("/probe")))
        .to_string();
    let direct = |key: Option<&str>| -> String {
        let script = "touch /tmp/direct-ran; echo direct";
        let key_header = key
            .map(|k| format!("Ferrite-Watchdog-Key: {k}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST /probe HTTP/1.0\r\nHost: task\r\n{key_header}Content-Length: {}\r\n\r\n{script}",
            script.len()
        );
        let (host, port) = task.rsplit_once(':').unwrap();
        let probe = format!(
            "{}-probe-{}",
            fixture.container,
            fixture.probes.borrow().len()
        );
        fixture.probes.borrow_mut().push(probe.clone());
        // nc stops at the end of its input: keep it open until the task has
        // answered and closed the connection (HTTP/1.0).
        let shell = format!("{{ printf '%s' \"$REQUEST\"; sleep 5; }} | nc {host} {port}");
        succeed(
            "docker",
            &[
                "run",
                "--name",
                &probe,
                "--label",
                "org.ferrite.test=1",
                "--network",
                &fixture.network,
                "-e",
                &format!("REQUEST={request}"),
                "ferrite/busybox",
                "sh",
                "-c",
                &shell,
            ],
        )
    };
    for key in [None, Some("0".repeat(64).as_str())] {
        let answer = direct(key);
        let status_line = answer.lines().next().unwrap_or_default();
        assert!(status_line.contains(" 401 "), "{key:?}: {answer}");
        assert!(
            answer.contains("this function takes calls only from Ferrite"),
            "{answer}"
        );
    }
    assert_eq!(report("/probe")["direct"], "never", "a refused call ran");
    let key = watchdog_key(&probe);
    let answer = direct(Some(&key));
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.contains(" 200 "), "{answer}");
    assert!(answer.ends_with("direct"), "{answer}");
    assert_eq!(report("/probe")["direct"], "ran");

    // The service's key changes behind this node's back (as when another
    // node made the service again): its watchdog refuses the key Ferrite
    // holds, Ferrite reads the new one from the spec and the call goes
    // through; the client never sees the refusal.
    let fresh = "f".repeat(64);
    succeed(
        "docker",
        &[
            "service",
            "update",
            "--detach",
            "--env-add",
            &format!("FERRITE_WATCHDOG_KEY={fresh}"),
            &probe,
        ],
    );
    let updated = eventually(Duration::from_secs(60), || {
        let state = succeed(
            "docker",
            &[
                "service",
                "inspect",
                "-f",
                "{{.UpdateStatus.State}}",
                &probe,
            ],
        );
        let running = succeed(
            "docker",
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "-q",
                &probe,
            ],
        );
        state == "completed" && running.lines().count() == 1
    });
    assert!(updated, "the service was not updated");
    assert_eq!(watchdog_key(&probe), fresh);
    let (status, body, _) = ferrite.call("/probe", "echo after the new key");
    assert_eq!(
        (status, body.as_str()),
        (200, "after the new key\n"),
        "{body}"
    );
}

/// Build `tag`, a `default` function answering `version` to every call;
/// its image id.
fn build_function(dir: &Path, tag: &str, version: &str) -> String {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM ferrite/busybox\nLABEL org.ferrite.test=1\n\
             CMD [\"/bin/sh\", \"-c\", \"cat >/dev/null; echo {version}\"]\n"
        ),
    )
    .unwrap();
    succeed("docker", &["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    image_id(tag)
}

fn image_id(image: &str) -> String {
    succeed("docker", &["image", "inspect", "-f", "{{.Id}}", image])
}

fn image_label(image: &str, label: &str) -> String {
    succeed(
        "docker",
        &[
            "image",
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            image,
        ],
    )
}

/// The image a route's service runs, as `GET /v1/services` shows it.
fn service_image(ferrite: &common::swarm_fixture::Ferrite, path: &str) -> String {
    let view = ferrite.service_view(path);
    view["service_image"]
        .as_str()
        .unwrap_or_else(|| panic!("no service image for {path}: {view}"))
        .to_string()
}

#[test]
fn a_plain_function_image_serves_as_a_service_and_its_rebuild_the_next_call() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/busybox"]);
    let mut fixture = Fixture::new("derive", &["ferrite/test-derive"]);
    let source = fixture.images[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let v1 = build_function(dir.path(), &source, "v1");
    // Untagged by the rebuild below: removed by id (after the images
    // derived from it, which the fixture removes first).
    fixture.images.push(v1.clone());
    let ferrite = fixture.start();

    // Straight from the example image: the node derives the service image.
    ferrite.create_route(json!({"path": "/hello", "image": "ferrite/hello",
        "service": {"max_replicas": 1}}));
    let view = ferrite.service_view("/hello");
    assert_eq!(view["image"], "ferrite/hello", "{view}");
    assert_eq!(view.get("error"), None, "{view}");
    let derived = service_image(&ferrite, "/hello");
    assert!(
        derived.starts_with("ferrite/hello-service:latest-"),
        "{derived}"
    );
    assert_eq!(
        image_label(&derived, "org.ferrite.watchdog.source-id"),
        image_id("ferrite/hello")
    );
    assert_eq!(image_label(&derived, "org.ferrite.owner"), fixture.owner);
    let derived_id = image_id(&derived);
    let (status, body) = ferrite.api(reqwest::Method::GET, "/v1/apps/svc/routes/hello", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["route"]["image"], "ferrite/hello", "{body}");
    let (status, body, _) = ferrite.call("/hello", r#"{"name":"Plain"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Plain!\n"));

    // A second route of the same source runs the same image: one build.
    ferrite.create_route(json!({"path": "/hello2", "image": "ferrite/hello",
        "service": {"max_replicas": 1}}));
    assert_eq!(service_image(&ferrite, "/hello2"), derived);
    assert_eq!(image_id(&derived), derived_id, "built again");
    assert_eq!(fixture.derived_images(), vec![derived_id.clone()]);

    // The route's image rebuilt under the same tag while a task of the old
    // one serves.
    ferrite.create_route(json!({"path": "/version", "image": source,
        "service": {"min_replicas": 1, "max_replicas": 1}}));
    let (status, body, _) = ferrite.call("/version", "");
    assert_eq!((status, body.as_str()), (200, "v1\n"));
    let before = service_image(&ferrite, "/version");
    let v2 = build_function(dir.path(), &source, "v2");
    assert_ne!(v1, v2);
    // The node hears of the new tag on the engine's event stream on its
    // own time: wait until it has moved the service, not for a time.
    assert!(
        eventually(Duration::from_secs(60), || service_image(
            &ferrite, "/version"
        ) != before),
        "the service was not moved: {}",
        ferrite.service_view("/version")
    );
    let after = service_image(&ferrite, "/version");
    assert_eq!(image_label(&after, "org.ferrite.watchdog.source-id"), v2);
    // One call, no retry: the new image answers, though the old task may
    // still run.
    let (status, body, _) = ferrite.call("/version", "");
    assert_eq!((status, body.as_str()), (200, "v2\n"));

    // Routes gone: their services, then the derived images no service
    // runs (once the old tasks' containers are gone).
    for path in ["hello", "hello2", "version"] {
        let (status, body) = ferrite.api(
            reqwest::Method::DELETE,
            &format!("/v1/apps/svc/routes/{path}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(fixture.services(), vec![]);
    assert!(
        eventually(Duration::from_secs(60), || fixture
            .derived_images()
            .is_empty()),
        "derived images left: {:?}",
        fixture.derived_images()
    );
}

#[test]
fn without_the_watchdog_image_a_service_route_says_what_to_do() {
    require_images(&["ferrite/ferrite", "ferrite/hello"]);
    let fixture = Fixture::new("nowatchdog", &[]);
    fixture.create_network();
    let missing = format!("ferrite/test-no-watchdog:{}", std::process::id());
    let ferrite = fixture.start_node(
        &fixture.container,
        &[("FERRITE_WATCHDOG_IMAGE", missing.as_str())],
    );

    // The route is stored; its service cannot be made, and says why.
    ferrite.create_route(json!({"path": "/hello", "image": "ferrite/hello", "service": {}}));
    let view = ferrite.service_view("/hello");
    let error = view["error"].as_str().unwrap_or_default();
    let expected = format!("watchdog image {missing} is not on the Docker engine");
    assert!(error.contains(&expected), "{view}");
    assert!(error.contains("FERRITE_WATCHDOG_IMAGE"), "{view}");
    assert_eq!(view["service_image"], Value::Null, "{view}");
    let (status, body, _) = ferrite.call("/hello", "{}");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&expected), "{body}");

    // So does a route whose own image is not on the engine.
    ferrite.create_route(json!({"path": "/gone",
        "image": "ferrite/test-no-such-function:none", "service": {}}));
    let (status, body, _) = ferrite.call("/gone", "{}");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("image ferrite/test-no-such-function:none is not on the Docker engine"),
        "{body}"
    );
    assert_eq!(fixture.services(), vec![]);
    assert_eq!(fixture.derived_images(), Vec::<String>::new());
}

/// Queue a call of route `path` of app `svc`; its id (the 202's `call_id`).
fn enqueue(ferrite: &common::swarm_fixture::Ferrite, path: &str, body: &str) -> String {
    let (status, answer, _) = ferrite.call(path, body);
    assert_eq!(status, 202, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    answer["call_id"].as_str().unwrap().to_string()
}

/// The output an async call recorded.
fn call_output(ferrite: &common::swarm_fixture::Ferrite, id: &str) -> String {
    common::client()
        .get(format!("{}/v1/apps/svc/calls/{id}/output", ferrite.url))
        .bearer_auth(common::token(&ferrite.key, 600))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn async_calls_run_on_the_service_and_none_is_lost_when_its_task_dies() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/sleep"]);
    let fixture = Fixture::new("async", &["ferrite/hello-service", "ferrite/sleep-service"]);
    fixture.build_images(&["ferrite/hello", "ferrite/sleep"]);
    fixture.create_network();
    // Async calls may hold 32 MiB of this node's memory: a container of the
    // 128 MiB routes below could never run here. Their tasks run in the
    // Swarm, which reserves their memory where it places them.
    let ferrite = fixture.start_node(
        &fixture.container,
        &[
            ("FERRITE_MEMORY_BUDGET_MIB", "256"),
            ("FERRITE_ASYNC_MEMORY_PERCENT", "12"),
        ],
    );
    let bearer = common::token(&ferrite.key, 600);

    // From zero: the first calls wait for (or go back to the queue until)
    // the first task; all run, their outputs kept.
    ferrite.create_route(json!({"path": "/hello", "image": fixture.images[0],
        "type": "async", "memory": 128,
        "service": {"min_replicas": 0, "max_replicas": 2}}));
    assert_eq!(ferrite.service_view("/hello")["replicas"], 0);
    let ids: Vec<String> = (0..20)
        .map(|i| enqueue(&ferrite, "/hello", &format!(r#"{{"name":"N{i}"}}"#)))
        .collect();
    let settled = common::calls::wait_settled(
        &ferrite.url,
        "svc",
        Some(&bearer),
        &ids,
        Duration::from_secs(120),
    );
    eprintln!("from zero: {settled}");
    assert_eq!(
        (settled.completed, settled.failed, settled.lost),
        (20, 0, 0),
        "{settled}"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(call_output(&ferrite, id), format!("Hello N{i}!\n"));
    }
    let view = ferrite.service_view("/hello");
    assert!(view["requests"].as_u64().unwrap_or(0) >= 20, "{view}");

    // One task running 2 s calls, killed while it has some: the calls it
    // held fail and run again (max_retries), those that meet no task go
    // back to the queue until Swarm has started another.
    ferrite.create_route(json!({"path": "/sleep", "image": fixture.images[1],
        "type": "async", "memory": 128, "timeout": 30, "max_retries": 3,
        "service": {"min_replicas": 1, "max_replicas": 1}}));
    let service = ferrite.service_view("/sleep")["service"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: Vec<String> = (0..12).map(|_| enqueue(&ferrite, "/sleep", "2")).collect();
    // Killed while its function runs calls (not while calls wait for it to
    // listen: those just go on waiting, for the next task).
    let task = |service: &str| {
        succeed(
            "docker",
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ],
        )
    };
    let mut container = String::new();
    let running = eventually(Duration::from_secs(60), || {
        container = task(&service);
        !container.is_empty()
            && common::run("docker", &["top", &container])
                .stdout
                .windows(7)
                .any(|w| w == b"sleep 2")
    });
    assert!(running, "no call ran in {service}'s task");
    succeed("docker", &["kill", &container]);
    let settled = common::calls::wait_settled(
        &ferrite.url,
        "svc",
        Some(&bearer),
        &ids,
        Duration::from_secs(180),
    );
    eprintln!("task killed: {settled}");
    assert_eq!(
        (settled.completed, settled.failed, settled.lost),
        (12, 0, 0),
        "{settled}"
    );
    assert!(
        settled.duplicates > 0,
        "the kill hit no call: the test proves nothing ({settled})"
    );
    for id in &ids {
        assert_eq!(call_output(&ferrite, id), "slept\n");
    }
}

/// `docker service inspect -f FORMAT service`.
fn inspect(service: &str, format: &str) -> String {
    succeed("docker", &["service", "inspect", "-f", format, service])
}

#[test]
fn a_failed_update_is_shown_and_tried_again_only_when_the_route_changes() {
    require_images(&["ferrite/ferrite", "ferrite/hello", "ferrite/busybox"]);
    let fixture = Fixture::new(
        "rollback",
        &["ferrite/hello-service", "ferrite/test-broken"],
    );
    fixture.build_images(&["ferrite/hello"]);
    // A service image (it carries the watchdog label, so it runs as it is)
    // whose task exits at once.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ferrite/busybox\nLABEL org.ferrite.test=1 org.ferrite.watchdog=http\n\
         CMD [\"/bin/sh\", \"-c\", \"echo broken >&2; exit 3\"]\n",
    )
    .unwrap();
    let broken = fixture.images[1].clone();
    succeed(
        "docker",
        &["build", "-q", "-t", &broken, dir.path().to_str().unwrap()],
    );
    let ferrite = fixture.start();
    ferrite.create_route(json!({"path": "/hello", "image": fixture.images[0],
        "service": {"min_replicas": 1, "max_replicas": 1}}));
    let (status, body, _) = ferrite.call("/hello", r#"{"name":"Before"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Before!\n"));
    let service = ferrite.service_view("/hello")["service"]
        .as_str()
        .unwrap()
        .to_string();
    let version = || -> u64 { inspect(&service, "{{.Version.Index}}").parse().unwrap() };
    let failed_at = || ferrite.service_view("/hello")["update_failed_at"].clone();

    // The update to the broken image fails; Swarm rolls it back.
    let (status, body) = ferrite.api(
        reqwest::Method::PATCH,
        "/v1/apps/svc/routes/hello",
        Some(json!({"route": {"image": broken}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(120), || failed_at() != Value::Null),
        "no failed update shown: {}",
        ferrite.service_view("/hello")
    );
    let view = ferrite.service_view("/hello");
    let why = view["update_failed"].as_str().unwrap_or_default();
    assert!(why.contains("rolled it back"), "{view}");
    assert!(why.contains("non-zero exit (3)"), "{view}");
    eprintln!("failed update: {why}");
    // The previous definition serves.
    let (status, body, _) = ferrite.call("/hello", r#"{"name":"Kept"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Kept!\n"));
    assert!(
        inspect(&service, "{{json .Spec.TaskTemplate.ContainerSpec.Image}}")
            .contains("hello-service")
    );
    // Marked on the service, where every node finds it.
    let labels: Value = serde_json::from_str(&inspect(&service, "{{json .Spec.Labels}}")).unwrap();
    assert!(labels["org.ferrite.failed-spec"].is_string(), "{labels}");
    assert_eq!(labels["org.ferrite.failed-why"], why, "{labels}");
    let listed = common::ferrite_cmd_at(&ferrite.url)
        .env("JWT_AUTH_KEY", &fixture.key)
        .arg("services")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("update failed: the update failed"),
        "{listed}"
    );

    // A restarted node adopts the service and does not try it again.
    let marked = version();
    succeed("docker", &["restart", "-t", "30", &fixture.container]);
    assert!(eventually(Duration::from_secs(30), || ferrite.answers()));
    assert!(
        eventually(Duration::from_secs(30), || ferrite.service_view("/hello")
            ["update_failed"]
            .is_string()),
        "{}",
        ferrite.service_view("/hello")
    );
    let (status, _, _) = ferrite.call("/hello", r#"{"name":"Adopted"}"#);
    assert_eq!(status, 200);
    assert_eq!(version(), marked, "the failed update was sent again");

    // A change of the route tries it again (and it fails again)...
    let first = failed_at();
    let (status, body) = ferrite.api(
        reqwest::Method::PATCH,
        "/v1/apps/svc/routes/hello",
        Some(json!({"route": {"timeout": 20}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(version() > marked, "not tried again");
    assert!(
        eventually(Duration::from_secs(120), || {
            let at = failed_at();
            at != Value::Null && at != first
        }),
        "{}",
        ferrite.service_view("/hello")
    );
    // ...and a fixed route is updated, its failure gone.
    let (status, body) = ferrite.api(
        reqwest::Method::PATCH,
        "/v1/apps/svc/routes/hello",
        Some(json!({"route": {"image": fixture.images[0], "config": {"greeting": "hi"}}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ferrite.service_view("/hello").get("update_failed"), None);
    let labels: Value = serde_json::from_str(&inspect(&service, "{{json .Spec.Labels}}")).unwrap();
    assert_eq!(labels.get("org.ferrite.failed-spec"), None, "{labels}");
    assert!(
        eventually(Duration::from_secs(60), || inspect(
            &service,
            "{{.UpdateStatus.State}}"
        ) == "completed"),
        "{}",
        inspect(&service, "{{json .UpdateStatus}}")
    );
    assert!(service_env(&service).contains("GREETING=hi"));
    let (status, body, _) = ferrite.call("/hello", r#"{"name":"Fixed"}"#);
    assert_eq!((status, body.as_str()), (200, "Hello Fixed!\n"));
}
