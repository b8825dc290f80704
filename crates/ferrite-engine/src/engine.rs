//! The engine as the server sees it: connect, run cold and hot calls,
//! refill containers started ahead, shut down. What happens when the
//! engine goes away is [`outage`]; what happens when an image name moves
//! to another image is [`images`].

mod images;
mod outage;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Admission;
use crate::cold::{self, OutputLimits};
use crate::container::{ContainerSpec, Containers, Launch};
use crate::credentials::Credentials;
use crate::health::Health;
use crate::hot::{self, HotCall, HotPools, HotReply, HotRoute, HotStreamCall};
use crate::image::Images;
use crate::pool::{Entry, Pools, Ticket, Waited};
use crate::socket_dir::SocketDir;
use crate::{
    confine, init, ColdCall, ConnectSettings, EngineError, MemoryPermit, Outcome, RouteContainers,
    Timings,
};
use bytes::Bytes;
use ferrite_wire::HotOutcome;

/// How often the refill loop looks at demand when nothing wakes it.
const REFILL_TICK: Duration = Duration::from_millis(250);
/// The most cold containers started at once, whatever the setting asks.
const MAX_STARTS: usize = 64;

/// Everything the engine needs to know, decided once at start.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub connect: ConnectSettings,
    /// `DOCKER_AUTH`: registry credentials as a docker config document.
    pub docker_auth: Option<String>,
    /// Names this node in container labels and names.
    pub node_id: String,
    /// Memory budget for function containers, in MiB; by default 90 % of the
    /// engine host's memory.
    pub memory_budget_mib: Option<u64>,
    /// How long a call may wait for memory before a 503.
    pub admission_wait: Duration,
    /// Most containers started ahead per route.
    pub prestart_max_per_route: usize,
    /// Most cold containers being created and started at once, ahead of
    /// calls and for waiting calls together (1 to 64): the engine creates
    /// containers faster in parallel only up to a point, past which every
    /// start just gets slower.
    pub max_concurrent_starts: usize,
    pub max_response_bytes: usize,
    pub max_log_bytes: usize,
    /// Where the sockets of hot containers live, on the engine's host (and
    /// this node's); [`SocketDir::Off`] talks to them through the engine instead.
    pub hot_socket_dir: SocketDir,
}

pub struct Engine {
    host: String,
    containers: Arc<Containers>,
    admission: Arc<Admission>,
    pools: Arc<Pools>,
    /// One permit per cold container being created and started.
    starts: Arc<Semaphore>,
    hot: HotPools,
    limits: OutputLimits,
    /// Whether the engine answers; calls are refused while it does not.
    health: Health,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// The engine itself, for the starts a call leaves running when it is
    /// served by another container.
    me: Weak<Engine>,
}

/// Container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn sanitize_node(node: &str) -> String {
    let cleaned: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        cleaned
    } else {
        format!("n{cleaned}")
    }
}

impl Engine {
    /// Connect, size the memory budget, remove this node's leftovers from an
    /// earlier run, and start refilling containers started ahead.
    pub async fn start(settings: EngineSettings) -> Result<Arc<Engine>, EngineError> {
        // First: a socket directory that cannot be used stops the start.
        let node = sanitize_node(&settings.node_id);
        let socket_dir = settings.hot_socket_dir.prepare(&node)?;
        let docker = settings.connect.connect().await?;
        let host = settings.connect.host().to_string();
        let info = docker
            .info()
            .await
            .map_err(|source| EngineError::Unreachable {
                host: host.clone(),
                source,
            })?;
        let budget = match settings.memory_budget_mib {
            Some(mib) => mib,
            None => host_memory_mib(&info) * 9 / 10,
        };
        let credentials = Credentials::load(settings.docker_auth.as_deref())?;
        let tracker = TaskTracker::new();
        let confine = confine::Host {
            init_volume: init::ensure_volume(&docker, &node).await?,
            nano_cpus: info
                .ncpu
                .filter(|n| *n > 0)
                .map_or(i64::MAX, |n| n.saturating_mul(1_000_000_000)),
        };
        let containers = Arc::new(Containers::new(
            docker.clone(),
            Images::new(docker, credentials),
            node.clone(),
            tracker.clone(),
            confine,
        ));
        let removed = containers.remove_leftovers().await?;
        let hot_sockets = socket_dir
            .as_ref()
            .map_or("off (through the engine)".to_string(), |d| {
                d.path.display().to_string()
            });
        tracing::info!(
            host,
            node,
            memory_budget_mib = budget,
            leftovers_removed = removed,
            init_volume = %containers.host.init_volume,
            hot_sockets,
            "docker engine ready"
        );
        let engine = Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            host,
            containers,
            admission: Arc::new(Admission::new(budget, settings.admission_wait)),
            pools: Arc::new(Pools::new(settings.prestart_max_per_route)),
            starts: Arc::new(Semaphore::new(
                settings.max_concurrent_starts.clamp(1, MAX_STARTS),
            )),
            hot: HotPools::new(
                socket_dir,
                settings.admission_wait,
                settings.max_response_bytes,
                settings.max_log_bytes,
            ),
            limits: OutputLimits {
                max_stdout: settings.max_response_bytes,
                max_log: settings.max_log_bytes,
            },
            health: Health::new(),
            cancel: CancellationToken::new(),
            tracker,
        });
        engine.tracker.spawn(engine.clone().watch_loop());
        engine.tracker.spawn(engine.clone().image_watch_loop());
        engine.tracker.spawn(engine.clone().refill_loop());
        Ok(engine)
    }

    /// The engine's address, for messages and `/health`.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn docker(&self) -> &Docker {
        &self.containers.docker
    }

    pub fn node_id(&self) -> &str {
        &self.containers.node
    }

    pub fn memory_budget_mib(&self) -> u64 {
        self.admission.budget_mib()
    }

    pub fn memory_available_mib(&self) -> u64 {
        self.admission.available_mib()
    }

    /// Containers started ahead and waiting for a call.
    pub fn prestarted(&self) -> usize {
        self.pools.idle_count()
    }

    /// Run a cold call in a fresh container: one started ahead when the
    /// route has one ready, else the first of the route's containers that
    /// becomes ready (see `pool.rs`). `keep_warm` is how long the route
    /// keeps containers started ahead after its last call (its `idle_timeout`).
    pub async fn run_cold(
        &self,
        call: &ColdCall,
        keep_warm: Duration,
    ) -> Result<Outcome, EngineError> {
        let generation = self.ready()?;
        match self.try_cold(call, keep_warm).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(self.failed(e, generation).await),
        }
    }

    async fn try_cold(&self, call: &ColdCall, keep_warm: Duration) -> Result<Outcome, EngineError> {
        let spec = ContainerSpec {
            app: call.app.clone(),
            path: call.path.clone(),
            version: call.version,
            image: call.image.clone(),
            memory_mib: call.memory_mib,
            confinement: call.confinement.clone(),
        };
        let mut timings = Timings::default();
        let taking = Instant::now();
        let is_current = |name: &str, id: &str| self.containers.images.is_current(name, id);
        let (_in_flight, entry) = self.pools.enter(&spec, keep_warm, &is_current);
        let (started, prestarted) = match entry {
            Entry::Ready(started) => (started, true),
            Entry::Wait(mut waiting) => {
                timings.cold_start = true;
                if let Some(ticket) = waiting.own_start() {
                    self.spawn_start(ticket, Some(call.call_id.clone()), None);
                }
                let started = match waiting.wait().await {
                    Waited::Ready(started) => started,
                    Waited::Failed(e) => return Err(e),
                    Waited::Uncovered => {
                        let permit = self.admit(spec.memory_mib).await?;
                        timings.admission = taking.elapsed();
                        let resolved = self.containers.images.resolve(&spec.image).await?;
                        let _slot = self
                            .starts
                            .acquire()
                            .await
                            .map_err(|_| EngineError::ShuttingDown)?;
                        let launch = Launch::Cold {
                            call_id: Some(&call.call_id),
                        };
                        self.containers
                            .start_resolved(&spec, resolved, launch, permit)
                            .await?
                    }
                };
                if started.call_id.as_deref() != Some(call.call_id.as_str()) {
                    tracing::debug!(
                        call_id = %call.call_id, container = %started.id.get(..12).unwrap_or_default(),
                        started_for = started.call_id.as_deref().unwrap_or("(ahead of calls)"),
                        "a waiting call took the first container of its route that became ready"
                    );
                }
                (started, false)
            }
        };
        timings.container = taking.elapsed().saturating_sub(timings.admission);
        let mut outcome = cold::run(started, call, self.limits, prestarted).await?;
        outcome.timings = Timings {
            run: outcome.timings.run,
            ..timings
        };
        Ok(outcome)
    }

    /// Start the container of `ticket` in the background (labelled with
    /// `call_id` when a waiting call asked for it): memory (`permit`, or
    /// taken now, waiting in line), the image (pulled if missing), then a
    /// start slot, then the engine's create and start. Whatever happens, the
    /// ticket ends: the container goes to the pool, or the failure to the
    /// call that asked for it.
    fn spawn_start(
        &self,
        mut ticket: Ticket,
        call_id: Option<String>,
        permit: Option<MemoryPermit>,
    ) {
        let Some(engine) = self.me.upgrade() else {
            return; // shutting down: the ticket is abandoned
        };
        let generation = self.health.generation();
        self.tracker.spawn(async move {
            let spec = ticket.spec().clone();
            let prepared = async {
                let permit = match permit {
                    Some(permit) => permit,
                    None => engine.admit(spec.memory_mib).await?,
                };
                Ok::<_, EngineError>((permit, engine.containers.images.resolve(&spec.image).await?))
            };
            let (permit, resolved) = match prepared.await {
                Ok(prepared) => prepared,
                Err(e) => return engine.start_failed(ticket, e),
            };
            let Ok(_slot) = engine.starts.acquire().await else {
                return;
            };
            if !ticket.engage() {
                return; // enough containers are ready or being created
            }
            let began = Instant::now();
            let launch = Launch::Cold {
                call_id: call_id.as_deref(),
            };
            match engine
                .containers
                .start_resolved(&spec, resolved, launch, permit)
                .await
            {
                Ok(started)
                    if !engine.cancel.is_cancelled() && engine.health.up_since(generation) =>
                {
                    let is_current =
                        |name: &str, id: &str| engine.containers.images.is_current(name, id);
                    ticket.ready(started, began.elapsed(), &is_current);
                    // The engine went down as it was added: the pools
                    // must hold nothing of the engine that went away.
                    if !engine.health.up_since(generation) {
                        engine.pools.drain();
                    }
                }
                // Made by an engine that has gone away since: removed, and
                // the ticket abandoned.
                Ok(_) => {}
                Err(e) => engine.start_failed(ticket, e),
            }
        });
    }

    /// A start failed: the call that asked for it gets the error; a start
    /// nobody waits for is logged.
    fn start_failed(&self, ticket: Ticket, error: EngineError) {
        let spec = ticket.spec().clone();
        let for_a_call = ticket.for_a_call();
        if let Some(e) = ticket.failed(error) {
            if !matches!(e, EngineError::ShuttingDown) {
                tracing::warn!(app = %spec.app, path = %spec.path, image = %spec.image, error = %e, for_a_call, "cannot start a container");
            }
        }
    }

    /// Memory for a new container: at once if it fits; else idle containers
    /// started ahead make room, and the call waits its turn.
    async fn admit(&self, mib: u64) -> Result<MemoryPermit, EngineError> {
        if let Some(permit) = self.admission.try_admit(mib)? {
            return Ok(permit);
        }
        self.pools.evict_idle(mib);
        self.admission.admit(mib).await
    }

    /// Call a hot (`format: http`) route: `request` goes to one of the
    /// route's containers as HTTP/1.1, its answer comes back whole.
    pub async fn run_hot(
        &self,
        route: &HotRoute,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<HotCall, EngineError> {
        let generation = self.ready()?;
        let called = hot::call(
            &self.hot,
            &self.containers,
            route,
            request,
            timeout,
            |mib| self.admit(mib),
        )
        .await;
        match called {
            // A container that broke may have died with the engine.
            Ok(HotCall {
                outcome: HotOutcome::Broken(why),
                log,
                timings,
            }) => match self.failed(EngineError::Protocol(why), generation).await {
                EngineError::Protocol(why) => Ok(HotCall {
                    outcome: HotOutcome::Broken(why),
                    log,
                    timings,
                }),
                down => Err(down),
            },
            Ok(call) => Ok(call),
            Err(e) => Err(self.failed(e, generation).await),
        }
    }

    /// Call a hot route as [`Engine::run_hot`] does, except that a chunked
    /// answer is passed on as the function writes it, within `timeout`
    /// (the whole call) and `max_stream_bytes` (docs/streaming.md).
    pub async fn run_hot_streaming(
        &self,
        route: &HotRoute,
        request: http::Request<Bytes>,
        timeout: Duration,
        max_stream_bytes: u64,
    ) -> Result<HotStreamCall, EngineError> {
        let generation = self.ready()?;
        let called = hot::call_streaming(
            &self.hot,
            &self.containers,
            route,
            request,
            (timeout, max_stream_bytes),
            |mib| self.admit(mib),
        )
        .await;
        match called {
            // A container that broke may have died with the engine.
            Ok(HotStreamCall {
                reply: HotReply::Whole(HotOutcome::Broken(why)),
                log,
                timings,
            }) => match self.failed(EngineError::Protocol(why), generation).await {
                EngineError::Protocol(why) => Ok(HotStreamCall {
                    reply: HotReply::Whole(HotOutcome::Broken(why)),
                    log,
                    timings,
                }),
                down => Err(down),
            },
            Ok(call) => Ok(call),
            Err(e) => Err(self.failed(e, generation).await),
        }
    }

    /// Keep one container of cold `route` started ahead until `until`,
    /// whether it has calls or not (a standby for a route served elsewhere
    /// while it can be, such as a Swarm service at zero replicas). It is
    /// started from spare memory only, as any container started ahead, and
    /// goes once `until` passes without a renewal (and the route has no
    /// recent calls), or with the route.
    pub fn keep_standby(&self, route: &ferrite_model::Route, until: Instant) {
        let spec = ContainerSpec {
            app: route.app_name.clone(),
            path: route.path.clone(),
            version: route.version,
            image: route.image.clone(),
            memory_mib: route.memory,
            confinement: route.confinement(),
        };
        self.pools
            .keep_standby(&spec, Duration::from_secs(route.idle_timeout), until);
    }

    /// A route was changed or deleted: its hot containers and containers
    /// started ahead go, so no call is served with the old definition.
    pub fn forget_route(&self, app: &str, path: &str) {
        self.hot.forget(app, path);
        self.pools.forget(app, path);
    }

    /// An app was deleted or changed: the containers of all its routes go.
    pub fn forget_app(&self, app: &str) {
        self.hot.forget_app(app);
        self.pools.forget_app(app);
    }

    /// Hot containers waiting for a call.
    pub fn hot_idle(&self) -> usize {
        self.hot.idle_count()
    }

    /// This node's containers per route now: started ahead, hot and idle,
    /// hot and busy. Reads the in-memory pools only (a lock each, briefly),
    /// so it is cheap enough for every metrics scrape.
    pub fn containers(&self) -> Vec<RouteContainers> {
        let mut routes = BTreeMap::new();
        for (app, path, prestarted) in self.pools.prestarted_per_route() {
            route_entry(&mut routes, app, path).prestarted += prestarted;
        }
        for (app, path, idle, busy) in self.hot.per_route() {
            let route = route_entry(&mut routes, app, path);
            route.hot_idle += idle;
            route.hot_busy += busy;
        }
        routes.into_values().collect()
    }

    /// Keep each active route's containers started ahead at its target.
    async fn refill_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.pools.wake.notified() => {}
                () = tokio::time::sleep(REFILL_TICK) => {}
            }
            if !self.health.is_up() {
                continue;
            }
            self.hot.reap(Instant::now());
            for ticket in self.pools.plan(Instant::now()) {
                match self.admission.try_admit_spare(ticket.spec().memory_mib) {
                    Some(permit) => self.spawn_start(ticket, None, Some(permit)),
                    None => ticket.postpone(),
                }
            }
        }
    }

    /// Stop starting containers, remove those started ahead, and wait (up to
    /// `grace`) for every removal, so that nothing is left on the engine.
    pub async fn shutdown(&self, grace: Duration) {
        self.cancel.cancel();
        self.admission.close();
        self.starts.close();
        self.pools.drain();
        self.hot.drain();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "engine shutdown did not finish in time; leftovers are removed at next start"
            );
        }
        self.hot.remove_socket_dir();
    }
}

/// The containers of `(app, path)` among `routes`, counted from zero.
fn route_entry(
    routes: &mut BTreeMap<(String, String), RouteContainers>,
    app: String,
    path: String,
) -> &mut RouteContainers {
    routes
        .entry((app.clone(), path.clone()))
        .or_insert_with(|| RouteContainers {
            app,
            path,
            ..RouteContainers::default()
        })
}

/// The engine host's memory, from `GET /info`.
fn host_memory_mib(info: &bollard::models::SystemInfo) -> u64 {
    info.mem_total
        .and_then(|b| u64::try_from(b).ok())
        .unwrap_or(0)
        / (1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::sanitize_node;

    #[test]
    fn node_names_fit_container_names() {
        assert_eq!(sanitize_node("host-1.local"), "host-1.local");
        assert_eq!(sanitize_node("_x y"), "n_x-y");
    }
}
