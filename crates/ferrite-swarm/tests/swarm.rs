// Long: the lifecycle and discovery tests share one Swarm fixture and its cleanup; one binary, one Swarm setup.
//! Routes as services on a real single-node Swarm: the services' lifecycle
//! (create, update keeping replicas, scale, adopt, remove) and task
//! discovery as replicas come and go.
//!
//! Needs an active Swarm on the engine (`docker swarm init --advertise-addr
//! 127.0.0.1`; the test script does it) and the `ferrite/busybox` image
//! (`scripts/images.sh`). Everything made here carries the label
//! `org.ferrite.test=1` and a per-test run label, and is removed at the end,
//! on failure too.
//!
//! Task addresses live on the overlay network and cannot be reached from the
//! host: a container on the network checks them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::models::{
    EndpointSpecModeEnum, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::InspectServiceOptions;
use ferrite_engine::ConnectSettings;
use ferrite_swarm::{
    labels, Addresses, EnsureAction, ServiceDefinition, Swarm, SwarmError, TaskWatcher,
    WatchSettings,
};
use ferrite_wire::headers::WATCHDOG_KEY_ENV;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

const PORT: u16 = 8080;
const RUN_LABEL: &str = "org.ferrite.test.run";

/// What one test made, found by its run label and removed when dropped,
/// whether the test passed or panicked.
struct Cleanup {
    run: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={RUN_LABEL}={}", self.run);
        let services = docker(&["service", "ls", "-q", "--filter", &filter]);
        for id in services.split_whitespace() {
            docker(&["service", "rm", id]);
        }
        // A network cannot go while the removed services' tasks still hold
        // addresses on it, nor the image while their containers exist; Swarm
        // stops and removes them in the background.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker(&["ps", "-aq", "--filter", &filter])
            .trim()
            .is_empty()
        {
            if Instant::now() > deadline {
                eprintln!("task containers of run {} are still there", self.run);
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        loop {
            let networks = docker(&["network", "ls", "-q", "--filter", &filter]);
            if networks.trim().is_empty() {
                break;
            }
            for id in networks.split_whitespace() {
                docker(&["network", "rm", id]);
            }
            if Instant::now() > deadline {
                eprintln!("could not remove networks {networks:?} of run {}", self.run);
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        docker(&["image", "rm", "-f", &self.image]);
    }
}

/// Run the docker CLI (test set-up and clean-up only); its stdout.
fn docker(args: &[&str]) -> String {
    match Command::new("docker").args(args).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => {
            eprintln!("docker {args:?}: {e}");
            String::new()
        }
    }
}

/// One test's Swarm, names and clean-up.
struct Env {
    swarm: Swarm,
    /// Unique per test run: names and labels start with it.
    run: String,
    network: String,
    image: String,
    _cleanup: Cleanup,
}

impl Env {
    async fn new(test: &str) -> Env {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run = format!("ft{test}{}x{:x}", std::process::id(), nanos & 0xfffff);
        let image = format!("ferrite-test-httpd:{run}");
        let cleanup = Cleanup {
            run: run.clone(),
            image: image.clone(),
        };
        let swarm = Swarm::connect(&ConnectSettings::default())
            .await
            .expect("cannot connect to the Docker engine");
        if let Err(e) = swarm.check_manager().await {
            panic!(
                "these tests need an active Swarm manager: {e}\n\
                 run `docker swarm init --advertise-addr 127.0.0.1` (scripts/test.sh does)"
            );
        }
        build_image(&image);
        let network = format!("{run}-net");
        let id = swarm
            .ensure_network(&network, &test_labels(&run))
            .await
            .expect("create the overlay network");
        assert!(!id.is_empty());
        Env {
            swarm,
            run,
            network,
            image,
            _cleanup: cleanup,
        }
    }

    /// A route's service: busybox's httpd serving on PORT.
    fn definition(&self, path: &str) -> ServiceDefinition {
        ServiceDefinition {
            owner: self.run.clone(),
            app: format!("{}-app", self.run),
            path: path.to_string(),
            image: self.image.clone(),
            port: PORT,
            memory_mib: 64,
            replicas: 1,
            env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
            labels: test_labels(&self.run),
            constraints: vec!["node.role==manager".to_string()],
            network: self.network.clone(),
            confinement: ferrite_model::Confinement::resolve(None, 64),
        }
    }
}

fn test_labels(run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("org.ferrite.test".to_string(), "1".to_string()),
        (RUN_LABEL.to_string(), run.to_string()),
    ])
}

/// A long-running HTTP server image made from the local busybox image
/// (nothing is pulled): busybox's httpd in the foreground.
fn build_image(tag: &str) {
    let dockerfile = format!(
        "FROM ferrite/busybox\nLABEL org.ferrite.test=1\nEXPOSE {PORT}\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"{PORT}\", \"-h\", \"/tmp\"]\n"
    );
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run docker build");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(dockerfile.as_bytes())
            .expect("write Dockerfile");
    }
    let status = child.wait().expect("docker build");
    assert!(
        status.success(),
        "cannot build {tag} FROM ferrite/busybox: run scripts/images.sh first"
    );
}

async fn inspect(swarm: &Swarm, name: &str) -> bollard::models::Service {
    swarm
        .docker()
        .inspect_service(name, None::<InspectServiceOptions>)
        .await
        .expect("inspect service")
}

fn version(service: &bollard::models::Service) -> u64 {
    service.version.as_ref().and_then(|v| v.index).unwrap_or(0)
}

fn replicas(service: &bollard::models::Service) -> i64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_service_follows_its_route_definition() {
    let env = Env::new("lc").await;
    let swarm = &env.swarm;
    let mut def = env.definition("/hello/World");
    let name = def.service_name();

    // Created with everything the route asks for.
    let created = swarm.ensure(&def).await.expect("create");
    assert_eq!(created.action, EnsureAction::Created);
    assert_eq!(created.name, name);
    assert_eq!(created.replicas, 1);
    let service = inspect(swarm, &name).await;
    let spec = service.spec.clone().expect("spec");
    let service_labels = spec.labels.clone().expect("labels");
    assert_eq!(service_labels[labels::OWNER], env.run);
    assert_eq!(service_labels[labels::APP], def.app);
    assert_eq!(service_labels[labels::PATH], "/hello/World");
    assert_eq!(service_labels[labels::SPEC], def.spec_hash());
    assert_eq!(service_labels[labels::PORT], PORT.to_string());
    assert_eq!(service_labels["org.ferrite.test"], "1");
    let task = spec.task_template.clone().expect("task template");
    let container = task.container_spec.clone().expect("container spec");
    let container_labels = container.labels.expect("container labels");
    assert_eq!(container_labels[labels::OWNER], env.run);
    assert_eq!(container_labels[labels::PATH], "/hello/World");
    assert_eq!(container_labels[labels::KIND], "service");
    // The function's environment, and the watchdog's key made for it.
    let key_var = format!("{WATCHDOG_KEY_ENV}={}", created.key.expose());
    assert_eq!(
        container.env.clone().expect("env"),
        vec!["GREETING=hi".to_string(), key_var.clone()]
    );
    assert_eq!(container.init, Some(true));
    // Confined as the route's containers are.
    assert_eq!(container.capability_drop, Some(vec!["ALL".to_string()]));
    assert_ne!(container.read_only, Some(true));
    assert_eq!(container.mounts, None);
    let nofile = &container.ulimits.clone().expect("ulimits")[0];
    assert_eq!((nofile.soft, nofile.hard), (Some(1024), Some(1024)));
    assert_eq!(
        task.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref()?.pids),
        Some(256)
    );
    assert_eq!(
        task.log_driver.as_ref().and_then(|l| l.name.as_deref()),
        Some("json-file")
    );
    let resources = task.resources.expect("resources");
    assert_eq!(
        resources.limits.and_then(|l| l.memory_bytes),
        Some(64 << 20)
    );
    assert_eq!(
        resources.reservations.and_then(|r| r.memory_bytes),
        Some(64 << 20)
    );
    assert_eq!(
        task.placement.and_then(|p| p.constraints),
        Some(vec!["node.role==manager".to_string()])
    );
    let restart = task.restart_policy.expect("restart policy");
    assert_eq!(
        restart.condition,
        Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE)
    );
    assert!(restart.delay.unwrap_or(0) > 0 && restart.max_attempts.unwrap_or(0) > 0);
    let attached = task.networks.expect("networks");
    let network_id = swarm
        .ensure_network(&env.network, &test_labels(&env.run))
        .await
        .expect("network again");
    assert_eq!(attached.len(), 1);
    assert!(
        attached[0].target.as_deref() == Some(network_id.as_str())
            || attached[0].target.as_deref() == Some(env.network.as_str()),
        "{attached:?}"
    );
    let update = spec.update_config.expect("update config");
    assert_eq!(
        update.order,
        Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
    );
    assert_eq!(update.parallelism, Some(1));
    assert_eq!(
        update.failure_action,
        Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
    );
    assert!(spec.rollback_config.is_some());
    assert_eq!(
        spec.endpoint_spec.and_then(|e| e.mode),
        Some(EndpointSpecModeEnum::DNSRR)
    );
    // Swarm's allocator fills in the service's endpoint just after the
    // create, which bumps the version once: compare versions after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut service = service;
    while service.endpoint.is_none() {
        assert!(
            Instant::now() < deadline,
            "the endpoint was never allocated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        service = inspect(swarm, &name).await;
    }
    let v1 = version(&service);

    // The same definition again: nothing to do, nothing sent.
    let again = swarm.ensure(&def).await.expect("ensure unchanged");
    assert_eq!(again.action, EnsureAction::Unchanged);
    assert_eq!(version(&inspect(swarm, &name).await), v1);

    // The autoscaler scales; scaling to the same count sends nothing.
    swarm.scale(&name, 2).await.expect("scale to 2");
    let scaled = inspect(swarm, &name).await;
    assert_eq!(replicas(&scaled), 2);
    let v2 = version(&scaled);
    assert!(v2 > v1);
    swarm.scale(&name, 2).await.expect("scale to 2 again");
    assert_eq!(version(&inspect(swarm, &name).await), v2);

    // A changed definition: a rolling update that keeps the replicas.
    def.env.insert("GREETING".into(), "hello".into());
    def.replicas = 5; // only for creation: must not win over the autoscaler's 2
    let updated = swarm.ensure(&def).await.expect("update");
    assert_eq!(updated.action, EnsureAction::Updated);
    assert_eq!(updated.replicas, 2);
    assert_eq!(updated.key, created.key, "the key survives the update");
    let service = inspect(swarm, &name).await;
    assert_eq!(replicas(&service), 2);
    assert!(version(&service) > v2);
    let spec = service.spec.expect("spec");
    assert_eq!(spec.labels.expect("labels")[labels::SPEC], def.spec_hash());
    let env_after = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.env);
    assert_eq!(
        env_after,
        Some(vec!["GREETING=hello".to_string(), key_var.clone()])
    );
    assert_eq!(
        swarm.service_key(&name).await.expect("key"),
        Some(created.key.clone())
    );

    // After a restart the server finds it by its owner, with what it needs.
    let owned = swarm.list_owned(&env.run).await.expect("list owned");
    assert_eq!(owned.len(), 1, "{owned:?}");
    let found = &owned[0];
    assert_eq!(found.name, name);
    assert_eq!(found.app, def.app);
    assert_eq!(found.path, "/hello/World");
    assert_eq!(found.spec_hash, def.spec_hash());
    assert_eq!(found.port, Some(PORT));
    assert_eq!(found.replicas, 2);
    assert_eq!(found.image, env.image);
    // The updater sets the state shortly after the update was accepted.
    assert!(
        matches!(
            found.update_state.as_deref(),
            None | Some("updating" | "completed")
        ),
        "{found:?}"
    );
    assert!(swarm
        .list_owned("somebody-else")
        .await
        .expect("list other owner")
        .iter()
        .all(|s| s.name != name));

    // Removed, once.
    swarm.scale(&name, 0).await.expect("scale to 0");
    assert!(swarm.remove(&name).await.expect("remove"));
    assert!(!swarm.remove(&name).await.expect("remove again"));
    assert!(swarm.list_owned(&env.run).await.expect("list").is_empty());
    assert!(matches!(
        swarm.scale(&name, 1).await,
        Err(SwarmError::NotFound(_))
    ));

    // A service of that name that the owner did not make is never touched.
    let foreign = env.definition("/foreign");
    let foreign_name = foreign.service_name();
    let run_label = format!("{RUN_LABEL}={}", env.run);
    docker(&[
        "service",
        "create",
        "-q",
        "--detach",
        "--name",
        &foreign_name,
        "--label",
        "org.ferrite.test=1",
        "--label",
        &run_label,
        "--replicas",
        "0",
        &env.image,
    ]);
    assert!(
        matches!(
            swarm.ensure(&foreign).await,
            Err(SwarmError::NotOwned { found: None, .. })
        ),
        "a service without the owner label must be refused"
    );
    assert!(swarm.list_owned(&env.run).await.expect("list").is_empty());

    // A network that cannot carry services is refused, not reused.
    assert!(matches!(
        swarm.ensure_network("bridge", &BTreeMap::new()).await,
        Err(SwarmError::NetworkNotOverlay { .. })
    ));
}

/// A task watcher on the env's network, with the owner of its tasks; they
/// stop at [`Watching::stop`], or when a failed test drops it.
struct Watching {
    watcher: TaskWatcher,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _stop: DropGuard,
}

impl Watching {
    fn start(env: &Env, settings: WatchSettings) -> Watching {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let watcher = TaskWatcher::start(
            env.swarm.clone(),
            env.network.clone(),
            settings,
            cancel.clone(),
            &tracker,
        );
        Watching {
            watcher,
            _stop: cancel.clone().drop_guard(),
            cancel,
            tracker,
        }
    }

    /// Cancel the watcher's tasks and wait until they are done.
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Wait until the addresses satisfy `done`; how long it took.
async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<Addresses>,
    what: &str,
    done: impl Fn(&Addresses) -> bool,
) -> Duration {
    let start = Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(120), rx.wait_for(|a| done(a)))
        .await
        .map(|r| r.map(|_| ()));
    match waited {
        Ok(Ok(())) => start.elapsed(),
        Ok(Err(_)) => panic!("the watcher stopped while waiting for {what}"),
        Err(_) => panic!(
            "{what}: not within 120 s (addresses now {:?})",
            *rx.borrow()
        ),
    }
}

#[tokio::test]
async fn task_addresses_follow_the_replicas() {
    let env = Env::new("tk").await;
    let swarm = &env.swarm;
    let watching = Watching::start(&env, WatchSettings::default());
    let watcher = &watching.watcher;
    let def = env.definition("/tasks");
    let name = def.service_name();

    let started = Instant::now();
    swarm.ensure(&def).await.expect("create");
    let mut rx = watcher.watch(&name, PORT);
    let first = wait_for(&mut rx, "a first task address", |a| a.len() == 1).await;
    eprintln!(
        "create -> first task running with an address: {} ms (ensure {} ms)",
        started.elapsed().as_millis(),
        (started.elapsed() - first).as_millis()
    );
    let one = watcher.addresses(&name);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].port(), PORT);
    let tasks = swarm
        .running_tasks(&name, &env.network)
        .await
        .expect("running tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].ip, one[0].ip());
    assert_eq!(tasks[0].state, "running");
    assert_eq!(tasks[0].desired_state, "running");
    assert!(matches!(tasks[0].ip, IpAddr::V4(ip) if ip.is_private()));

    let scaling = Instant::now();
    swarm.scale(&name, 2).await.expect("scale to 2");
    watcher.changed(&name);
    wait_for(&mut rx, "a second task address", |a| a.len() == 2).await;
    eprintln!(
        "scale 1 -> 2: second address present after {} ms",
        scaling.elapsed().as_millis()
    );
    let two = watcher.addresses(&name);
    assert!(two.contains(&one[0]), "the first task stays: {two:?}");
    assert_eq!(
        swarm
            .running_tasks(&name, &env.network)
            .await
            .expect("running tasks")
            .len(),
        2
    );
    // Both addresses answer HTTP, seen from a container on the network.
    for addr in two.iter() {
        assert_reachable(&env, *addr);
    }

    let scaling = Instant::now();
    swarm.scale(&name, 1).await.expect("scale to 1");
    watcher.changed(&name);
    wait_for(&mut rx, "one address after scaling down", |a| a.len() == 1).await;
    eprintln!(
        "scale 2 -> 1: one address left after {} ms",
        scaling.elapsed().as_millis()
    );
    let left = watcher.addresses(&name);
    assert!(two.contains(&left[0]));

    // A changed definition replaces the task start-first: the new task runs
    // before the old one stops, so the route never has no address.
    let mut changed = def.clone();
    changed.env.insert("GREETING".into(), "hello".into());
    let mut seen = watcher.subscribe(&name).expect("watched");
    let rolling = Instant::now();
    swarm.ensure(&changed).await.expect("update");
    watcher.changed(&name);
    let old = left[0];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = seen.borrow_and_update().clone();
        assert!(!now.is_empty(), "no address during a start-first update");
        if now.len() == 1 && now[0] != old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update did not finish: {now:?}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), seen.changed()).await;
    }
    eprintln!(
        "rolling update: new task's address replaced the old one after {} ms",
        rolling.elapsed().as_millis()
    );

    assert!(swarm.remove(&name).await.expect("remove"));
    wait_for(&mut rx, "no address after removal", |a| a.is_empty()).await;
    assert!(matches!(
        swarm.running_tasks(&name, &env.network).await,
        Err(SwarmError::NotFound(_))
    ));
    watching.stop().await;
}

/// An HTTP answer from `addr`, asked by a throwaway container on the
/// service's network (the host is not on the overlay network).
fn assert_reachable(env: &Env, addr: std::net::SocketAddr) {
    let script = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} {}",
        addr.ip(),
        addr.port()
    );
    let output = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--label",
            "org.ferrite.test=1",
            "--network",
            &env.network,
            "ferrite/busybox",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("docker run");
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(
        answer.starts_with("HTTP/1."),
        "no HTTP answer from {addr}: {answer:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// With polling slowed to an hour, the engine's events alone must make the
/// watcher look (fast) again: a scale nobody told the watcher about still
/// shows up.
#[tokio::test]
async fn engine_events_wake_the_watcher() {
    let env = Env::new("ev").await;
    let swarm = &env.swarm;
    let watching = Watching::start(
        &env,
        WatchSettings {
            poll: Duration::from_secs(3600),
            ..WatchSettings::default()
        },
    );
    let watcher = &watching.watcher;
    let def = env.definition("/events");
    let name = def.service_name();
    swarm.ensure(&def).await.expect("create");
    let mut rx = watcher.watch(&name, PORT);
    wait_for(&mut rx, "a first task address", |a| a.len() == 1).await;
    // Settled: back to hourly polling.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !watcher.is_settled(&name) {
        assert!(Instant::now() < deadline, "the service did not settle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(WatchSettings::default().fast_at_least).await;

    // Scaled behind the watcher's back (another node's autoscaler, say).
    swarm.scale(&name, 2).await.expect("scale to 2");
    let waited = wait_for(&mut rx, "the second address, from events", |a| a.len() == 2).await;
    eprintln!(
        "scale seen through events alone after {} ms",
        waited.as_millis()
    );
    watching.stop().await;
}
