//! Hot functions (`format: http`): containers that stay up and serve one
//! HTTP/1.1 request at a time over the function's stdin and stdout.
//!
//! Per route and node, a pool of up to `max_concurrency` containers: a call
//! takes an idle one, or starts one when every container is busy and the
//! route may have more, or waits in line. A container that dies, breaks the
//! HTTP framing or passes the call's timeout is removed (the call gets
//! 502/504) and the next call starts a fresh one. Idle containers stop after
//! the route's `idle_timeout`. A route whose definition changes gets a new
//! pool at once; the old pool's containers are removed when their calls end.
//! So is a container made from an image that the route's image name no
//! longer names (rebuilt, pulled anew): [`HotPools::retire_image`].
//!
//! A call's answer is read whole ([`call`]), or, for a sync call, passed on
//! as it comes when the function answers chunked ([`call_streaming`],
//! [`stream`]): the container is the call's ([`Lease`]) until its answer is
//! over, whichever way.
//!
//! Transport: where the engine is local, the init bridges the function's
//! stdio to a unix socket in a host directory mounted into the container,
//! and the node talks to it directly; otherwise (a remote engine), through
//! the engine's attach stream. A container whose socket cannot be reached
//! is replaced by one over the attach stream, for that call only; the node
//! gives up sockets only after [`SOCKET_FAILURES_BEFORE_OFF`] such failures
//! in a row (the directory is then not shared with the engine at all).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrite_model::Confinement;
use ferrite_wire::stdio_http::{self, Framing, HotOutcome};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::attach_io::AttachIo;
use crate::call_log::{LogCapture, PendingLog};
use crate::container::{ContainerSpec, Containers, Launch, Removal, Started};
use crate::socket_dir::Prepared;
use crate::{EngineError, MemoryPermit, Timings};

mod stream;

pub use stream::{HotBody, StreamCut, StreamEnd, StreamEnded};

/// How long a started container may take to open its socket.
const SOCKET_WAIT: Duration = Duration::from_secs(5);
/// Failed socket connects in a row, with no success in between, after which
/// the node uses the attach stream for every hot container: one failure is
/// that container's, this many is the directory's.
const SOCKET_FAILURES_BEFORE_OFF: usize = 3;

/// A hot route as the engine needs it; any change of these fields makes a
/// new pool (image, memory, confinement and environment are fixed at
/// container start). Each version of a route has a pool of its own, so two
/// versions sharing the route's calls keep their containers warm side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct HotRoute {
    pub app: String,
    pub path: String,
    /// The route's version these containers run.
    pub version: u32,
    pub image: String,
    pub memory_mib: u64,
    pub confinement: Confinement,
    /// The container's environment: config and the route's contract values.
    pub env: Vec<(String, String)>,
    pub max_concurrency: usize,
    pub idle_timeout: Duration,
}

impl HotRoute {
    /// The hot route of a stored `route`, its containers started with `env`
    /// (ferrite-model's `contract` makes it).
    pub fn of(route: &ferrite_model::Route, env: Vec<(String, String)>) -> HotRoute {
        HotRoute {
            app: route.app_name.clone(),
            path: route.path.clone(),
            version: route.version,
            image: route.image.clone(),
            memory_mib: route.memory,
            confinement: route.confinement(),
            env,
            max_concurrency: usize::try_from(route.max_concurrency).unwrap_or(usize::MAX),
            idle_timeout: Duration::from_secs(route.idle_timeout),
        }
    }

    /// What its containers are made from.
    fn spec(&self) -> ContainerSpec {
        ContainerSpec {
            app: self.app.clone(),
            path: self.path.clone(),
            version: self.version,
            image: self.image.clone(),
            memory_mib: self.memory_mib,
            confinement: self.confinement.clone(),
        }
    }
}

/// A hot call's result, with its stderr to come. Any outcome but a
/// response removes the container.
#[derive(Debug)]
pub struct HotCall {
    pub outcome: HotOutcome,
    pub log: PendingLog,
    /// How long its phases took.
    pub timings: Timings,
}

/// What a hot call gave when its answer may stream.
// One per call, moved twice on its way to the caller: boxing would cost an
// allocation per call for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum HotReply {
    /// Read whole (an answer with `Content-Length`), or failed.
    Whole(HotOutcome),
    /// A chunked answer: its head now, its body as the function writes it.
    /// The container serves this call until `ended` says the body is over.
    Streaming {
        response: http::Response<HotBody>,
        ended: StreamEnded,
    },
}

/// A hot call whose answer may stream, with its stderr to come (complete
/// once the answer is over).
#[derive(Debug)]
pub struct HotStreamCall {
    pub reply: HotReply,
    pub log: PendingLog,
    /// How long its phases took; `run` ends with the answer's head.
    pub timings: Timings,
}

struct Hot {
    id: String,
    /// The image it was made from.
    image_id: String,
    sender: stdio_http::Sender,
    last_used: Instant,
    log: LogCapture,
    _removal: Removal,
}

impl Drop for Hot {
    fn drop(&mut self) {
        self.log.close();
    }
}

struct Pool {
    route: HotRoute,
    /// One permit per call in flight: at most `max_concurrency`, so a new
    /// container is started only when every live one is busy.
    calls: Arc<Semaphore>,
    idle: Mutex<Vec<Hot>>,
    /// Containers serving a call now, for the node's metrics (one atomic
    /// per route, touched twice per call).
    busy: AtomicUsize,
    /// Set when the route changed: containers are not given back to it.
    retired: AtomicBool,
}

impl Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Hot>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A hot pool's route: app, path and version.
type PoolKey = (String, String, u32);

pub struct HotPools {
    /// By app, path and version.
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    /// Where sockets of hot containers live on the engine's host; `None`
    /// (remote engine, or the directory turned out not to be shared) means
    /// through the attach stream.
    socket_dir: Option<PathBuf>,
    /// Keeps a private socket directory until shutdown removes it.
    prepared: Mutex<Option<Prepared>>,
    /// Failed socket connects since the last one that worked.
    socket_failures: AtomicUsize,
    wait_limit: Duration,
    max_response_bytes: usize,
    max_log_bytes: usize,
}

impl HotPools {
    pub fn new(
        socket_dir: Option<Prepared>,
        wait_limit: Duration,
        max_response_bytes: usize,
        max_log_bytes: usize,
    ) -> HotPools {
        HotPools {
            pools: Mutex::new(HashMap::new()),
            socket_failures: AtomicUsize::new(0),
            socket_dir: socket_dir.as_ref().map(|p| p.path.clone()),
            prepared: Mutex::new(socket_dir),
            wait_limit,
            max_response_bytes,
            max_log_bytes,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Arc<Pool>>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool of `route`, new if the route changed.
    fn pool(&self, route: &HotRoute) -> Arc<Pool> {
        let mut pools = self.map();
        let key = (route.app.clone(), route.path.clone(), route.version);
        if let Some(pool) = pools.get(&key).filter(|p| p.route == *route) {
            return pool.clone();
        }
        let pool = Arc::new(Pool {
            route: route.clone(),
            calls: Arc::new(Semaphore::new(route.max_concurrency.max(1))),
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        });
        if let Some(old) = pools.insert(key, pool.clone()) {
            retire(&old);
        }
        pool
    }

    /// Drop a route's containers, of every version (the route was changed
    /// or deleted).
    pub fn forget(&self, app: &str, path: &str) {
        let mut pools = self.map();
        let gone: Vec<PoolKey> = pools
            .keys()
            .filter(|(a, p, _)| a == app && p == path)
            .cloned()
            .collect();
        let retired: Vec<Arc<Pool>> = gone.iter().filter_map(|key| pools.remove(key)).collect();
        drop(pools);
        retired.iter().for_each(|p| retire(p));
    }

    /// Drop the containers of every route of an app (deleted, or changed on
    /// another node).
    pub fn forget_app(&self, app: &str) {
        let mut pools = self.map();
        let gone: Vec<PoolKey> = pools.keys().filter(|(a, _, _)| a == app).cloned().collect();
        let retired: Vec<Arc<Pool>> = gone.iter().filter_map(|key| pools.remove(key)).collect();
        drop(pools);
        retired.iter().for_each(|p| retire(p));
    }

    /// `name` names image `id` now: idle containers of routes on `name` made
    /// from another image go; busy ones go when their call ends (see
    /// [`call`]). Returns how many idle ones went.
    pub fn retire_image(&self, name: &str, id: &str) -> usize {
        let name = crate::image::normalize(name);
        let mut retired = Vec::new();
        for pool in self.map().values() {
            if crate::image::normalize(&pool.route.image) != name {
                continue;
            }
            let mut idle = pool.idle();
            let (keep, old): (Vec<Hot>, Vec<Hot>) = idle.drain(..).partition(|h| h.image_id == id);
            *idle = keep;
            retired.extend(old);
        }
        let count = retired.len();
        drop(retired);
        count
    }

    /// The image names of the hot routes with a pool here.
    pub fn image_names(&self) -> Vec<String> {
        self.map().values().map(|p| p.route.image.clone()).collect()
    }

    /// Stop idle containers past their route's `idle_timeout`.
    pub fn reap(&self, now: Instant) {
        let mut expired = Vec::new();
        let mut pools = self.map();
        pools.retain(|_, pool| {
            let mut idle = pool.idle();
            let keep = pool.route.idle_timeout;
            let (old, fresh): (Vec<Hot>, Vec<Hot>) = idle
                .drain(..)
                .partition(|h| now.duration_since(h.last_used) > keep);
            expired.extend(old);
            *idle = fresh;
            // An empty pool with no call in flight can go.
            !idle.is_empty() || pool.calls.available_permits() < pool.route.max_concurrency.max(1)
        });
        drop(pools);
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "stopped idle hot containers");
        }
    }

    /// Hot containers per route: `(app, path, idle, busy)`, a route once per
    /// version with a pool. A route that changed counts its new pool only
    /// (the old one's containers go when their calls end).
    pub fn per_route(&self) -> Vec<(String, String, usize, usize)> {
        self.map()
            .iter()
            .map(|((app, path, _), pool)| {
                let busy = pool.busy.load(Ordering::Relaxed);
                (app.clone(), path.clone(), pool.idle().len(), busy)
            })
            .collect()
    }

    /// Hot containers waiting for a call.
    pub fn idle_count(&self) -> usize {
        self.map().values().map(|p| p.idle().len()).sum()
    }

    /// Remove this node's private socket directory (a configured one stays).
    pub fn remove_socket_dir(&self) {
        drop(
            self.prepared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
    }

    pub fn drain(&self) {
        let pools: Vec<_> = self.map().drain().map(|(_, p)| p).collect();
        pools.iter().for_each(|p| retire(p));
    }
}

fn retire(pool: &Pool) {
    pool.retired.store(true, Ordering::SeqCst);
    let idle: Vec<Hot> = pool.idle().drain(..).collect();
    drop(idle);
}

/// Call a hot route and read its answer whole (at most the node's
/// response cap). `memory` admits a new container when one is needed.
pub async fn call<F, Fut>(
    pools: &HotPools,
    containers: &Containers,
    route: &HotRoute,
    request: http::Request<Bytes>,
    timeout: Duration,
    admit: F,
) -> Result<HotCall, EngineError>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Result<MemoryPermit, EngineError>>,
{
    let (mut lease, log, mut timings) = take(pools, containers, route, admit).await?;
    let running = Instant::now();
    let outcome = tokio::time::timeout(
        timeout,
        stdio_http::exchange(&mut lease.hot.sender, request, pools.max_response_bytes),
    )
    .await
    .unwrap_or(HotOutcome::TimedOut);
    timings.run = running.elapsed();
    let reusable = matches!(outcome, HotOutcome::Response(_))
        && containers
            .images
            .is_current(&route.image, &lease.hot.image_id);
    lease.end(reusable);
    Ok(HotCall {
        outcome,
        log,
        timings,
    })
}

/// Call a hot route, passing a chunked answer on as the function writes it
/// (at most `max_stream_bytes`); an answer with `Content-Length` is read
/// whole, as [`call`] does. The route's `timeout` bounds the whole call,
/// the streamed body included.
pub async fn call_streaming<F, Fut>(
    pools: &HotPools,
    containers: &Containers,
    route: &HotRoute,
    request: http::Request<Bytes>,
    (timeout, max_stream_bytes): (Duration, u64),
    admit: F,
) -> Result<HotStreamCall, EngineError>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Result<MemoryPermit, EngineError>>,
{
    let (mut lease, log, mut timings) = take(pools, containers, route, admit).await?;
    let running = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let head =
        tokio::time::timeout_at(deadline, stdio_http::send(&mut lease.hot.sender, request)).await;
    let whole = |lease: Lease, outcome: HotOutcome| {
        let reusable = matches!(outcome, HotOutcome::Response(_))
            && containers
                .images
                .is_current(&route.image, &lease.hot.image_id);
        lease.end(reusable);
        HotReply::Whole(outcome)
    };
    let reply = match head {
        Err(_elapsed) => whole(lease, HotOutcome::TimedOut),
        Ok(Err(broken)) => whole(lease, broken.into()),
        Ok(Ok(head)) if head.framing == Framing::Sized => {
            let outcome = tokio::time::timeout_at(
                deadline,
                stdio_http::collect(head.response, pools.max_response_bytes),
            )
            .await
            .unwrap_or(HotOutcome::TimedOut);
            whole(lease, outcome)
        }
        Ok(Ok(head)) => {
            let (parts, body) = head.response.into_parts();
            let (body, ended) = HotBody::new(body, lease, deadline, max_stream_bytes);
            HotReply::Streaming {
                response: http::Response::from_parts(parts, body),
                ended,
            }
        }
    };
    timings.run = running.elapsed();
    Ok(HotStreamCall {
        reply,
        log,
        timings,
    })
}

/// Take an idle container of `route`, or start one, within the route's
/// slots: the call's [`Lease`], its log to come, and how long that took.
async fn take<F, Fut>(
    pools: &HotPools,
    containers: &Containers,
    route: &HotRoute,
    admit: F,
) -> Result<(Lease, PendingLog, Timings), EngineError>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Result<MemoryPermit, EngineError>>,
{
    let pool = pools.pool(route);
    let mut timings = Timings::default();
    let waiting = Instant::now();
    let permit = tokio::time::timeout(pools.wait_limit, pool.calls.clone().acquire_owned())
        .await
        .map_err(|_| EngineError::Busy {
            containers: route.max_concurrency,
            waited_ms: u64::try_from(pools.wait_limit.as_millis()).unwrap_or(u64::MAX),
        })?
        .map_err(|_| EngineError::ShuttingDown)?;
    timings.admission = waiting.elapsed();
    let taking = Instant::now();
    // A container of an image the name no longer names is not used (the
    // image watcher removes it too; this covers the moment in between).
    let taken = loop {
        let Some(hot) = pool.idle().pop() else {
            break None;
        };
        if containers.images.is_current(&route.image, &hot.image_id) {
            break Some(hot);
        }
        tracing::debug!(container = %hot.id, "hot container of a replaced image removed");
    };
    let hot = match taken {
        Some(hot) => hot,
        None => {
            let memory = admit(route.memory_mib).await?;
            timings.admission += taking.elapsed();
            timings.cold_start = true;
            let starting = Instant::now();
            let hot = start(pools, containers, route, memory).await?;
            timings.container = starting.elapsed();
            hot
        }
    };
    if !timings.cold_start {
        timings.container = taking.elapsed();
    }
    let busy = Busy::enter(&pool);
    let (log_id, log) = hot.log.begin();
    let lease = Lease {
        pool,
        hot,
        log_id,
        _busy: busy,
        permit,
    };
    Ok((lease, log, timings))
}

/// A container serving one call: it holds a slot of its route (and counts
/// busy) until the call's answer is whole. Dropped before that (the call
/// failed, timed out or was abandoned), its container is removed: it may
/// have half an answer left in its pipe.
struct Lease {
    pool: Arc<Pool>,
    hot: Hot,
    /// The call's log capture on the container.
    log_id: u64,
    _busy: Busy,
    permit: OwnedSemaphorePermit,
}

impl Lease {
    /// The call is over: the container goes back to its pool when
    /// `reusable` (its answer came whole) and its route and connection are
    /// still what they were; else it is removed.
    fn end(self, reusable: bool) {
        let Lease {
            pool,
            mut hot,
            log_id,
            _busy,
            permit,
        } = self;
        if reusable && !pool.retired.load(Ordering::SeqCst) && !hot.sender.is_closed() {
            // Its stderr may come a moment after the answer.
            hot.log.settle(log_id);
            hot.last_used = Instant::now();
            pool.idle().push(hot);
        } else {
            // Its removal closes the call's log (no timer: this may run in
            // a body dropped by a connection going away).
            tracing::debug!(container = %hot.id, "hot container removed after its call");
            drop(hot);
        }
        // The slot is free only once the container is back (or gone).
        drop(permit);
    }
}

/// A container counted busy until dropped (also when the call's future is
/// dropped mid-call).
struct Busy(Arc<Pool>);

impl Busy {
    fn enter(pool: &Arc<Pool>) -> Busy {
        pool.busy.fetch_add(1, Ordering::Relaxed);
        Busy(pool.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Start a hot container and open its HTTP connection: over its socket
/// when the node uses sockets; when that socket cannot be reached, over the
/// attach stream of a replacement.
async fn start(
    pools: &HotPools,
    containers: &Containers,
    route: &HotRoute,
    memory: MemoryPermit,
) -> Result<Hot, EngineError> {
    let over_socket = pools.socket_dir.is_some()
        && pools.socket_failures.load(Ordering::SeqCst) < SOCKET_FAILURES_BEFORE_OFF;
    let (memory, error) = match start_over(pools, containers, route, memory, over_socket).await? {
        Ok(hot) => {
            if over_socket {
                pools.socket_failures.store(0, Ordering::SeqCst);
            }
            return Ok(hot);
        }
        Err(failed) => failed,
    };
    let failures = pools.socket_failures.fetch_add(1, Ordering::SeqCst) + 1;
    if failures >= SOCKET_FAILURES_BEFORE_OFF {
        tracing::warn!(failures, error = %error, "hot function sockets failed repeatedly: every hot container goes over the engine's attach stream from now on");
    } else {
        tracing::warn!(app = %route.app, path = %route.path, error = %error, "hot function socket not reachable: a replacement container goes over the engine's attach stream");
    }
    start_over(pools, containers, route, memory, false)
        .await?
        .map_err(|(_, e)| EngineError::Protocol(format!("hot function: {e}")))
}

/// Start a hot container over its socket or the attach stream. A socket
/// that cannot be reached is `Ok(Err(..))`, with the container's memory
/// for its replacement (the container itself is being removed).
async fn start_over(
    pools: &HotPools,
    containers: &Containers,
    route: &HotRoute,
    memory: MemoryPermit,
    over_socket: bool,
) -> Result<Result<Hot, (MemoryPermit, std::io::Error)>, EngineError> {
    let socket_parent = pools.socket_dir.as_deref().filter(|_| over_socket);
    let launch = Launch::Hot {
        env: &route.env,
        socket_parent,
    };
    let Started {
        id,
        io,
        mut removal,
        socket,
        image_id,
        ..
    } = containers.start(&route.spec(), launch, memory).await?;
    let log = LogCapture::new(pools.max_log_bytes, &route.app, &route.path);
    let stderr = log.clone();
    let write = move |bytes: &[u8]| stderr.write(bytes);
    let sender = match &socket {
        Some(socket) => {
            // stderr (and any stdout the init writes) comes on the attach stream.
            let mut output = io.output;
            containers.tracker.spawn(async move {
                while let Some(Ok(item)) = output.next().await {
                    write(&item.into_bytes());
                }
            });
            let stream = match connect(socket).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(container = %id, socket = %socket.display(), error = %e, "hot function socket not reachable");
                    return match removal.take_permit() {
                        Some(memory) => Ok(Err((memory, e))),
                        None => Err(EngineError::Protocol(format!("hot function socket: {e}"))),
                    };
                }
            };
            stdio_http::handshake(stream, &containers.tracker).await?
        }
        None => {
            stdio_http::handshake(
                AttachIo::new(io.output, io.input, Box::new(write)),
                &containers.tracker,
            )
            .await?
        }
    };
    tracing::debug!(container = %id, app = %route.app, path = %route.path, over_socket = socket.is_some(), "hot container started");
    Ok(Ok(Hot {
        id,
        image_id,
        sender,
        last_used: Instant::now(),
        log,
        _removal: removal,
    }))
}

async fn connect(socket: &Path) -> std::io::Result<tokio::net::UnixStream> {
    let deadline = Instant::now() + SOCKET_WAIT;
    loop {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}
