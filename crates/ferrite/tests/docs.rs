//! Every command in every doc file (README.md and docs/*.md) is run here,
//! so the docs cannot rot. One test per file, so a failure names the file;
//! `every_doc_file_has_a_test` fails when a doc file has none.
//!
//! The rules (also in the project's conventions for docs):
//!
//! - A fenced block tagged ```sh holds commands a user types. The ```sh
//!   blocks of a file run in the file's order, each by `bash` with
//!   `set -euo pipefail`, in ONE fresh empty working directory per file (a
//!   later block sees the files an earlier one made; shell variables do not
//!   carry over), with the built `ferrite` first on `PATH`, `HOME` a temp
//!   dir, and `API_URL` pointing at a fresh server the harness started for
//!   the file (SQLite, embedded queue, the local engine, no key, loopback).
//!   Credentials and server settings of the test run's own environment are
//!   removed. The example images (scripts/images.sh) are on the engine.
//!   A run block may not name `localhost:8080`: it uses `$API_URL`.
//! - A line starting with `$ ` is a command; the lines up to the next `$ `
//!   line (or the block's end) are its expected output, stdout and stderr
//!   together. Lines are compared trimmed, blank lines ignored; a line
//!   `...` matches any number of lines; `[..]` inside a line matches any
//!   text. Continuation lines of a command end in `\`. A block without `$ `
//!   lines is a plain script: each command must exit 0.
//! - Every fence names its language: output alone is ```text, JSON is
//!   ```json, and so on; those are not run. An untagged fence, or commands
//!   tagged bash/shell/console, fail the file's test.
//! - ```sh skip="reason" is not run; the reason names the test that covers
//!   the same thing. Skipped blocks are printed. Keep them rare.
//!
//! Extensions of this harness (attributes after `sh`, space separated):
//!
//! - `server`: the block starts a server that keeps running (its command
//!   is `ferrite server ...` in the foreground, as a user runs it in a
//!   terminal of its own). The harness runs it in the background with `PORT`
//!   set to a free port and `FERRITE_HOST=127.0.0.1`, waits until its
//!   `/health` answers (60 s at most), and points the `API_URL` of the later
//!   blocks at it. It is stopped with SIGTERM when the file is done.
//!   `server="http://127.0.0.1:8081"`: the block picks its own address
//!   (`ferrite server --port 8081`, for several nodes on one host); the
//!   harness waits for that one instead.
//! - `needs="key"`: the block talks to a server with a management key:
//!   `API_URL` points at it, `JWT_AUTH_KEY` holds the key, `FERRITE_TOKEN` a
//!   token signed with it (valid 10 minutes).
//! - `needs="postgres"`: `DB_URL` holds the URL of the file's PostgreSQL
//!   database, fresh and empty at its first block (the test suite's
//!   throwaway cluster, scripts/postgres.sh); every such block of the file
//!   gets the same one.
//! - `needs="redis"`: `MQ_URL` holds a queue URL of the file's own
//!   `redis-server` (Debian's package, as scripts/test.sh installs it).
//!   Several may be given: `needs="postgres,redis"`.
//! - `repo`: the block runs in the repository's root instead of the file's
//!   working directory, for commands a user runs in a checkout
//!   (`scripts/images.sh`).
//!
//! Each block may run 180 s at most. After the file, every server is
//! stopped and no container of any of them may be left on the engine.

mod common;
mod doc_runner;

/// One test per doc file, and the list of the files they cover.
macro_rules! doc_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                doc_runner::run_file($file);
            }
        )*

        const DOC_FILES: &[&str] = &[$($file),*];
    };
}

doc_tests! {
    readme => "README.md",
    api => "docs/api.md",
    architecture => "docs/architecture.md",
    async_calls => "docs/async-calls.md",
    benchmarks => "docs/benchmarks.md",
    cold_calls => "docs/cold-calls.md",
    compatibility => "docs/compatibility.md",
    dashboard => "docs/dashboard.md",
    examples => "docs/examples.md",
    function_format => "docs/function-format.md",
    functions => "docs/functions.md",
    func_yaml => "docs/func-yaml.md",
    images => "docs/images.md",
    init_protocol => "docs/init-protocol.md",
    keys => "docs/keys.md",
    openfaas => "docs/openfaas.md",
    operating => "docs/operating.md",
    postgres => "docs/postgres.md",
    schedules => "docs/schedules.md",
    security => "docs/security.md",
    services => "docs/services.md",
    streaming => "docs/streaming.md",
    versions => "docs/versions.md",
    watchdog => "docs/watchdog.md",
}

/// A doc file added without a test here would never be run: name it above.
#[test]
fn every_doc_file_has_a_test() {
    let docs = doc_runner::repo_root().join("docs");
    let mut found: Vec<String> = std::fs::read_dir(&docs)
        .expect("the docs folder")
        .map(|entry| entry.expect("a docs entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    found.push("README.md".to_string());
    found.sort();
    let mut tested: Vec<String> = DOC_FILES.iter().map(|f| f.to_string()).collect();
    tested.sort();
    assert_eq!(
        found, tested,
        "every doc file needs a line in tests/docs.rs's doc_tests! list"
    );
}
