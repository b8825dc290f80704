//! Ferrite as a container (ferrite/ferrite) next to Swarm services on the
//! machine's real Swarm: an attachable overlay network, because task
//! addresses are reachable only from inside it, one or more Ferrite nodes on
//! it, and the service images of example functions (those Ferrite derives
//! itself carry the fixture's owner label). Everything made is
//! labelled and removed when the fixture is dropped, whatever happened.
//!
//! Ferrite in a container is not on the host's loopback: the management API
//! needs a token, signed with the key the fixture gives its nodes.

use std::cell::RefCell;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{client, eventually, free_port, run, succeed};

/// Everything a test makes, removed whatever happens.
pub struct Fixture {
    /// The installation the services belong to (their `org.ferrite.owner`).
    pub owner: String,
    pub network: String,
    /// The first Ferrite container's name; other containers are named after it.
    pub container: String,
    pub images: Vec<String>,
    /// Ferrite's JWT_AUTH_KEY: management calls carry a token signed with it.
    pub key: String,
    /// The Ferrite containers started: their logs are shown when the test
    /// fails, their data volumes removed with them.
    nodes: RefCell<Vec<String>>,
    /// Other containers made (probes, a database on the network).
    pub probes: RefCell<Vec<String>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for node in self.nodes.borrow().iter() {
            if std::thread::panicking() {
                let logs = run("docker", &["logs", "--tail", "60", node]);
                eprintln!(
                    "{node}'s log:\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            // Stopped first, so that the node removes the containers it
            // started (a standby of a route at zero, say); any it could not
            // are removed after it.
            let _ = run("docker", &["stop", "-t", "20", node]);
            let _ = run("docker", &["rm", "-f", node]);
            let _ = run("docker", &["volume", "rm", "-f", node]);
            let label = format!("label=org.ferrite.node={node}");
            let left = run("docker", &["ps", "-aq", "--filter", &label]);
            for id in String::from_utf8_lossy(&left.stdout).split_whitespace() {
                let _ = run("docker", &["rm", "-f", id]);
            }
        }
        for probe in self.probes.borrow().iter() {
            let _ = run("docker", &["rm", "-f", "-v", probe]);
        }
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
        super::remove_images_of(&self.owner);
        for image in &self.images {
            let _ = run("docker", &["rmi", "-f", image]);
        }
    }
}

impl Fixture {
    /// A fixture for test `name`, with images `images` (made by the test).
    pub fn new(name: &str, images: &[&str]) -> Fixture {
        let id = format!("{name}-{}", std::process::id());
        Fixture {
            owner: format!("test-{id}"),
            network: format!("ferrite-test-{id}"),
            container: format!("ferrite-test-{id}"),
            images: images.iter().map(|i| format!("{i}:{id}")).collect(),
            key: format!("key-{id}-{}", free_port()),
            nodes: RefCell::default(),
            probes: RefCell::default(),
        }
    }

    /// Service images of example functions, by the CLI: `sources[i]` makes
    /// `self.images[i]`.
    pub fn build_images(&self, sources: &[&str]) {
        for (source, image) in sources.iter().zip(&self.images) {
            super::succeed(
                env!("CARGO_BIN_EXE_ferrite"),
                &["services", "image", source, "-t", image],
            );
        }
    }

    /// The overlay network, then one Ferrite on it (its own SQLite store).
    pub fn start(&self) -> Ferrite {
        self.create_network();
        self.start_node(&self.container, &[])
    }

    /// The overlay network the tasks and the Ferrite nodes join.
    pub fn create_network(&self) {
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
                &self.network,
            ],
        );
    }

    /// A Ferrite container named `name` on the network, with `env` on top of
    /// the fixture's settings; its URL once it answers.
    pub fn start_node(&self, name: &str, env: &[(&str, &str)]) -> Ferrite {
        self.start_node_mounting(name, env, &[])
    }

    /// [`Fixture::start_node`], with host files mounted read-only
    /// (`(host path, container path)`): a secret given as a file.
    pub fn start_node_mounting(
        &self,
        name: &str,
        env: &[(&str, &str)],
        mounts: &[(&str, &str)],
    ) -> Ferrite {
        let port = free_port();
        self.nodes.borrow_mut().push(name.to_string());
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            name,
            "--label",
            "org.ferrite.test=1",
            "--network",
            &self.network,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
            &format!("{name}:/var/lib/ferrite"),
            "-e",
            &format!("FERRITE_NODE_ID={name}"),
            "-e",
            &format!("FERRITE_SERVICE_OWNER={}", self.owner),
            "-e",
            &format!("FERRITE_SERVICE_NETWORK={}", self.network),
            "-e",
            "JWT_AUTH_KEY",
            // Short enough to watch scale-down in a test.
            "-e",
            "FERRITE_AUTOSCALE_WINDOW=6s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (key, value) in env {
            args.extend(["-e".to_string(), format!("{key}={value}")]);
        }
        for (host, inside) in mounts {
            args.extend(["-v".to_string(), format!("{host}:{inside}:ro")]);
        }
        args.push(server_image());
        // The key reaches the container from this command's environment,
        // not from its arguments.
        let out = Command::new("docker")
            .env("JWT_AUTH_KEY", &self.key)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ferrite = Ferrite {
            url: format!("http://127.0.0.1:{port}"),
            key: self.key.clone(),
        };
        assert!(
            eventually(Duration::from_secs(30), || ferrite.answers()),
            "{name} did not answer"
        );
        ferrite
    }

    /// Starts ferrite/postgres on the network; its DB_URL for the nodes once
    /// it takes connections over the network.
    pub fn start_postgres(&self) -> String {
        let password = format!("pw-{}", free_port());
        let env = format!("POSTGRES_PASSWORD={password}");
        // Only the final server listens on TCP: the one that initialises the
        // cluster is on the Unix socket alone.
        let ready = [
            "pg_isready",
            "--quiet",
            "--host=127.0.0.1",
            "--username=postgres",
        ];
        let name = self.start_probe("db", &["-e", &env, "ferrite/postgres"], &ready);
        format!("postgres://postgres:{password}@{name}:5432/postgres")
    }

    /// Starts ferrite/redis (no password: nothing else is on the network,
    /// and nothing kept on disk); its MQ_URL for the nodes once it answers.
    pub fn start_redis(&self) -> String {
        let run_args = ["ferrite/redis", "--appendonly", "no"];
        let name = self.start_probe("redis", &run_args, &["docker-entrypoint.sh", "ping"]);
        format!("redis://{name}:6379/ferrite")
    }

    /// Starts a container `<fixture>-<suffix>` on the network (`run_args`:
    /// options, the image and its arguments), removed with the fixture; its
    /// name once `ready` succeeds inside it (within 60 s).
    fn start_probe(&self, suffix: &str, run_args: &[&str], ready: &[&str]) -> String {
        let name = format!("{}-{suffix}", self.container);
        self.probes.borrow_mut().push(name.clone());
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "org.ferrite.test=1",
            "--network",
            &self.network,
        ];
        args.extend_from_slice(run_args);
        succeed("docker", &args);
        let mut exec = vec!["exec", name.as_str()];
        exec.extend_from_slice(ready);
        let started = eventually(Duration::from_secs(60), || {
            run("docker", &exec).status.success()
        });
        assert!(started, "{name} did not start");
        name
    }

    /// The ids of the service images the fixture's Ferrite derived (they
    /// carry its owner label).
    pub fn derived_images(&self) -> Vec<String> {
        super::images_of(&self.owner)
    }

    /// The owner's services as Swarm lists them: (name, replicas asked).
    pub fn services(&self) -> Vec<(String, u64)> {
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
}

/// The image of the Ferrite under test: `ferrite/ferrite` (scripts/test.sh
/// builds it from the tree), or FERRITE_TEST_SERVER_IMAGE, so that a
/// branch's own build can be tried beside the shared image.
fn server_image() -> String {
    std::env::var("FERRITE_TEST_SERVER_IMAGE").unwrap_or_else(|_| "ferrite/ferrite".to_string())
}

/// A Ferrite container: its URL and the key its tokens are signed with.
#[derive(Clone)]
pub struct Ferrite {
    pub url: String,
    pub key: String,
}

impl Ferrite {
    /// Whether it answers `/version`.
    pub fn answers(&self) -> bool {
        client()
            .get(format!("{}/version", self.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
    }

    /// A management request with a token: (status, JSON answer).
    pub fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(super::token(&self.key, 600));
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

    /// A call of route `path` of app `svc` (no token: calls are open).
    pub fn call(&self, path: &str, body: &str) -> (u16, String, Duration) {
        let began = Instant::now();
        let reply = client()
            .post(format!("{}/r/svc{path}", self.url))
            .body(body.to_string())
            .send()
            .unwrap();
        let status = reply.status().as_u16();
        (status, reply.text().unwrap(), began.elapsed())
    }

    /// `GET /v1/services`' entry of route `path` (Null when this node does
    /// not manage it).
    pub fn service_view(&self, path: &str) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, "/v1/services", None);
        assert_eq!(status, 200, "{body}");
        body["services"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["path"] == path).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn create_route(&self, route: Value) {
        let (status, body) = self.api(
            reqwest::Method::POST,
            "/v1/apps/svc/routes",
            Some(json!({ "route": route })),
        );
        assert_eq!(status, 200, "{body}");
    }
}
