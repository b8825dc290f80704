//! Starting the real `ferrite` binary for integration tests: a free port, a
//! temporary data directory, and a wait until `/health` answers.
#![allow(dead_code)] // each test file uses a different part of this helper

pub mod browser;
pub mod call;
pub mod calls;
pub mod cli;
pub mod cluster;
pub mod containers;
pub mod dockerd;
pub mod haproxy;
pub mod load;
pub mod postgres;
pub mod postgres_private;
pub mod prometheus;
pub mod receiver;
pub mod redis;
pub mod swarm_fixture;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// A `ferrite server` process; killed when dropped.
pub struct TestServer {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    /// Stable across restarts, so a restarted server removes its own leftovers.
    pub node_id: String,
    env: Vec<(String, String)>,
    /// The address it binds (`--host`): loopback unless a test needs
    /// clients from elsewhere.
    host: String,
    /// Another node's database, when this node shares it.
    shared_db: Option<PathBuf>,
    child: Option<Child>,
}

/// The overlay network of the services of test servers.
pub const TEST_SERVICE_NETWORK: &str = "ferrite-test-services";

static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with_env(&[])
    }

    /// Start with extra environment variables (`JWT_AUTH_KEY`, ...).
    pub fn start_with_env(env: &[(&str, &str)]) -> TestServer {
        Self::start_node(None, env)
    }

    /// Start a second node on `other`'s database (SQLite shared by
    /// processes of one host, as PostgreSQL would be by hosts).
    pub fn start_sharing(other: &TestServer, env: &[(&str, &str)]) -> TestServer {
        Self::start_node(Some(other.db_path()), env)
    }

    /// Start bound to `host` (`0.0.0.0`, `::`), so that clients may come
    /// from the machine's other addresses; `url` still goes over loopback.
    pub fn start_bound(host: &str, env: &[(&str, &str)]) -> TestServer {
        Self::start_node_on(host, None, env)
    }

    fn start_node(shared_db: Option<PathBuf>, env: &[(&str, &str)]) -> TestServer {
        Self::start_node_on("127.0.0.1", shared_db, env)
    }

    fn start_node_on(host: &str, shared_db: Option<PathBuf>, env: &[(&str, &str)]) -> TestServer {
        let mut server = TestServer {
            host: host.to_string(),
            url: String::new(),
            data_dir: tempfile::tempdir().expect("temp dir"),
            node_id: format!(
                "test-{}-{}",
                std::process::id(),
                SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            shared_db,
            child: None,
        };
        server.spawn();
        server
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `DB_URL` when the test gave one (PostgreSQL), else the SQLite file.
    pub fn db_url(&self) -> String {
        match self.env.iter().find(|(k, _)| k == "DB_URL") {
            Some((_, url)) => url.clone(),
            None => format!("sqlite://{}", self.db_path().display()),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        match &self.shared_db {
            Some(db) => db.clone(),
            None => self.data_dir.path().join("data/ferrite.db"),
        }
    }

    fn spawn(&mut self) {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("server.log"))
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrite"));
        command
            .args(["server", "--host", &self.host, "--port", &port.to_string()])
            .arg("--db-url")
            .arg(self.db_url())
            .env("LOG_LEVEL", "info")
            // Servers of concurrent tests share the engine: each removes only
            // its own leftovers at start.
            .env("FERRITE_NODE_ID", &self.node_id)
            // The suite's engine is a Swarm manager: each server owns its
            // own services (adoption removes a store's orphans), on one
            // network that scripts/test.sh removes at the end.
            .env("FERRITE_SERVICE_OWNER", &self.node_id)
            .env("FERRITE_SERVICE_NETWORK", TEST_SERVICE_NETWORK)
            .env_remove("JWT_AUTH_KEY")
            .env_remove("JWT_AUTH_KEY_FILE")
            .env_remove("DB_PASSWORD_FILE")
            .env_remove("MQ_PASSWORD_FILE")
            .env_remove("PORT")
            .env_remove("DB_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().expect("spawn ferrite server"));
        self.url = format!("http://127.0.0.1:{port}");
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ferrite server exited with {status}:\n{}", self.log());
            }
            if client
                .get(format!("{}/health", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ferrite server did not become healthy:\n{}", self.log());
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// Set (or replace) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Kill the process (SIGKILL) and start it again on the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Ask the process to stop (SIGTERM) and wait for it; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        child.wait().expect("wait for server")
    }

    /// SIGKILL the process (no cleanup: `restart` later removes its leftovers).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    /// A graceful stop, so that the server removes the containers it started
    /// (a SIGKILL would leave them to its next start, which never comes),
    /// then the Swarm services its routes made and the service images it
    /// derived: they outlive a server by design (a restarted node adopts
    /// them), so the test removes them.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        remove_services_of(&self.node_id);
        remove_images_of(&self.node_id);
    }
}

/// Remove the images labelled as `owner`'s (service images a node derived),
/// waiting up to 30 s for the tasks of its removed services, which hold
/// their image until they go. Another test deriving from the same function
/// image would otherwise find this one's, labelled with this owner.
pub fn remove_images_of(owner: &str) {
    eventually(Duration::from_secs(30), || {
        for image in images_of(owner) {
            let _ = run("docker", &["rmi", "-f", &image]);
        }
        images_of(owner).is_empty()
    });
}

/// The ids of the images labelled as `owner`'s.
pub fn images_of(owner: &str) -> Vec<String> {
    let out = run(
        "docker",
        &[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=org.ferrite.owner={owner}"),
        ],
    );
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    ids.dedup();
    ids
}

/// Remove the Swarm services owned by `owner` (a test server's node id).
pub fn remove_services_of(owner: &str) {
    let listed = run(
        "docker",
        &[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=org.ferrite.owner={owner}"),
        ],
    );
    for id in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
        let _ = run("docker", &["service", "rm", id]);
    }
}

/// The `ferrite` binary as a client of `server`.
pub fn ferrite_cmd(server: &TestServer) -> Command {
    ferrite_cmd_at(&server.url)
}

/// The `ferrite` binary as a client of the server at `url`, with no
/// credential but what the test gives it (none from the environment of the
/// test run, no config file of the user running it).
pub fn ferrite_cmd_at(url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrite"));
    command
        .env("API_URL", url)
        .env("XDG_CONFIG_HOME", "/nonexistent/ferrite-test-config")
        .env_remove("JWT_AUTH_KEY")
        .env_remove("JWT_AUTH_KEY_FILE")
        .env_remove("FERRITE_TOKEN")
        .env_remove("FERRITE_ROUTE_JWT_KEY");
    command
}

/// An HTTP client for the API and for function calls: a 60 s timeout, far
/// above any call a test makes, so a hung server fails the test.
pub fn client() -> Client {
    client_with_timeout(Duration::from_secs(60))
}

pub fn client_with_timeout(timeout: Duration) -> Client {
    Client::builder().timeout(timeout).build().unwrap()
}

/// The value of one series in the node's `/metrics` (`series` is its name
/// and labels as exposed, e.g. `ferrite_calls_total{app="a",...}`), if shown.
pub fn metric_value(server: &TestServer, series: &str) -> Option<f64> {
    let text = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Run `cmd` with `input` written to its stdin, then closed; its output
/// (stdout and stderr captured).
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for the command")
}

/// Create `route` in `app` through the API (the app too, if it is new).
pub fn create_route(server: &TestServer, app: &str, route: Value) {
    let reply = client()
        .post(format!("{}/v1/apps/{app}/routes", server.url))
        .body(json!({ "route": route }).to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
}

/// Create each of `routes` in `app`, in order, as [`create_route`] does.
pub fn create_routes<const N: usize>(server: &TestServer, app: &str, routes: [Value; N]) {
    for route in routes {
        create_route(server, app, route);
    }
}

/// An HS256 token signed with `secret` that expires `expires_in` seconds from
/// now (in the past, when negative).
pub fn token(secret: &str, expires_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"exp": now + expires_in, "sub": "test"}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Ferrite's containers of `node` on the engine: (id, state, call id label).
/// The docker CLI is fine here: it only observes what Ferrite did.
pub fn node_containers(node: &str) -> Vec<(String, String, String)> {
    let output = Command::new("docker")
        .args(["ps", "-a", "--filter"])
        .arg(format!("label=org.ferrite.node={node}"))
        .args([
            "--format",
            "{{.ID}} {{.State}} {{.Label \"org.ferrite.call_id\"}}",
        ])
        .output()
        .expect("docker ps");
    assert!(
        output.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let mut next = || parts.next().unwrap_or_default().to_string();
            (next(), next(), next())
        })
        .collect()
}

/// Wait up to `within` until every container of `server`'s node is one
/// waiting for a call: running, and as many as the node says it holds ready
/// (started ahead, hot and idle): no call left one behind. Labels cannot
/// tell: a container started for a call that another container served waits
/// for the next call with that call's id in its labels.
#[track_caller]
pub fn assert_only_waiting_containers(server: &TestServer, within: Duration) {
    let waiting = || {
        let containers = node_containers(&server.node_id);
        let health: Value = match client()
            .get(format!("{}/health", server.url))
            .send()
            .and_then(|r| r.json())
        {
            Ok(health) => health,
            Err(_) => return false,
        };
        let ready = health["prestarted_containers"].as_u64().unwrap_or(0)
            + health["hot_containers_idle"].as_u64().unwrap_or(0);
        containers.iter().all(|(_, state, _)| state == "running")
            && containers.len() as u64 == ready
    };
    assert!(
        eventually(within, waiting),
        "{:?}",
        node_containers(&server.node_id)
    );
}

/// Fail loudly when the example images are missing (`scripts/images.sh`).
pub fn require_images(images: &[&str]) {
    for image in images {
        let status = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("docker image inspect");
        assert!(
            status.success(),
            "image {image} is missing: run scripts/images.sh"
        );
    }
}

/// Run `program` (the docker CLI, a script) and take its output.
pub fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Run `program`, fail the test unless it succeeds, and return its stdout
/// without the surrounding white space.
#[track_caller]
pub fn succeed(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Wait until `check` holds, for up to `timeout`.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}
