// Long: one test per CLI verb group, sharing common/cli.rs's runners; one binary for all.
//! The client commands of the real `ferrite` binary against a real server:
//! tables for people, `--json` for scripts, and one-line errors.

mod common;

use common::cli::{
    error_line, fails, field, first_column, header, ok, ok_cmd, ok_json, run, run_cmd,
    unreachable_cmd, values,
};
use common::{ferrite_cmd, ferrite_cmd_at, TestServer};
use serde_json::Value;

/// A server with the app `myapp`, and in it a route of `ferrite/hello` at
/// each of `paths`.
fn start_with_myapp(paths: &[&str]) -> TestServer {
    let server = TestServer::start();
    ok(&server, &["apps", "create", "myapp"]);
    for path in paths {
        ok(
            &server,
            &["routes", "create", "myapp", path, "ferrite/hello"],
        );
    }
    server
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// `delete` with `--json` answers a message, and `list` then has one left.
#[track_caller]
fn assert_deleted_leaving_one(server: &TestServer, delete: &[&str], list: &[&str]) {
    let answer = ok_json(server, delete);
    assert!(answer["message"].is_string(), "{answer}");
    let left = ok_json(server, list);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
}

#[test]
fn apps_in_tables() {
    let server = TestServer::start();
    assert_eq!(
        first_column(&ok(&server, &["apps", "list"])),
        Vec::<String>::new()
    );

    let out = ok(&server, &["apps", "create", "myapp", "--config", "A=1"]);
    assert_eq!(out.trim(), "App myapp created");
    ok(&server, &["apps", "create", "other"]);

    let list = ok(&server, &["apps", "list"]);
    assert_eq!(header(&list), ["NAME", "CONFIG"]);
    assert_eq!(sorted(first_column(&list)), ["myapp", "other"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("myapp"))
        .unwrap_or_default();
    assert!(row.contains("A=1"), "{list}");

    let details = ok(&server, &["apps", "inspect", "myapp"]);
    assert_eq!(field(&details, "NAME"), "myapp");
    assert_eq!(field(&details, "CONFIG"), "A=1");

    let out = ok(&server, &["apps", "update", "myapp", "--config", "B=2"]);
    assert_eq!(out.trim(), "App myapp updated");
    let details = ok(&server, &["apps", "inspect", "myapp"]);
    assert!(
        details.contains("A=1") && details.contains("B=2"),
        "{details}"
    );

    let out = ok(&server, &["apps", "delete", "other"]);
    assert_eq!(out.trim(), "App other deleted");
    assert_eq!(first_column(&ok(&server, &["apps", "list"])), ["myapp"]);
}

#[test]
fn apps_in_json() {
    let server = TestServer::start();
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));

    let app = ok_json(
        &server,
        &[
            "apps", "create", "myapp", "--config", "A=1", "--config", "B=x=y",
        ],
    );
    assert_eq!(app["name"], "myapp");
    assert_eq!(app["config"], serde_json::json!({"A": "1", "B": "x=y"}));

    let app = ok_json(&server, &["apps", "create", "bare"]);
    assert_eq!(app["config"], Value::Null);

    let apps = ok_json(&server, &["apps", "list"]);
    assert_eq!(sorted(values(&apps, "name")), ["bare", "myapp"]);

    let app = ok_json(&server, &["apps", "inspect", "myapp"]);
    assert_eq!(app["config"]["A"], "1");

    let app = ok_json(
        &server,
        &[
            "apps", "update", "myapp", "--config", "C=3", "--config", "A=",
        ],
    );
    assert_eq!(app["config"], serde_json::json!({"B": "x=y", "C": "3"}));

    assert_deleted_leaving_one(&server, &["apps", "delete", "bare"], &["apps", "list"]);
}

#[test]
fn app_config_set_and_unset() {
    let server = start_with_myapp(&[]);

    config_set_and_unset(
        &server,
        &["apps", "config"],
        &["myapp"],
        "App myapp",
        [("DB", "postgres://db/x"), ("LEVEL", "debug")],
    );
    assert_eq!(
        ok_json(&server, &["apps", "inspect", "myapp"])["config"],
        Value::Null
    );

    let err = fails(&server, &["apps", "config", "set", "myapp", "K", ""]);
    assert!(err.contains("unset"), "{err}");
}

#[test]
fn routes_in_tables() {
    let server = start_with_myapp(&[]);
    assert_eq!(
        first_column(&ok(&server, &["routes", "list", "myapp"])),
        Vec::<String>::new()
    );

    let out = ok(
        &server,
        &["routes", "create", "myapp", "/hello", "ferrite/hello"],
    );
    assert_eq!(out.trim(), "Route /hello of app myapp created");
    let out = ok(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a/b",
            "ferrite/other:1.0",
            "--memory",
            "256",
            "--type",
            "async",
            "--format",
            "http",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(out.trim(), "Route /a/b of app myapp created");

    let list = ok(&server, &["routes", "list", "myapp"]);
    assert_eq!(
        header(&list),
        ["PATH", "IMAGE", "TYPE", "FORMAT", "MEMORY", "TIMEOUT"]
    );
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("/a/b"))
        .unwrap_or_else(|| panic!("no /a/b in:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "/a/b",
            "ferrite/other:1.0",
            "async",
            "http",
            "256",
            "MiB",
            "60s"
        ]
    );
    assert_eq!(sorted(first_column(&list)), ["/a/b", "/hello"]);

    let details = ok(&server, &["routes", "inspect", "myapp", "/hello"]);
    assert_eq!(field(&details, "APP"), "myapp");
    assert_eq!(field(&details, "PATH"), "/hello");
    assert_eq!(field(&details, "IMAGE"), "ferrite/hello");
    assert_eq!(field(&details, "TYPE"), "sync");
    assert_eq!(field(&details, "FORMAT"), "default");
    assert_eq!(field(&details, "MEMORY"), "128 MiB");
    assert_eq!(field(&details, "TIMEOUT"), "30s");
    assert_eq!(field(&details, "IDLE TIMEOUT"), "30s");
    assert_eq!(field(&details, "MAX CONCURRENCY"), "1");
    assert_eq!(field(&details, "MAX RETRIES"), "0");
    assert_eq!(field(&details, "JWT KEY"), "-");

    let out = ok(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/hello",
            "--image",
            "ferrite/hello:2",
            "--memory",
            "64",
        ],
    );
    assert_eq!(out.trim(), "Route /hello of app myapp updated");
    let details = ok(&server, &["routes", "inspect", "myapp", "/hello"]);
    assert_eq!(field(&details, "IMAGE"), "ferrite/hello:2");
    assert_eq!(field(&details, "MEMORY"), "64 MiB");

    let out = ok(&server, &["routes", "delete", "myapp", "/a/b"]);
    assert_eq!(out.trim(), "Route /a/b of app myapp deleted");
    assert_eq!(
        first_column(&ok(&server, &["routes", "list", "myapp"])),
        ["/hello"]
    );
}

#[test]
fn routes_in_json() {
    let server = start_with_myapp(&[]);
    // A route's key comes from a file: a flag would land in shell history.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("route.key");
    std::fs::write(&key_file, "route-secret\n").unwrap();
    let key_file = key_file.to_str().unwrap();

    let route = ok_json(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a/b",
            "ferrite/hello",
            "--memory",
            "256",
            "--type",
            "async",
            "--format",
            "http",
            "--max-concurrency",
            "3",
            "--timeout",
            "10",
            "--idle-timeout",
            "5",
            "--max-retries",
            "2",
            "--header",
            "X-A=1",
            "--header",
            "X-A=2",
            "--header",
            "X-B=b",
            "--config",
            "K=V",
            "--jwt-key-file",
            key_file,
        ],
    );
    assert_eq!(route["app_name"], "myapp");
    assert_eq!(route["path"], "/a/b");
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["memory"], 256);
    assert_eq!(route["type"], "async");
    assert_eq!(route["format"], "http");
    assert_eq!(route["max_concurrency"], 3);
    assert_eq!(route["timeout"], 10);
    assert_eq!(route["idle_timeout"], 5);
    assert_eq!(route["max_retries"], 2);
    assert_eq!(
        route["headers"],
        serde_json::json!({"X-A": ["1", "2"], "X-B": ["b"]})
    );
    assert_eq!(route["config"], serde_json::json!({"K": "V"}));
    // Write-only: the answer says that there is a key, never what it is.
    assert_eq!(route["jwt_key_set"], true);
    assert!(!route.to_string().contains("route-secret"), "{route}");

    let route = ok_json(
        &server,
        &["routes", "create", "myapp", "plain", "ferrite/hello"],
    );
    assert_eq!(route["path"], "/plain");
    assert_eq!(route["memory"], 128);
    assert_eq!(route["type"], "sync");

    let routes = ok_json(&server, &["routes", "list", "myapp"]);
    assert_eq!(sorted(values(&routes, "path")), ["/a/b", "/plain"]);

    let route = ok_json(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["jwt_key_set"], true);
    assert!(!route.to_string().contains("route-secret"), "{route}");
    let details = ok(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(field(&details, "JWT KEY"), "set");
    assert!(!details.contains("route-secret"), "{details}");

    let route = ok_json(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/a/b",
            "--timeout",
            "20",
            "--header",
            "X-A=",
            "--config",
            "K=",
            "--config",
            "L=2",
            "--no-jwt-key",
        ],
    );
    assert_eq!(route["timeout"], 20);
    assert_eq!(route["memory"], 256);
    assert_eq!(route["headers"], serde_json::json!({"X-B": ["b"]}));
    assert_eq!(route["config"], serde_json::json!({"L": "2"}));
    assert!(route.get("jwt_key").is_none(), "{route}");
    assert!(route.get("jwt_key_set").is_none(), "{route}");
    let details = ok(&server, &["routes", "inspect", "myapp", "/a/b"]);
    assert_eq!(field(&details, "JWT KEY"), "-");

    assert_deleted_leaving_one(
        &server,
        &["routes", "delete", "myapp", "/plain"],
        &["routes", "list", "myapp"],
    );
}

#[test]
fn route_config_set_and_unset() {
    let server = start_with_myapp(&["/a/b"]);

    config_set_and_unset(
        &server,
        &["routes", "config"],
        &["myapp", "/a/b"],
        "Route /a/b of app myapp",
        [("K", "v 1"), ("L", "2")],
    );
}

/// `config set` of two keys on what `target` names (`shown` in messages),
/// then `config unset` of both: the messages, and with `--json` the config.
fn config_set_and_unset(
    server: &TestServer,
    config: &[&str],
    target: &[&str],
    shown: &str,
    [(k1, v1), (k2, v2)]: [(&str, &str); 2],
) {
    let out = ok(server, &[config, &["set"], target, &[k1, v1]].concat());
    assert_eq!(out.trim(), format!("{shown}: config {k1} set"));
    let object = ok_json(server, &[config, &["set"], target, &[k2, v2]].concat());
    assert_eq!(object["config"], serde_json::json!({ k1: v1, k2: v2 }));

    let out = ok(server, &[config, &["unset"], target, &[k1]].concat());
    assert_eq!(out.trim(), format!("{shown}: config {k1} unset"));
    let object = ok_json(server, &[config, &["unset"], target, &[k2]].concat());
    assert_eq!(object["config"], Value::Null);
}

#[test]
fn deleting_an_app_with_routes_needs_cascade() {
    let server = start_with_myapp(&["/hello"]);

    let err = fails(&server, &["apps", "delete", "myapp"]);
    assert_eq!(
        err,
        "error: 400 Bad Request: Cannot remove apps with routes (/v1/apps/myapp); delete its \
         routes first, or delete the app with them (--cascade)"
    );

    let out = ok(&server, &["apps", "delete", "myapp", "--cascade"]);
    assert_eq!(out.trim(), "App myapp deleted");
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));
}

#[test]
fn server_errors_are_one_line_with_the_servers_message() {
    let server = TestServer::start();
    for args in [
        &["apps", "inspect", "nope"][..],
        &["apps", "delete", "nope"],
        &["apps", "update", "nope", "--config", "A=1"],
        &["routes", "list", "nope"],
        &["apps", "inspect", "nope", "--json"],
    ] {
        let err = fails(&server, args);
        // IronFunctions' words, which name no app: the path asked for does.
        assert!(
            err.starts_with("error: 404 Not Found: App not found (/v1/apps/nope"),
            "{args:?}: {err}"
        );
    }

    ok(&server, &["apps", "create", "myapp"]);
    let err = fails(&server, &["apps", "create", "myapp"]);
    assert!(err.starts_with("error: 409 Conflict: "), "{err}");
    let err = fails(&server, &["routes", "inspect", "myapp", "/missing"]);
    assert!(err.starts_with("error: 404 Not Found: "), "{err}");
    let err = fails(&server, &["apps", "create", "bad name"]);
    assert_eq!(err, "error: 400 Bad Request: Invalid app name (/v1/apps)");
    let err = fails(
        &server,
        &[
            "routes",
            "create",
            "myapp",
            "/a",
            "ferrite/x",
            "--memory",
            "999999999",
        ],
    );
    assert!(err.starts_with("error: 400 Bad Request: "), "{err}");
    assert!(err.contains("memory"), "{err}");
}

#[test]
fn bad_arguments_are_one_line() {
    let server = TestServer::start();
    let err = fails(&server, &["apps", "create", "myapp", "--config", "nope"]);
    assert_eq!(err, "error: invalid --config \"nope\": expected KEY=VALUE");
    let err = fails(
        &server,
        &[
            "routes", "create", "myapp", "/a", "img", "--header", "X-A: 1",
        ],
    );
    assert_eq!(
        err,
        "error: invalid --header \"X-A: 1\": expected NAME=VALUE"
    );
    let err = fails(
        &server,
        &["routes", "update", "myapp", "/a", "--config", "=v"],
    );
    assert!(err.contains("--config"), "{err}");
    let err = fails(&server, &["routes", "update", "myapp", "/a"]);
    assert!(err.contains("nothing to update"), "{err}");
    // Nothing reached the server.
    assert_eq!(ok_json(&server, &["apps", "list"]), serde_json::json!([]));
}

#[test]
fn unreachable_server_is_one_line() {
    for args in [
        &["apps", "list"][..],
        &["routes", "list", "myapp", "--json"],
    ] {
        let (cmd, url) = unreachable_cmd();
        let err = error_line(&run_cmd(cmd, args), 1, args);
        assert!(
            err.starts_with(&format!("error: cannot reach the server at {url}: ")),
            "{err}"
        );
    }
}

#[test]
fn version_shows_client_and_server() {
    let server = TestServer::start();
    let out = ok(&server, &["version"]);
    let client = env!("CARGO_PKG_VERSION");
    assert!(out.contains(&format!("Client version: {client}")), "{out}");
    assert!(out.contains("Server version: "), "{out}");
    let versions = ok_json(&server, &["version"]);
    assert_eq!(versions["client"], client);
    assert!(versions["server"].is_string(), "{versions}");

    let (cmd, url) = unreachable_cmd();
    let out = run_cmd(cmd, &["version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Client version: {client}")
    );
    let err = error_line(&out, 1, &["version"]);
    assert!(
        err.contains(&format!("cannot reach the server at {url}")),
        "{err}"
    );
}

#[test]
fn jwt_auth() {
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "secret")]);

    // The client signs with the key in its environment, or sends no token.
    let with_key = |key: Option<&str>| {
        let mut cmd = ferrite_cmd(&server);
        match key {
            Some(key) => cmd.env("JWT_AUTH_KEY", key),
            None => cmd.env_remove("JWT_AUTH_KEY"),
        };
        cmd
    };
    ok_cmd(with_key(Some("secret")), &["apps", "create", "myapp"]);

    let stdout = ok_cmd(with_key(Some("secret")), &["apps", "list", "--json"]);
    let apps: Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(apps[0]["name"], "myapp", "{apps}");

    for key in [None, Some("wrong")] {
        let args = ["apps", "list"];
        let err = error_line(&run_cmd(with_key(key), &args), 1, &args);
        assert!(
            err.starts_with("error: 401 Unauthorized: "),
            "{key:?}: {err}"
        );
    }
}

/// `ferrite` alone, or a command group alone, shows its commands on stdout
/// (plain text, no colour codes) and exits 0, as `cargo` does.
#[test]
fn ferrite_alone_prints_the_help() {
    for (args, usage, commands) in [
        (
            &[][..],
            "Usage: ferrite <COMMAND>",
            &["server", "apps", "routes", "calls", "top", "completion"][..],
        ),
        (
            &["routes"],
            "Usage: ferrite routes <COMMAND>",
            &["list", "create", "update", "call"],
        ),
    ] {
        let out = run_cmd(ferrite_cmd_at("http://127.0.0.1:9"), args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
        assert!(stdout.contains(usage), "{stdout}");
        assert!(!stdout.contains('\x1b'), "{stdout:?}");
        for command in commands {
            assert!(
                stdout.lines().any(|l| l.trim_start().starts_with(command)),
                "{command} missing from: {stdout}"
            );
        }
    }
}

/// A shell's completion script is non-empty and names the commands and flags.
fn completion_script(shell: &str) -> String {
    let script = ok_cmd(ferrite_cmd_at("http://127.0.0.1:9"), &["completion", shell]);
    for word in ["routes", "completion", "timeout", "idle-timeout"] {
        assert!(script.contains(word), "{shell} script lacks {word}");
    }
    script
}

/// Run `shell` with `args`; it must succeed; its stdout.
fn shell_ok(shell: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(shell)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shell} (scripts/test.sh installs it): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shell} {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's completion commands, run as written in a fresh HOME, install
/// scripts that each real shell accepts and that complete `ferrite ro` to
/// `routes` (bash and fish; zsh's completion needs a terminal, so zsh only
/// checks the script's syntax).
#[test]
fn readme_completion_commands_install_working_scripts() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let install = readme
        .split("## Install")
        .nth(1)
        .and_then(|part| part.split("\n## ").next())
        .expect("README has an Install part");
    let block = install
        .split("```sh\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("ferrite completion"))
        .expect("the Install part shows the completion commands");
    let commands: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 6, "{block}");

    let home = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ferrite"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in &commands {
        let out = std::process::Command::new("bash")
            .args(["-e", "-c", command])
            .env("HOME", home.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
    }

    let installed = |rel: &str| {
        let file = home.path().join(rel);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{rel}: {e}"));
        (file.display().to_string(), text)
    };
    let (bash_file, bash) = installed(".local/share/bash-completion/completions/ferrite");
    assert_eq!(bash, completion_script("bash"));
    shell_ok("bash", &["-n", &bash_file]);
    let offered = shell_ok(
        "bash",
        &[
            "-c",
            &format!(
                "source {bash_file}; COMP_WORDS=(ferrite ro); COMP_CWORD=1; \
                 _ferrite ferrite ro ferrite; echo \"${{COMPREPLY[@]}}\"; \
                 COMP_WORDS=(ferrite routes create --idle); COMP_CWORD=3; \
                 _ferrite ferrite --idle create; echo \"${{COMPREPLY[@]}}\""
            ),
        ],
    );
    assert_eq!(offered, "routes\n--idle-timeout\n");

    let (zsh_file, zsh) = installed(".zfunc/_ferrite");
    assert_eq!(zsh, completion_script("zsh"));
    shell_ok("zsh", &["-n", &zsh_file]);

    let (fish_file, fish) = installed(".config/fish/completions/ferrite.fish");
    assert_eq!(fish, completion_script("fish"));
    shell_ok("fish", &["--no-execute", &fish_file]);
    let offered = shell_ok(
        "fish",
        &[
            "--no-config",
            "-c",
            &format!("source {fish_file}; complete --do-complete 'ferrite ro'"),
        ],
    );
    assert!(offered.starts_with("routes\t"), "{offered}");
}

/// The README's install command builds the crate at a path that exists and
/// whose binary is `ferrite`. Running `cargo install` itself takes minutes,
/// too slow for the suite.
#[test]
fn readme_install_command_names_the_ferrite_crate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo install "))
        .expect("README shows a cargo install command");
    assert_eq!(command, "cargo install --locked --path crates/ferrite");
    let manifest: toml::Table = std::fs::read_to_string(root.join("crates/ferrite/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("ferrite"));
    let bins = manifest["bin"].as_array().unwrap();
    assert_eq!(bins.len(), 1);
    assert_eq!(bins[0]["name"].as_str(), Some("ferrite"));
    // And that is the binary these tests run.
    assert!(env!("CARGO_BIN_EXE_ferrite").ends_with("/ferrite"));
}

/// Durations take units or seconds; the server stores seconds.
#[test]
fn durations_take_units() {
    let server = start_with_myapp(&[]);
    let create = |path: &str, flags: &[&str]| {
        let args = [&["routes", "create", "myapp", path, "ferrite/hello"], flags].concat();
        ok_json(&server, &args)
    };
    let route = create("/a", &["--timeout", "30s", "--idle-timeout", "2m"]);
    assert_eq!(
        (route["timeout"].as_u64(), route["idle_timeout"].as_u64()),
        (Some(30), Some(120))
    );
    let route = create("/b", &["-t", "45", "-m", "256", "-c", "A=1"]);
    assert_eq!(route["timeout"].as_u64(), Some(45));
    assert_eq!(route["memory"].as_u64(), Some(256));
    assert_eq!(route["config"]["A"], "1");
    let route = ok_json(
        &server,
        &[
            "routes",
            "update",
            "myapp",
            "/b",
            "-t",
            "1m 30s",
            "-i",
            "ferrite/echo",
        ],
    );
    assert_eq!(route["timeout"].as_u64(), Some(90));
    assert_eq!(route["image"], "ferrite/echo");
    // What the server stored, read back with the short JSON flag.
    let stored: Value =
        serde_json::from_str(&ok(&server, &["routes", "inspect", "myapp", "/a", "-j"])).unwrap();
    assert_eq!(stored["idle_timeout"].as_u64(), Some(120));
}

/// A bad duration is one line naming the flag, exit 2, and nothing is sent.
#[test]
fn bad_duration_is_one_line() {
    let server = start_with_myapp(&[]);
    for (flag, value) in [
        ("--timeout", "soon"),
        ("--idle-timeout", "1500ms"),
        ("-t", "1x"),
    ] {
        let args = [
            "routes",
            "create",
            "myapp",
            "/a",
            "ferrite/hello",
            flag,
            value,
        ];
        let err = common::cli::only_error_line(&run(&server, &args), 2, &args);
        assert!(
            err.contains("--timeout") || err.contains("--idle-timeout"),
            "{err}"
        );
        assert!(err.contains(value), "{err}");
    }
    assert_eq!(
        ok_json(&server, &["routes", "list", "myapp"]),
        serde_json::json!([])
    );
}
