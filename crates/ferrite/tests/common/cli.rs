//! Running the `ferrite` client commands in tests: commands that must
//! succeed (their stdout, as text or JSON), failures that must be one
//! `error:` line, and readers of the tables they print.
#![allow(dead_code)] // each test file uses a different part of this helper

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{ferrite_cmd, ferrite_cmd_at, free_port, TestServer};

/// Run `cmd` with `args` and no stdin; its output.
pub fn run_cmd(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ferrite {args:?}: {e}"))
}

/// Run `ferrite ARGS` against `server`; its output.
pub fn run(server: &TestServer, args: &[&str]) -> Output {
    run_cmd(ferrite_cmd(server), args)
}

/// Run `cmd` with `args`, which must succeed; its stdout and stderr.
pub fn ok_cmd_out(cmd: Command, args: &[&str]) -> (String, String) {
    let out = run_cmd(cmd, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ferrite {args:?} failed: {stderr}\nstdout: {stdout}"
    );
    (stdout, stderr)
}

/// Run `cmd` with `args`, which must succeed; its stdout.
pub fn ok_cmd(cmd: Command, args: &[&str]) -> String {
    ok_cmd_out(cmd, args).0
}

/// Run a command that must succeed; its stdout and stderr.
pub fn ok_out(server: &TestServer, args: &[&str]) -> (String, String) {
    ok_cmd_out(ferrite_cmd(server), args)
}

/// Run a command that must succeed; its stdout.
pub fn ok(server: &TestServer, args: &[&str]) -> String {
    ok_out(server, args).0
}

/// Run a command with `--json` that must succeed; its parsed stdout.
pub fn ok_json(server: &TestServer, args: &[&str]) -> Value {
    let args = [args, &["--json"]].concat();
    let stdout = ok(server, &args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("ferrite {args:?} printed no JSON ({e}): {stdout}"))
}

/// Check that a command exited with `code` and wrote exactly one `error:`
/// line on stderr; that line.
#[track_caller]
pub fn error_line(out: &Output, code: i32, args: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "ferrite {args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "ferrite {args:?} wrote more than one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_string()
}

/// Like [`error_line`], and nothing on stdout: the error is all it printed.
#[track_caller]
pub fn only_error_line(out: &Output, code: i32, args: &[&str]) -> String {
    assert!(
        out.stdout.is_empty(),
        "ferrite {args:?} printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    error_line(out, code, args)
}

/// Run a command that must fail with exit code 1 and one `error:` line on
/// stderr; that line.
#[track_caller]
pub fn fails(server: &TestServer, args: &[&str]) -> String {
    error_line(&run(server, args), 1, args)
}

/// The binary pointed at a port nothing listens on, and that port's URL.
pub fn unreachable_cmd() -> (Command, String) {
    let url = format!("http://127.0.0.1:{}", free_port());
    (ferrite_cmd_at(&url), url)
}

/// The words of a table's header line.
pub fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// The first column of each data row of a table (names, paths, call ids).
pub fn first_column(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `key` of each item of a JSON list (a list command's `--json`), in order.
pub fn values<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default())
        .collect()
}

/// The value of `field` in an inspect table (`FIELD  value`).
pub fn field<'a>(details: &'a str, field: &str) -> &'a str {
    details
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)
                .filter(|rest| rest.starts_with("  "))
                .map(str::trim)
        })
        .unwrap_or_else(|| panic!("no {field} in:\n{details}"))
}
