// Long: one test per confinement property, all sharing this file's call, inspect and status helpers; one binary for all.
//! Function containers are confined, against the real engine: what a
//! function sees from inside (capabilities, privileges, limits, filesystem,
//! network), what `docker inspect` shows of its container, that it cannot
//! forge the init's report of its exit, and that Ferrite's own files (hot
//! sockets, data) are in directories only Ferrite can write.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    assert_only_waiting_containers, client_with_timeout, create_route, create_routes, eventually,
    ferrite_cmd, node_containers, require_images, succeed, TestServer,
};
use reqwest::blocking::Response;
use serde_json::{json, Value};

/// Every capability, in `/proc/self/status`'s hex.
const NO_CAPS: &str = "0000000000000000";

fn call(server: &TestServer, path: &str, body: &str) -> (u16, String) {
    let reply = client_with_timeout(Duration::from_secs(120))
        .post(format!("{}/r{path}", server.url))
        .body(body.to_string())
        .send()
        .expect("call");
    (reply.status().as_u16(), reply.text().unwrap_or_default())
}

#[track_caller]
fn call_ok(server: &TestServer, path: &str, body: &str) -> String {
    let (status, text) = call(server, path, body);
    assert_eq!(status, 200, "{path}: {text}");
    text
}

/// The value of a `/proc/self/status` line (`CapEff:\t0000...`).
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
        .to_string()
}

#[track_caller]
fn assert_confined_status(status: &str, cap_eff: &str) {
    assert_eq!(status_field(status, "CapEff"), cap_eff, "{status}");
    assert_eq!(status_field(status, "CapPrm"), cap_eff, "{status}");
    assert_eq!(status_field(status, "CapInh"), NO_CAPS, "{status}");
    assert_eq!(status_field(status, "NoNewPrivs"), "1", "{status}");
}

/// A server with `routes` created in `app`, once their images are known to be
/// built.
fn serve<const N: usize>(app: &str, routes: [Value; N]) -> TestServer {
    let images: Vec<&str> = routes.iter().filter_map(|r| r["image"].as_str()).collect();
    require_images(&images);
    let server = TestServer::start();
    create_routes(&server, app, routes);
    server
}

/// Call `path` (`/app/route`) and take its call id with the reply.
fn call_with_id(server: &TestServer, path: &str, body: &'static str) -> (String, Response) {
    let reply = common::client()
        .post(format!("{}/r{path}", server.url))
        .body(body)
        .send()
        .expect("call");
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    (call_id, reply)
}

/// The log of call `call_id` in `app`, once `done` holds for it (within 10 s);
/// the last log read, whether or not it did.
fn call_log(server: &TestServer, app: &str, call_id: &str, done: impl Fn(&str) -> bool) -> String {
    let log_url = format!("{}/v1/apps/{app}/calls/{call_id}/log", server.url);
    let mut log = String::new();
    eventually(Duration::from_secs(10), || {
        log = common::client()
            .get(&log_url)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        done(&log)
    });
    log
}

/// `docker inspect` of a container, as JSON.
fn inspect(id: &str) -> Value {
    let out = succeed("docker", &["inspect", id]);
    let mut all: Value = serde_json::from_str(&out).expect("inspect JSON");
    all[0].take()
}

/// Once the server is gone, nothing of its node is left on the engine.
#[track_caller]
fn assert_no_containers_after(mut server: TestServer) {
    let node = server.node_id.clone();
    server.terminate();
    assert!(
        node_containers(&node).is_empty(),
        "{:?}",
        node_containers(&node)
    );
}

#[test]
fn functions_have_no_capabilities_and_no_new_privileges() {
    let server = serve(
        "caps",
        [
            json!({"path":"/cold","image":"ferrite/probe"}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http"}),
            // A hot image whose USER is not root: its init creates the socket too.
            json!({"path":"/nobody","image":"ferrite/chaos-nobody","format":"http"}),
        ],
    );
    let cold = call_ok(&server, "/caps/cold", "cat /proc/self/status");
    assert_confined_status(&cold, NO_CAPS);
    assert_eq!(status_field(&cold, "CapBnd"), NO_CAPS, "{cold}");
    for path in ["/caps/hot", "/caps/nobody"] {
        let hot = call_ok(&server, path, r#"{"read":"/proc/self/status"}"#);
        assert_confined_status(&hot, NO_CAPS);
    }
    let nobody = call_ok(&server, "/caps/nobody", r#"{"read":"/proc/self/status"}"#);
    assert!(
        status_field(&nobody, "Uid").starts_with("65534"),
        "{nobody}"
    );
    assert_no_containers_after(server);
}

#[test]
fn docker_inspect_shows_the_limits_and_no_host_paths() {
    let server = serve(
        "lim",
        [
            json!({"path":"/slow","image":"ferrite/probe","timeout":60}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http","memory":256,
               "confinement":{"cpus":0.5,"pids_limit":100,"nofile":2048}}),
        ],
    );
    // A slow call, so that its container is running while we look.
    let url = server.url.clone();
    let slow = std::thread::spawn(move || {
        client_with_timeout(Duration::from_secs(120))
            .post(format!("{url}/r/lim/slow"))
            .body("sleep 4; echo slept")
            .send()
            .and_then(|r| r.text())
    });
    call_ok(&server, "/lim/hot", "{}");
    let node = server.node_id.clone();
    assert!(eventually(Duration::from_secs(30), || {
        node_containers(&node)
            .iter()
            .filter(|(_, state, _)| state == "running")
            .count()
            >= 2
    }));
    let mut seen = (0, 0);
    for (id, state, _) in node_containers(&node) {
        if state != "running" {
            continue;
        }
        let container = inspect(&id);
        let host = &container["HostConfig"];
        let hot = container["Config"]["Labels"]["org.ferrite.kind"] == "hot";
        assert_eq!(host["CapDrop"], json!(["ALL"]), "{host}");
        assert_eq!(host["CapAdd"], Value::Null, "{host}");
        assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]), "{host}");
        assert_eq!(host["Privileged"], false);
        assert_eq!(host["LogConfig"]["Type"], "none", "{host}");
        assert_eq!(host["Binds"], Value::Null, "no bind but the mounts: {host}");
        assert_eq!(host["ReadonlyRootfs"], false);
        let (pids, nofile, shares, nano) = if hot {
            (100, 2048, 2048, 500_000_000)
        } else {
            (256, 1024, 1024, 0)
        };
        assert_eq!(host["PidsLimit"], pids, "{host}");
        assert_eq!(
            host["Ulimits"],
            json!([{"Name":"nofile","Soft":nofile,"Hard":nofile}]),
            "{host}"
        );
        assert_eq!(host["CpuShares"], shares, "{host}");
        assert_eq!(host["NanoCpus"], nano, "{host}");
        let mounts = container["Mounts"].as_array().expect("mounts");
        let init = mounts
            .iter()
            .find(|m| m["Destination"] == "/.ferrite")
            .expect("the init's volume");
        assert_eq!(
            (&init["Type"], &init["RW"]),
            (&json!("volume"), &json!(false))
        );
        let volume = init["Name"].as_str().unwrap_or_default();
        assert!(volume.starts_with("ferrite-init-"), "{init}");
        // As docs/security.md finds it.
        let listed = succeed(
            "docker",
            &["volume", "ls", "--filter", "label=org.ferrite.init"],
        );
        assert!(listed.contains(volume), "{listed}");
        for mount in mounts {
            let source = mount["Source"].as_str().unwrap_or_default();
            assert!(!source.contains("docker.sock"), "{mount}");
            if mount["Type"] == "bind" {
                assert_eq!(mount["Destination"], "/.ferrite/sock", "{mount}");
                assert!(hot, "only hot containers have a bind: {mount}");
            }
        }
        assert_eq!(mounts.len(), if hot { 2 } else { 1 }, "{mounts:?}");
        if hot {
            seen.0 += 1;
        } else {
            seen.1 += 1;
        }
    }
    assert!(
        seen.0 >= 1 && seen.1 >= 1,
        "hot and cold inspected: {seen:?}"
    );
    let slept = slow.join().expect("thread").expect("slow call");
    assert_eq!(slept, "slept\n");

    // Docker's log is off, and Ferrite still has the output: the answer from
    // stdout, and stderr as the call's log, cold and hot.
    for (path, body, answer, logged) in [
        (
            "/lim/slow",
            "echo to-stdout; echo to-stderr >&2",
            "to-stdout\n",
            "to-stderr",
        ),
        (
            "/lim/hot",
            r#"{"log":"hot-stderr","body":"hot-body"}"#,
            "hot-body",
            "hot-stderr",
        ),
    ] {
        let (call_id, reply) = call_with_id(&server, path, body);
        assert_eq!(reply.text().unwrap(), answer);
        let log = call_log(&server, "lim", &call_id, |log| log.contains(logged));
        assert!(
            log.contains(logged),
            "{path}: the call's log has its stderr"
        );
    }
    assert_no_containers_after(server);
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let server = serve(
        "bomb",
        [json!({"path":"/fork","image":"ferrite/probe","timeout":30,
                "confinement":{"pids_limit":32}})],
    );
    // Processes that stay, until one cannot be made (the subshell dies
    // there); each number is printed once its process exists.
    let script = "( n=0; while [ $n -lt 5000 ]; do sleep 60 & n=$((n+1)); echo $n; done ); \
                  echo \"loop ended: $?\"";
    let (status, out) = call(&server, "/bomb/fork", script);
    assert_eq!(status, 200, "{out}");
    let most: u32 = out
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (1..32).contains(&most),
        "stopped below the limit of 32: {most}"
    );
    assert!(
        out.ends_with("loop ended: 2\n"),
        "the shell could not fork: {out}"
    );
    // The container and everything it started are gone with the call.
    assert_only_waiting_containers(&server, Duration::from_secs(30));
    assert_no_containers_after(server);
}

#[test]
fn a_read_only_root_leaves_tmp_writable() {
    let server = serve(
        "ro",
        [
            json!({"path":"/cold","image":"ferrite/probe","memory":32,
               "confinement":{"read_only":true}}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http",
               "confinement":{"read_only":true}}),
            json!({"path":"/rw","image":"ferrite/probe"}),
        ],
    );
    let script =
        "echo x >/tmp/f && echo tmp-written; echo x >/f 2>/dev/null || echo root-refused; \
                  grep ' /tmp ' /proc/mounts || true";
    let out = call_ok(&server, "/ro/cold", script);
    assert!(out.contains("tmp-written"), "{out}");
    assert!(out.contains("root-refused"), "{out}");
    assert!(
        out.contains("tmpfs /tmp tmpfs") && out.contains("size=32768k"),
        "a tmpfs the size of the memory: {out}"
    );
    let out = call_ok(&server, "/ro/rw", script);
    assert!(!out.contains("root-refused"), "writable by default: {out}");

    assert_eq!(
        call(&server, "/ro/hot", r#"{"write":"/tmp/f"}"#),
        (200, "wrote /tmp/f".to_string())
    );
    let (status, text) = call(&server, "/ro/hot", r#"{"write":"/f"}"#);
    assert_eq!(status, 500);
    assert!(text.contains("Read-only file system"), "{text}");
    assert_no_containers_after(server);
}

#[test]
fn network_none_leaves_only_loopback() {
    let server = serve(
        "net",
        [
            json!({"path":"/none","image":"ferrite/probe","confinement":{"network":"none"}}),
            json!({"path":"/default","image":"ferrite/probe"}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http",
               "confinement":{"network":"none"}}),
        ],
    );
    assert_eq!(call_ok(&server, "/net/none", "ls /sys/class/net"), "lo\n");
    let default = call_ok(&server, "/net/default", "ls /sys/class/net");
    assert!(
        default.lines().count() >= 2,
        "a network by default: {default}"
    );
    // A hot function without a network is still reached (over its socket).
    let dev = call_ok(&server, "/net/hot", r#"{"read":"/proc/net/dev"}"#);
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{dev}");
    assert_no_containers_after(server);
}

#[test]
fn capabilities_come_back_only_from_the_allowlist() {
    let server = serve(
        "capadd",
        [json!({"path":"/bind","image":"ferrite/probe",
                "confinement":{"cap_add":["NET_BIND_SERVICE"]}})],
    );
    let out = call_ok(&server, "/capadd/bind", "cat /proc/self/status");
    // CAP_NET_BIND_SERVICE is capability 10.
    assert_confined_status(&out, "0000000000000400");

    for cap in ["SYS_ADMIN", "SYS_PTRACE", "NET_RAW"] {
        let reply = common::client()
            .post(format!("{}/v1/apps/capadd/routes", server.url))
            .body(
                json!({"route":{"path":"/x","image":"ferrite/probe",
                                "confinement":{"cap_add":[cap]}}})
                .to_string(),
            )
            .send()
            .unwrap();
        assert_eq!(reply.status(), 400);
        let body: Value = reply.json().unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "route confinement.cap_add entry \"{cap}\" is refused"
            )),
            "{message}"
        );
        assert!(
            message.contains("NET_BIND_SERVICE"),
            "names the allowlist: {message}"
        );
    }
    assert_no_containers_after(server);
}

#[test]
fn a_function_cannot_forge_its_exit_status() {
    let server = serve(
        "forge",
        [
            json!({"path":"/cold","image":"ferrite/forge"}),
            json!({"path":"/hot","image":"ferrite/chaos","format":"http"}),
        ],
    );
    let (call_id, reply) = call_with_id(&server, "/forge/cold", "");
    let status = reply.status().as_u16();
    let body: Value = reply.json().unwrap();
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (500, Some("exit code 1")),
        "the real failure, not the forged success: {body}"
    );
    let log = call_log(&server, "forge", &call_id, |log| {
        log.contains("/proc/1/mem")
    });
    assert!(log.contains("/proc/1/mem"), "{log}");
    for target in ["/proc/1/fd/1", "/proc/1/environ", "/proc/1/mem"] {
        assert!(log.contains(&format!("{target}: refused")), "{log}");
    }

    // The hot init is sealed too.
    for (body, needle) in [
        (r#"{"write":"/proc/1/fd/1"}"#, "cannot write /proc/1/fd/1"),
        (
            r#"{"read":"/proc/1/environ"}"#,
            "cannot read /proc/1/environ",
        ),
    ] {
        let (status, text) = call(&server, "/forge/hot", body);
        assert_eq!(status, 500, "{text}");
        assert!(text.contains(needle) && text.contains("denied"), "{text}");
    }
    assert_no_containers_after(server);
}

/// The host directory of a running hot container's socket.
fn socket_dir_of(node: &str) -> PathBuf {
    let (id, _, _) = node_containers(node)
        .into_iter()
        .find(|(id, state, _)| {
            state == "running" && inspect(id)["Config"]["Labels"]["org.ferrite.kind"] == "hot"
        })
        .expect("a hot container");
    let container = inspect(&id);
    let mount = container["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/.ferrite/sock")
        .expect("the socket mount")
        .clone();
    PathBuf::from(mount["Source"].as_str().unwrap())
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn hot_sockets_live_in_a_private_directory() {
    let mut server = serve(
        "sock",
        [json!({"path":"/hot","image":"ferrite/chaos","format":"http"})],
    );
    call_ok(&server, "/sock/hot", "{}");
    let container_dir = socket_dir_of(&server.node_id);
    let dir = container_dir.parent().unwrap().to_path_buf();
    assert_eq!(dir.parent().unwrap(), std::env::temp_dir());
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("ferrite-hot-"), "{name}");
    assert!(
        !name.contains(&server.node_id),
        "not predictable from the node: {name}"
    );
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.uid(), rustix_uid());
    assert_eq!(mode(&container_dir), 0o733);

    // Killed, the node cannot remove it; its next start does.
    server.restart();
    assert!(
        !dir.exists(),
        "removed at the next start: {}",
        dir.display()
    );
    call_ok(&server, "/sock/hot", "{}");
    let dir = socket_dir_of(&server.node_id)
        .parent()
        .unwrap()
        .to_path_buf();
    assert_no_containers_after(server);
    assert!(!dir.exists(), "removed at shutdown: {}", dir.display());

    // A configured directory: created 0700, or refused when others may write it.
    let base = tempfile::tempdir().unwrap();
    let made = base.path().join("sockets");
    let server = TestServer::start_with_env(&[("FERRITE_HOT_SOCKET_DIR", made.to_str().unwrap())]);
    create_route(
        &server,
        "sock",
        json!({"path":"/hot","image":"ferrite/chaos","format":"http"}),
    );
    call_ok(&server, "/sock/hot", "{}");
    assert_eq!(socket_dir_of(&server.node_id).parent().unwrap(), made);
    assert_eq!(mode(&made), 0o700);
    assert_no_containers_after(server);
    assert!(made.exists(), "a configured directory stays");

    std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ferrite_server_fails(&[("FERRITE_HOT_SOCKET_DIR", made.to_str().unwrap())]);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(
        out.contains("FERRITE_HOT_SOCKET_DIR")
            && out.contains("writable by group or others (mode 0777)"),
        "{out}"
    );
    let link = base.path().join("link");
    std::os::unix::fs::symlink(&made, &link).unwrap();
    let out = ferrite_server_fails(&[("FERRITE_HOT_SOCKET_DIR", link.to_str().unwrap())]);
    assert!(out.contains("is not a directory"), "{out}");
}

/// This process's user, which the test servers run as.
fn rustix_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Start a server that must refuse to start; its stderr, trimmed.
fn ferrite_server_fails(env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"));
    command
        .args(["server", "--host", "127.0.0.1", "--port", "0"])
        .arg("--db-url")
        .arg(format!("sqlite://{}/ferrite.db", data.path().display()))
        .env("LOG_LEVEL", "warn")
        .env("FERRITE_NODE_ID", "confine-refused")
        .env_remove("JWT_AUTH_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run ferrite server");
    assert!(!out.status.success(), "refused to start");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn the_data_directory_and_database_files_are_private() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("state/data");
    let mut server = TestServer::start_with_env(&[(
        "DB_URL",
        &format!("sqlite://{}/ferrite.db", data.display()),
    )]);
    let reply = common::client()
        .post(format!("{}/v1/apps", server.url))
        .body(r#"{"app":{"name":"files"}}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    server.terminate();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&base.path().join("state")), 0o700);
    for file in ["ferrite.db", "queue.db"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
    }
}

#[test]
fn the_cli_sets_and_shows_the_confinement_section() {
    let server = TestServer::start();
    let run = |args: &[&str]| {
        let out = ferrite_cmd(&server).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let read_route = || -> Value {
        common::client()
            .get(format!("{}/v1/apps/cli/routes/c", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let (ok, _, err) = run(&[
        "routes",
        "create",
        "cli",
        "/c",
        "ferrite/probe",
        "--read-only",
        "--network",
        "none",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--cap-add",
        "chown",
        "--pids-limit",
        "512",
        "--nofile",
        "4096",
        "--cpus",
        "0.5",
    ]);
    assert!(ok, "{err}");
    let route = read_route();
    assert_eq!(
        route["route"]["confinement"],
        json!({"read_only":true,"network":"none","cap_add":["CHOWN","NET_BIND_SERVICE"],
               "pids_limit":512,"nofile":4096,"cpus":0.5})
    );
    let (ok, out, err) = run(&["routes", "inspect", "cli", "/c"]);
    assert!(ok, "{err}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("ROOT FILESYSTEM"),
        "ROOT FILESYSTEM read-only, /tmp writable (128 MiB)"
    );
    assert_eq!(row("NETWORK"), "NETWORK none");
    assert_eq!(row("CAPABILITIES"), "CAPABILITIES CHOWN, NET_BIND_SERVICE");
    assert_eq!(row("PIDS LIMIT"), "PIDS LIMIT 512");
    assert_eq!(row("OPEN FILES"), "OPEN FILES 4096");
    assert_eq!(row("CPU"), "CPU weight 1024, at most 0.5 CPUs");
    let (ok, out, _) = run(&["routes", "inspect", "cli", "/c", "--json"]);
    assert!(ok);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["confinement"]["pids_limit"], 512);

    let (ok, _, err) = run(&[
        "routes",
        "update",
        "cli",
        "/c",
        "--read-only=false",
        "--cpus",
        "none",
        "--pids-limit",
        "300",
    ]);
    assert!(ok, "{err}");
    let route = read_route();
    let section = &route["route"]["confinement"];
    assert_eq!(
        (
            &section["read_only"],
            &section["cpus"],
            &section["pids_limit"],
            &section["network"]
        ),
        (&json!(false), &Value::Null, &json!(300), &json!("none")),
        "{section}"
    );

    // The example of docs/security.md, then back to the defaults.
    let (ok, _, err) = run(&[
        "routes",
        "update",
        "cli",
        "/c",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--pids-limit",
        "1024",
        "--nofile",
        "65536",
    ]);
    assert!(ok, "{err}");
    let section = read_route()["route"]["confinement"].clone();
    assert_eq!(
        (
            &section["cap_add"],
            &section["pids_limit"],
            &section["nofile"]
        ),
        (&json!(["NET_BIND_SERVICE"]), &json!(1024), &json!(65536))
    );
    let (ok, _, err) = run(&["routes", "update", "cli", "/c", "--no-confinement"]);
    assert!(ok, "{err}");
    let route = read_route();
    assert!(route["route"].get("confinement").is_none(), "{route}");

    let (ok, _, err) = run(&[
        "routes",
        "create",
        "cli",
        "/d",
        "ferrite/probe",
        "--cap-add",
        "SYS_ADMIN",
    ]);
    assert!(!ok);
    assert!(
        err.contains("confinement.cap_add entry \"SYS_ADMIN\" is refused"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
