//! Running one doc file's ```sh blocks as tests/docs.rs describes: a fresh
//! working directory, HOME and server per file, the blocks in order, and a
//! report naming the file and line of whatever did not hold.

pub mod compare;
pub mod parse;
pub mod shell;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use parse::{Block, Need, Step};
use shell::Env;

use crate::common::{self, TestServer};

/// The repository's root: doc paths are relative to it.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run every ```sh block of the doc file at `doc` (relative to the
/// repository), failing with the file and line of the first that fails.
pub fn run_file(doc: &str) {
    let text = std::fs::read_to_string(repo_root().join(doc))
        .unwrap_or_else(|e| panic!("cannot read {doc}: {e}"));
    let blocks = parse::sh_blocks(&text).unwrap_or_else(|e| panic!("{doc}: {e}"));
    for block in &blocks {
        if let Some(reason) = &block.skip {
            println!("{doc}:{}: skipped: {reason}", block.line);
        }
    }
    let blocks: Vec<&Block> = blocks.iter().filter(|b| b.skip.is_none()).collect();
    for block in &blocks {
        // The default address would reach whatever listens there, not the
        // server the harness started for the file.
        if block.body.iter().any(|l| l.contains("localhost:8080")) {
            panic!(
                "{doc}:{}: a run block names localhost:8080: use \"$API_URL\" (the CLI reads it too)",
                block.line
            );
        }
    }
    if blocks.is_empty() {
        return;
    }
    common::require_images(&["ferrite/busybox", "ferrite/hello", "ferrite/hot-hello"]);
    let mut run = FileRun::start(doc);
    let started = Instant::now();
    for block in blocks {
        run.block(block);
    }
    println!(
        "{doc}: every block ran in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    run.finish();
}

/// A server started by a `server` block, stopped when the file is done.
struct Background {
    child: Child,
    node: String,
    log: PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        shell::stop(&mut self.child);
    }
}

/// One file's run: where its blocks run and what they talk to.
struct FileRun {
    doc: String,
    /// The blocks' working directory, empty at the start.
    work: tempfile::TempDir,
    /// The blocks' HOME.
    home: tempfile::TempDir,
    /// The harness's own files (block logs), out of the blocks' sight.
    scratch: tempfile::TempDir,
    server: Option<TestServer>,
    /// Where `API_URL` points: the file's server, or the latest server a
    /// `server` block started.
    api_url: String,
    backgrounds: Vec<Background>,
    /// The server with a key that `needs="key"` blocks talk to, and its key.
    keyed: Option<(TestServer, String)>,
    /// The file's database and Redis, for `needs="postgres"` and `"redis"`.
    database: Option<String>,
    redis: Option<common::redis::RedisServer>,
    /// Owners of the Swarm services of servers that blocks started.
    owner: String,
}

impl FileRun {
    fn start(doc: &str) -> FileRun {
        let server = TestServer::start();
        FileRun {
            doc: doc.to_string(),
            work: tempfile::tempdir().expect("temp dir"),
            home: tempfile::tempdir().expect("temp dir"),
            scratch: tempfile::tempdir().expect("temp dir"),
            api_url: server.url.clone(),
            owner: format!("{}-docs", server.node_id),
            server: Some(server),
            backgrounds: Vec::new(),
            keyed: None,
            database: None,
            redis: None,
        }
    }

    /// The environment every block gets: the built `ferrite` first on PATH,
    /// a HOME of its own, `API_URL`, and no credential or server setting
    /// from the environment of the test run.
    fn env(&self) -> Env {
        let bin = Path::new(env!("CARGO_BIN_EXE_ferrite"))
            .parent()
            .expect("the binary's directory");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env: Env = vec![
            ("PATH".into(), Some(path)),
            ("HOME".into(), Some(self.home.path().display().to_string())),
            ("API_URL".into(), Some(self.api_url.clone())),
        ];
        // rustup and cargo find their toolchains under the real HOME.
        if let Ok(real_home) = std::env::var("HOME") {
            for (var, dir) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
                if std::env::var_os(var).is_none() {
                    env.push((var.into(), Some(format!("{real_home}/{dir}"))));
                }
            }
        }
        for var in [
            "JWT_AUTH_KEY",
            "JWT_AUTH_KEY_FILE",
            "FERRITE_TOKEN",
            "FERRITE_ROUTE_JWT_KEY",
            "XDG_CONFIG_HOME",
            "DB_URL",
            "DB_PASSWORD_FILE",
            "MQ_URL",
            "MQ_PASSWORD_FILE",
            "PORT",
            "FERRITE_HOST",
            "FERRITE_NODE_ID",
            "LOG_FORMAT",
            "LOG_LEVEL",
        ] {
            env.push((var.into(), None));
        }
        env
    }

    fn block(&mut self, block: &Block) {
        let mut env = self.env();
        for need in &block.needs {
            match need {
                Need::Key => env.extend(self.keyed_env()),
                Need::Postgres => {
                    let url = self
                        .database
                        .get_or_insert_with(common::postgres::fresh_database);
                    env.push(("DB_URL".into(), Some(url.clone())));
                }
                Need::Redis => {
                    let redis = self
                        .redis
                        .get_or_insert_with(common::redis::RedisServer::start_in_memory);
                    env.push(("MQ_URL".into(), Some(redis.url("docs"))));
                }
            }
        }
        let dir = match block.repo {
            true => repo_root(),
            false => self.work.path().to_path_buf(),
        };
        let log = self
            .scratch
            .path()
            .join(format!("block-{}.log", block.line));
        if let Some(url) = &block.server {
            return self.start_server(block, url.as_deref(), &dir, env, &log);
        }
        match parse::transcript(block).unwrap_or_else(|e| panic!("{}: {e}", self.doc)) {
            Some(steps) => self.transcript(block, &steps, &dir, &env, &log),
            None => self.script(block, &dir, &env, &log),
        }
    }

    /// A plain script: every command must succeed.
    fn script(&self, block: &Block, dir: &Path, env: &Env, log: &Path) {
        // The trap names the failing command; LINENO counts from the
        // block's first line, as the script is the block's lines after it.
        let script = format!(
            "set -euo pipefail; trap 'echo \"{FAILED} $LINENO: $BASH_COMMAND\" >&2' ERR\n{}",
            block.body.join("\n")
        );
        let done = shell::run(&script, dir, env, log);
        if done.status.is_some_and(|s| s.success()) {
            return;
        }
        let (at, command) = done
            .output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(FAILED))
            .and_then(|rest| rest.trim().split_once(": "))
            .and_then(|(n, c)| Some((block.line + n.parse::<usize>().ok()? - 1, c.to_string())))
            .unwrap_or((block.line, "(the block)".to_string()));
        self.fail(
            at,
            &command,
            &format!(
                "{}; it printed:\n{}",
                outcome(&done.status),
                done.output.trim_end()
            ),
        );
    }

    /// A transcript: the commands run in one bash, in order, each one's
    /// output (stderr included) compared with the lines under it.
    fn transcript(&self, block: &Block, steps: &[Step], dir: &Path, env: &Env, log: &Path) {
        let mut script = String::from("set -euo pipefail\nexec 2>&1\n");
        for (n, step) in steps.iter().enumerate() {
            script.push_str(&format!(
                "printf '\\n%s\\n' '{MARK}{n}'\n{}\n",
                step.command
            ));
        }
        script.push_str(&format!("printf '\\n%s\\n' '{MARK}end'\n"));
        let done = shell::run(&script, dir, env, log);
        let mut outputs: Vec<Vec<String>> = Vec::new();
        let mut ended = false;
        for line in done.output.lines() {
            match (line.strip_prefix(MARK), outputs.last_mut()) {
                (Some("end"), _) => ended = true,
                (Some(_), _) => outputs.push(Vec::new()),
                (None, Some(output)) => output.push(line.to_string()),
                // The first mark's leading newline.
                (None, None) => {}
            }
        }
        let succeeded = ended && done.status.is_some_and(|s| s.success());
        if outputs.is_empty() && !succeeded {
            self.fail(block.line, "(the block)", &outcome(&done.status));
        }
        for (n, (step, output)) in steps.iter().zip(&outputs).enumerate() {
            let expected = compare::significant(&step.expected);
            let actual = compare::significant(output);
            if !succeeded && n + 1 == outputs.len() {
                self.fail(
                    step.line,
                    &step.command,
                    &format!(
                        "{}; it printed:\n{}\nthe doc shows:\n{}",
                        outcome(&done.status),
                        actual.join("\n"),
                        expected.join("\n")
                    ),
                );
            }
            if !compare::matches(&expected, &actual) {
                self.fail(
                    step.line,
                    &step.command,
                    &format!(
                        "the output differs from the doc's.\nthe doc shows:\n{}\nit printed:\n{}",
                        expected.join("\n"),
                        actual.join("\n")
                    ),
                );
            }
        }
    }

    /// A `server` block: started in the background with `PORT` set to a
    /// free port (unless the block gives its own URL); later blocks'
    /// `API_URL` points at it once `/health` answers.
    fn start_server(
        &mut self,
        block: &Block,
        url: Option<&str>,
        dir: &Path,
        mut env: Env,
        log: &Path,
    ) {
        let port = common::free_port();
        let url = url.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_string);
        env.extend([
            ("PORT".into(), Some(port.to_string())),
            ("FERRITE_HOST".into(), Some("127.0.0.1".into())),
            ("FERRITE_SERVICE_OWNER".into(), Some(self.owner.clone())),
            (
                "FERRITE_SERVICE_NETWORK".into(),
                Some(common::TEST_SERVICE_NETWORK.into()),
            ),
        ]);
        let script = format!("set -euo pipefail\n{}", block.body.join("\n"));
        let mut child = shell::spawn(&script, dir, &env, log);
        let client = common::client_with_timeout(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(60);
        let node = loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.fail(
                    block.line,
                    &block.body.join("\n"),
                    &format!(
                        "the server exited ({status}) before it answered:\n{}",
                        tail(&std::fs::read_to_string(log).unwrap_or_default())
                    ),
                );
            }
            let health = client
                .get(format!("{url}/health"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .and_then(|r| r.json::<serde_json::Value>().ok());
            if let Some(node) = health.and_then(|h| h["node"].as_str().map(str::to_string)) {
                break node;
            }
            if Instant::now() > deadline {
                shell::stop(&mut child);
                self.fail(
                    block.line,
                    &block.body.join("\n"),
                    "the server did not answer /health within 60 s",
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.api_url = url;
        self.backgrounds.push(Background {
            child,
            node,
            log: log.to_path_buf(),
        });
    }

    /// The variables of a `needs="key"` block; its server starts at the
    /// first such block of the file.
    fn keyed_env(&mut self) -> Env {
        let (server, key) = self.keyed.get_or_insert_with(|| {
            let key = format!("docs-key-{}-{}", std::process::id(), common::free_port());
            let key = format!("{key}-{}", "k".repeat(32));
            (TestServer::start_with_env(&[("JWT_AUTH_KEY", &key)]), key)
        });
        vec![
            ("API_URL".into(), Some(server.url.clone())),
            ("JWT_AUTH_KEY".into(), Some(key.clone())),
            ("FERRITE_TOKEN".into(), Some(common::token(key, 600))),
        ]
    }

    /// Stop every server; then no container of any may be left.
    fn finish(mut self) {
        let mut nodes = Vec::new();
        for mut background in self.backgrounds.drain(..) {
            shell::stop(&mut background.child);
            nodes.push(background.node.clone());
        }
        for server in [
            self.server.take(),
            self.keyed.take().map(|(server, _)| server),
        ]
        .into_iter()
        .flatten()
        {
            nodes.push(server.node_id.clone());
            drop(server);
        }
        common::remove_services_of(&self.owner);
        for node in nodes {
            let left = common::node_containers(&node);
            assert!(
                left.is_empty(),
                "{}: containers of node {node} left after the file's blocks ran: {left:?}",
                self.doc
            );
        }
    }

    /// Fail the file's test, naming the place, the command and what
    /// happened, with the tail of the server's log.
    fn fail(&self, line: usize, command: &str, what: &str) -> ! {
        let log = match self.backgrounds.last() {
            Some(background) => std::fs::read_to_string(&background.log).unwrap_or_default(),
            None => self
                .server
                .as_ref()
                .map(TestServer::log)
                .unwrap_or_default(),
        };
        panic!(
            "{}:{line}: {command}\n{what}\n--- the server's log, last lines ---\n{}",
            self.doc,
            tail(&log)
        );
    }
}

/// Marks a failing command's line in a plain script's output.
const FAILED: &str = "@@ferrite-docs failed at line";
/// Separates one transcript command's output from the next.
const MARK: &str = "@@ferrite-docs command ";

fn outcome(status: &Option<std::process::ExitStatus>) -> String {
    match status {
        Some(status) => format!("it exited with {status}"),
        None => format!(
            "it ran past {} s and was stopped",
            shell::BLOCK_LIMIT.as_secs()
        ),
    }
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
