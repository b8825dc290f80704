//! Cold containers per route: the ones started ahead of their calls, the
//! calls waiting for one, and the starts under way.
//!
//! A call takes a container that is ready, if any. Otherwise it waits for
//! the first container of its route that becomes ready, whichever start
//! made it: one started ahead, its own, or another waiting call's. It asks
//! for a start of its own only when the starts under way do not already
//! cover every call waiting before it. A container that becomes ready with
//! no call waiting joins the route's idle containers, up to the target, and
//! is removed beyond it.
//!
//! The target is sized from recent demand: enough to cover the calls that
//! arrive while a replacement starts (arrival rate × start time) plus the
//! recent peak of concurrent calls, capped per route, and none once the
//! route has been idle for its `idle_timeout`. Containers made from an image
//! that the route's image name no longer names (it was rebuilt or pulled
//! anew) are never handed out: [`Pools::retire_image`] removes the idle
//! ones when the engine says so, and a start that ends with one removes it.
//!
//! The pool holds no engine: it is generic over what it holds ([`Pooled`]),
//! so that its logic is tested without Docker.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use crate::container::{ContainerSpec, Started};
use crate::image::normalize;
use crate::EngineError;

/// How far back demand is measured.
const WINDOW: Duration = Duration::from_secs(10);
/// After a failed start, wait this long before starting ahead for that route again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What the pool holds: a started container.
pub trait Pooled: Send + 'static {
    /// The image it was made from (its id).
    fn image_id(&self) -> &str;
}

impl Pooled for Started {
    fn image_id(&self) -> &str {
        &self.image_id
    }
}

/// Whether an image name (first argument) still names an image id (second):
/// the engine's [`Images::is_current`](crate::image::Images::is_current).
pub type IsCurrent<'a> = &'a dyn Fn(&str, &str) -> bool;

/// A route's version: each serving version has a pool of its own.
type RouteKey = (String, String, u32);

fn key(spec: &ContainerSpec) -> RouteKey {
    (spec.app.clone(), spec.path.clone(), spec.version)
}

struct Ready<C> {
    started: C,
    since: Instant,
}

/// A call waiting for the first container of its route that becomes ready.
/// Dropping the sender without sending tells the call that no start under
/// way is left for it: it starts one itself.
struct Waiter<C> {
    id: u64,
    tx: oneshot::Sender<Result<C, EngineError>>,
}

struct RoutePool<C> {
    /// Tells this pool from a later one of the same route (after
    /// [`Pools::forget`]): tickets and waiters of this one leave that one alone.
    epoch: u64,
    spec: ContainerSpec,
    idle: VecDeque<Ready<C>>,
    /// Calls waiting for a container, first come, first served.
    waiters: VecDeque<Waiter<C>>,
    /// Starts asked for and not ended: ahead of calls and for waiting
    /// calls, waiting for a start slot or under way. Never fewer than
    /// `waiters`, so that every waiting call has a start coming.
    starting: usize,
    /// Of `starting`, those past their start slot (being created).
    engaged: usize,
    in_flight: usize,
    last_call: Instant,
    keep_warm: Duration,
    arrivals: VecDeque<Instant>,
    /// Highest `in_flight` seen, and when, to decay it after `WINDOW`.
    peak: (usize, Instant),
    retry_at: Option<Instant>,
    /// Keep one container ready until then whatever the demand: a standby
    /// for a route whose calls are otherwise served elsewhere (a Swarm
    /// service at zero replicas), asked for again while it is wanted.
    standby_until: Option<Instant>,
}

impl<C> RoutePool<C> {
    fn new(epoch: u64, spec: ContainerSpec, now: Instant, keep_warm: Duration) -> RoutePool<C> {
        RoutePool {
            epoch,
            spec,
            idle: VecDeque::new(),
            waiters: VecDeque::new(),
            starting: 0,
            engaged: 0,
            in_flight: 0,
            last_call: now,
            keep_warm,
            arrivals: VecDeque::new(),
            peak: (0, now),
            retry_at: None,
            standby_until: None,
        }
    }

    /// Containers this route should have ready ahead of its calls right now.
    fn target(&self, now: Instant, start_time: Duration, cap: usize) -> usize {
        let standby = usize::from(self.standby_until.is_some_and(|until| now < until));
        if now.duration_since(self.last_call) > self.keep_warm {
            return standby.min(cap);
        }
        let rate = self.arrivals.len() as f64 / WINDOW.as_secs_f64();
        let covering = (rate * start_time.as_secs_f64()).ceil() as usize;
        let peak = if now.duration_since(self.peak.1) <= WINDOW {
            self.peak.0
        } else {
            self.in_flight
        };
        (covering + peak.max(1)).min(cap)
    }

    /// Give `started` to the first call still waiting; back when none is.
    fn hand_over(&mut self, mut started: C) -> Option<C> {
        while let Some(waiter) = self.waiters.pop_front() {
            match waiter.tx.send(Ok(started)) {
                Ok(()) => return None,
                // That call has just gone: the next one.
                Err(Ok(back)) => started = back,
                Err(Err(_)) => return None,
            }
        }
        Some(started)
    }

    /// A start ended without a container for anyone: the calls waiting last
    /// that no start covers any more are told so, and start their own.
    fn uncover(&mut self) {
        while self.starting < self.waiters.len() {
            self.waiters.pop_back();
        }
    }
}

/// Decrements the route's in-flight count when the call ends.
pub struct InFlight<C: Pooled = Started> {
    pools: Arc<Pools<C>>,
    key: RouteKey,
}

impl<C: Pooled> Drop for InFlight<C> {
    /// The call is over: time to start its replacement. Not earlier: starting
    /// a container is the engine's heaviest work, and doing it while the call
    /// runs slows the call down.
    fn drop(&mut self) {
        let mut routes = self.pools.lock();
        if let Some(pool) = routes.get_mut(&self.key) {
            pool.in_flight = pool.in_flight.saturating_sub(1);
        }
        drop(routes);
        self.pools.wake.notify_one();
    }
}

/// What a call found when it came.
// A started container is large, but an entry lives only until the call
// unpacks it: boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Entry<C: Pooled = Started> {
    /// A container ready for it.
    Ready(C),
    /// None: it waits for the first one of its route that becomes ready.
    Wait(Waiting<C>),
}

/// A call waiting for a container. Dropped (the client went away), it
/// leaves the line; a container started for it goes to the next call.
pub struct Waiting<C: Pooled = Started> {
    rx: oneshot::Receiver<Result<C, EngineError>>,
    /// The start this call asks for itself, when the starts under way do
    /// not cover it.
    own: Option<Ticket<C>>,
    _place: Place<C>,
}

/// How a wait ended.
pub enum Waited<C> {
    /// The first container of the route that became ready.
    Ready(C),
    /// The call's own start failed (it carries the call's error: no image,
    /// no memory in time, ...).
    Failed(EngineError),
    /// No start under way is left for this call (one failed or made a
    /// container that cannot be used, the route was changed, the engine went
    /// away): it starts its own and waits for it alone.
    Uncovered,
}

impl<C: Pooled> Waiting<C> {
    /// The start this call must make itself (labelled with its call id),
    /// if the starts under way do not cover it. Once.
    pub fn own_start(&mut self) -> Option<Ticket<C>> {
        self.own.take()
    }

    /// Wait for a container.
    pub async fn wait(mut self) -> Waited<C> {
        match (&mut self.rx).await {
            Ok(Ok(started)) => Waited::Ready(started),
            Ok(Err(e)) => Waited::Failed(e),
            Err(_) => Waited::Uncovered,
        }
    }
}

/// Takes a waiting call out of its route's line when it goes.
struct Place<C: Pooled> {
    pools: Arc<Pools<C>>,
    key: RouteKey,
    epoch: u64,
    id: u64,
}

impl<C: Pooled> Drop for Place<C> {
    fn drop(&mut self) {
        let mut routes = self.pools.lock();
        let left = routes
            .get_mut(&self.key)
            .filter(|pool| pool.epoch == self.epoch)
            .and_then(|pool| {
                let at = pool.waiters.iter().position(|w| w.id == self.id)?;
                pool.waiters.remove(at)
            });
        drop(routes);
        drop(left);
    }
}

/// One start of a container for a route, counted in the route's `starting`
/// from the moment it is asked for until it ends: ready, failed, or
/// abandoned (dropped without either, also when its task is cancelled).
pub struct Ticket<C: Pooled = Started> {
    pools: Arc<Pools<C>>,
    spec: ContainerSpec,
    epoch: u64,
    /// The waiting call that asked for it, told if it fails.
    owner: Option<u64>,
    /// Past its start slot: counted in the route's `engaged`.
    engaged: bool,
    ended: bool,
}

/// How a start ended.
enum End {
    Ready,
    Failed,
    /// No memory to spare for a start ahead: try again later.
    Postponed,
    Abandoned,
}

impl<C: Pooled> Ticket<C> {
    /// What to start.
    pub fn spec(&self) -> &ContainerSpec {
        &self.spec
    }

    /// Whether this start is for a waiting call of its own (else it is a
    /// start ahead of calls).
    pub fn for_a_call(&self) -> bool {
        self.owner.is_some()
    }

    /// The start has its slot: whether its container is still wanted (calls
    /// waiting plus the target exceed the containers ready and being
    /// created). Not wanted, the ticket is abandoned when dropped.
    pub fn engage(&mut self) -> bool {
        let start_time = self.pools.start_time();
        let mut routes = self.pools.lock();
        let Some(pool) = routes
            .get_mut(&key(&self.spec))
            .filter(|pool| pool.epoch == self.epoch)
        else {
            return false;
        };
        let target = pool.target(Instant::now(), start_time, self.pools.max_per_route);
        if pool.waiters.len() + target > pool.idle.len() + pool.engaged {
            pool.engaged += 1;
            self.engaged = true;
        }
        self.engaged
    }

    /// The container is ready, `took` after its start slot: to the first
    /// waiting call, else idle up to the route's target, else removed. One
    /// that cannot serve the route (its definition changed, or its image is
    /// no longer the one the route's image name names) is removed.
    pub fn ready(mut self, started: C, took: Duration, is_current: IsCurrent<'_>) {
        self.pools.sample_start_time(took);
        let start_time = self.pools.start_time();
        let pools = self.pools.clone();
        let mut routes = pools.lock();
        let unused = match self.end_in(&mut routes, End::Ready) {
            Some(pool)
                if pool.spec == self.spec && is_current(&self.spec.image, started.image_id()) =>
            {
                pool.retry_at = None;
                let target = pool.target(Instant::now(), start_time, self.pools.max_per_route);
                match pool.hand_over(started) {
                    Some(started) if pool.idle.len() < target => {
                        pool.idle.push_back(Ready {
                            started,
                            since: Instant::now(),
                        });
                        None
                    }
                    other => other,
                }
            }
            Some(pool) => {
                pool.uncover();
                Some(started)
            }
            None => Some(started),
        };
        drop(routes);
        drop(unused); // removals run in the background
    }

    /// The start failed: `error` goes to the call that asked for it, if that
    /// call still waits; otherwise it comes back (for the log).
    pub fn failed(mut self, error: EngineError) -> Option<EngineError> {
        let pools = self.pools.clone();
        let mut routes = pools.lock();
        let Some(pool) = self.end_in(&mut routes, End::Failed) else {
            return Some(error);
        };
        let owner = self
            .owner
            .and_then(|id| pool.waiters.iter().position(|w| w.id == id))
            .and_then(|at| pool.waiters.remove(at));
        let unsent = match owner {
            Some(waiter) => waiter.tx.send(Err(error)).err().and_then(Result::err),
            None => Some(error),
        };
        pool.uncover();
        unsent
    }

    /// No memory to spare for this start ahead of calls: the route's next
    /// starts ahead wait a while.
    pub fn postpone(mut self) {
        let pools = self.pools.clone();
        let mut routes = pools.lock();
        if let Some(pool) = self.end_in(&mut routes, End::Postponed) {
            pool.uncover();
        }
    }

    /// Count the end in the route's pool (if it is still the one the ticket
    /// was made for), which is returned.
    fn end_in<'a>(
        &mut self,
        routes: &'a mut HashMap<RouteKey, RoutePool<C>>,
        end: End,
    ) -> Option<&'a mut RoutePool<C>> {
        self.ended = true;
        let pool = routes
            .get_mut(&key(&self.spec))
            .filter(|pool| pool.epoch == self.epoch)?;
        pool.starting = pool.starting.saturating_sub(1);
        if self.engaged {
            pool.engaged = pool.engaged.saturating_sub(1);
        }
        if matches!(end, End::Failed | End::Postponed) {
            pool.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
        Some(pool)
    }
}

impl<C: Pooled> Drop for Ticket<C> {
    /// Abandoned: not wanted any more, the node stops, the engine went away.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let pools = self.pools.clone();
        let mut routes = pools.lock();
        if let Some(pool) = self.end_in(&mut routes, End::Abandoned) {
            pool.uncover();
        }
    }
}

pub struct Pools<C: Pooled = Started> {
    routes: Mutex<HashMap<RouteKey, RoutePool<C>>>,
    /// Wakes the refill loop when a container is taken.
    pub wake: Notify,
    max_per_route: usize,
    /// Moving average of how long a container takes to start, in µs.
    start_time_us: AtomicU64,
    /// Numbers route pools (epochs) and waiting calls.
    next_id: AtomicU64,
}

impl<C: Pooled> Pools<C> {
    pub fn new(max_per_route: usize) -> Pools<C> {
        Pools {
            routes: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            max_per_route,
            start_time_us: AtomicU64::new(600_000),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RouteKey, RoutePool<C>>> {
        // A panic while holding the lock leaves only counters behind; keep going.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn start_time(&self) -> Duration {
        Duration::from_micros(self.start_time_us.load(Ordering::Relaxed))
    }

    fn sample_start_time(&self, took: Duration) {
        let old = self.start_time_us.load(Ordering::Relaxed);
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.start_time_us.store(
            old.saturating_mul(7).saturating_add(sample) / 8,
            Ordering::Relaxed,
        );
    }

    fn ticket(self: &Arc<Self>, pool: &RoutePool<C>, owner: Option<u64>) -> Ticket<C> {
        Ticket {
            pools: self.clone(),
            spec: pool.spec.clone(),
            epoch: pool.epoch,
            owner,
            engaged: false,
            ended: false,
        }
    }

    /// Record a call to `spec`'s route and take a container that is ready,
    /// or join the route's waiting calls. A route whose definition changed
    /// drops the containers made for the old one. Containers of an image
    /// the name no longer names are dropped on the way.
    pub fn enter(
        self: &Arc<Self>,
        spec: &ContainerSpec,
        keep_warm: Duration,
        is_current: IsCurrent<'_>,
    ) -> (InFlight<C>, Entry<C>) {
        let now = Instant::now();
        let mut stale = Vec::new();
        let entry = {
            let mut routes = self.lock();
            let pool = routes
                .entry(key(spec))
                .or_insert_with(|| RoutePool::new(self.id(), spec.clone(), now, keep_warm));
            if pool.spec != *spec {
                stale.extend(pool.idle.drain(..));
                pool.spec = spec.clone();
            }
            pool.keep_warm = keep_warm;
            pool.last_call = now;
            pool.arrivals.push_back(now);
            while pool
                .arrivals
                .front()
                .is_some_and(|t| now.duration_since(*t) > WINDOW)
            {
                pool.arrivals.pop_front();
            }
            pool.in_flight += 1;
            if pool.in_flight >= pool.peak.0 || now.duration_since(pool.peak.1) > WINDOW {
                pool.peak = (pool.in_flight, now);
            }
            let mut taken = None;
            while let Some(ready) = pool.idle.pop_front() {
                if is_current(&spec.image, ready.started.image_id()) {
                    taken = Some(ready.started);
                    break;
                }
                stale.push(ready);
            }
            match taken {
                Some(started) => Entry::Ready(started),
                None => {
                    let (tx, rx) = oneshot::channel();
                    let id = self.id();
                    pool.waiters.push_back(Waiter { id, tx });
                    let own = (pool.starting < pool.waiters.len()).then(|| {
                        pool.starting += 1;
                        self.ticket(pool, Some(id))
                    });
                    Entry::Wait(Waiting {
                        rx,
                        own,
                        _place: Place {
                            pools: self.clone(),
                            key: key(spec),
                            epoch: pool.epoch,
                            id,
                        },
                    })
                }
            }
        };
        drop(stale); // removals run in the background
        (
            InFlight {
                pools: self.clone(),
                key: key(spec),
            },
            entry,
        )
    }

    /// Keep one container of `spec`'s route ready until `until`, calls or
    /// not (see `standby_until`). A route whose definition changed drops the
    /// containers made for the old one, as a call does.
    pub fn keep_standby(&self, spec: &ContainerSpec, keep_warm: Duration, until: Instant) {
        let now = Instant::now();
        let mut stale = Vec::new();
        {
            let mut routes = self.lock();
            let pool = routes.entry(key(spec)).or_insert_with(|| {
                // No call yet: only the standby keeps it.
                let mut pool = RoutePool::new(self.id(), spec.clone(), now, keep_warm);
                pool.last_call = now.checked_sub(keep_warm + WINDOW).unwrap_or(now);
                pool
            });
            if pool.spec != *spec {
                stale.extend(pool.idle.drain(..));
                pool.spec = spec.clone();
            }
            pool.standby_until = Some(until);
        }
        drop(stale);
        self.wake.notify_one();
    }

    /// Decide which containers to start ahead now, one ticket each; idle
    /// containers beyond the target go.
    pub fn plan(self: &Arc<Self>, now: Instant) -> Vec<Ticket<C>> {
        let start_time = self.start_time();
        let mut expired = Vec::new();
        let mut plan = Vec::new();
        {
            let mut routes = self.lock();
            routes.retain(|_, pool| {
                let target = pool.target(now, start_time, self.max_per_route);
                while pool.idle.len() > target {
                    expired.extend(pool.idle.pop_back());
                }
                let want = target + pool.waiters.len();
                let have = pool.idle.len() + pool.starting;
                if have < want && pool.retry_at.is_none_or(|t| now >= t) {
                    for _ in have..want {
                        plan.push(self.ticket(pool, None));
                    }
                    pool.starting = want - pool.idle.len();
                }
                target > 0
                    || pool.in_flight > 0
                    || pool.starting > 0
                    || !pool.idle.is_empty()
                    || !pool.waiters.is_empty()
            });
        }
        drop(expired);
        plan
    }

    /// Give up idle containers (oldest first) to free `mib` for a call.
    pub fn evict_idle(&self, mib: u64) {
        let mut evicted = Vec::new();
        {
            let mut routes = self.lock();
            let mut freed = 0;
            while freed < mib {
                let oldest = routes
                    .iter()
                    .filter_map(|(k, p)| p.idle.front().map(|r| (r.since, k.clone())))
                    .min_by_key(|(since, _)| *since)
                    .map(|(_, k)| k);
                let Some(pool) = oldest.and_then(|k| routes.get_mut(&k)) else {
                    break;
                };
                freed += pool.spec.memory_mib;
                evicted.extend(pool.idle.pop_front());
            }
        }
        if !evicted.is_empty() {
            tracing::debug!(
                count = evicted.len(),
                "evicted containers started ahead to free memory"
            );
        }
    }

    /// `name` names image `id` now: idle containers of routes on `name` made
    /// from another image go (the refill loop starts their replacements
    /// from `id`). Returns how many went.
    pub fn retire_image(&self, name: &str, id: &str) -> usize {
        let name = normalize(name);
        let mut retired = Vec::new();
        for pool in self.lock().values_mut() {
            if normalize(&pool.spec.image) != name {
                continue;
            }
            let (keep, old): (VecDeque<Ready<C>>, VecDeque<Ready<C>>) = pool
                .idle
                .drain(..)
                .partition(|r| r.started.image_id() == id);
            pool.idle = keep;
            retired.extend(old);
        }
        let count = retired.len();
        drop(retired); // removals run in the background
        if count > 0 {
            self.wake.notify_one();
        }
        count
    }

    /// The image names routes with containers here use.
    pub fn image_names(&self) -> Vec<String> {
        self.lock().values().map(|p| p.spec.image.clone()).collect()
    }

    /// Forget a route (every version of it): its idle containers go now,
    /// and its waiting calls start their own containers.
    pub fn forget(&self, app: &str, path: &str) {
        let mut routes = self.lock();
        let gone: Vec<RouteKey> = routes
            .keys()
            .filter(|(a, p, _)| a == app && p == path)
            .cloned()
            .collect();
        let removed: Vec<_> = gone.iter().filter_map(|key| routes.remove(key)).collect();
        drop(routes);
        drop(removed);
    }

    /// Forget every route of an app.
    pub fn forget_app(&self, app: &str) {
        let mut routes = self.lock();
        let gone: Vec<RouteKey> = routes
            .keys()
            .filter(|(a, _, _)| a == app)
            .cloned()
            .collect();
        let removed: Vec<_> = gone.iter().filter_map(|key| routes.remove(key)).collect();
        drop(routes);
        drop(removed);
    }

    /// Containers started ahead, per route and version: `(app, path,
    /// count)`, a route once per version with a pool.
    pub fn prestarted_per_route(&self) -> Vec<(String, String, usize)> {
        self.lock()
            .iter()
            .map(|((app, path, _), pool)| (app.clone(), path.clone(), pool.idle.len()))
            .collect()
    }

    /// Containers started ahead, on every route (for tests).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(|p| p.idle.len()).sum()
    }

    /// Drop every idle container (shutdown, the engine went away); waiting
    /// calls start their own (and learn the engine's state from that).
    pub fn drain(&self) {
        let mut drained = Vec::new();
        let mut waiters = Vec::new();
        for pool in self.lock().values_mut() {
            drained.extend(pool.idle.drain(..));
            waiters.extend(pool.waiters.drain(..));
        }
        drop(drained);
        drop(waiters);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A container as the pool sees it; counts its removals.
    struct Fake {
        name: &'static str,
        image: &'static str,
        removed: Arc<AtomicUsize>,
    }

    impl Pooled for Fake {
        fn image_id(&self) -> &str {
            self.image
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.removed.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct Route {
        pools: Arc<Pools<Fake>>,
        spec: ContainerSpec,
        removed: Arc<AtomicUsize>,
    }

    const CURRENT: &str = "sha256:current";

    fn current(_name: &str, id: &str) -> bool {
        id == CURRENT
    }

    impl Route {
        fn new(max_per_route: usize) -> Route {
            Route {
                pools: Arc::new(Pools::new(max_per_route)),
                spec: ContainerSpec {
                    app: "app".to_string(),
                    path: "/f".to_string(),
                    version: 1,
                    image: "ferrite/hello".to_string(),
                    memory_mib: 64,
                    confinement: ferrite_model::Confinement::resolve(None, 64),
                },
                removed: Arc::new(AtomicUsize::new(0)),
            }
        }

        fn container(&self, name: &'static str) -> Fake {
            Fake {
                name,
                image: CURRENT,
                removed: self.removed.clone(),
            }
        }

        fn enter(&self) -> (InFlight<Fake>, Entry<Fake>) {
            self.pools
                .enter(&self.spec, Duration::from_secs(30), &current)
        }

        /// A call that finds nothing ready.
        fn wait(&self) -> (InFlight<Fake>, Waiting<Fake>) {
            match self.enter() {
                (in_flight, Entry::Wait(waiting)) => (in_flight, waiting),
                (_, Entry::Ready(c)) => panic!("{} was ready", c.name),
            }
        }

        fn ready(&self, ticket: Ticket<Fake>, name: &'static str) {
            ticket.ready(self.container(name), Duration::from_millis(500), &current);
        }

        fn counts(&self) -> (usize, usize, usize) {
            let routes = self.pools.lock();
            let pool = &routes[&key(&self.spec)];
            (pool.idle.len(), pool.waiters.len(), pool.starting)
        }

        fn removed(&self) -> usize {
            self.removed.load(Ordering::SeqCst)
        }
    }

    async fn served(waiting: Waiting<Fake>) -> &'static str {
        match waiting.wait().await {
            Waited::Ready(c) => c.name,
            Waited::Failed(e) => panic!("failed: {e}"),
            Waited::Uncovered => panic!("uncovered"),
        }
    }

    #[tokio::test]
    async fn a_waiting_call_takes_a_container_started_ahead_and_its_own_joins_the_pool() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let mut own = a
            .own_start()
            .expect("nothing under way: the call starts one");
        // The refill loop starts ahead of calls beside it.
        let mut ahead = route.pools.plan(Instant::now());
        assert_eq!(
            ahead.len(),
            2,
            "target 2 on top of the waiting call's own start"
        );
        let mut first = ahead.remove(0);
        assert!(first.engage());
        route.ready(first, "ahead-1");
        assert_eq!(served(a).await, "ahead-1", "the first ready, not its own");
        assert!(own.engage());
        route.ready(own, "own-a");
        assert_eq!(route.counts().0, 1, "its own start joined the pool");
        match route.enter() {
            (_b, Entry::Ready(c)) => assert_eq!(c.name, "own-a"),
            (_, Entry::Wait(_)) => panic!("the next call waited"),
        }
        assert_eq!(route.removed(), 2, "only the two that served calls");
    }

    #[tokio::test]
    async fn a_call_covered_by_a_start_under_way_starts_none() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let own = a.own_start();
        assert!(own.is_some());
        let ahead = route.pools.plan(Instant::now());
        assert_eq!(route.counts(), (0, 1, 3));
        let (_b, mut b) = route.wait();
        assert!(b.own_start().is_none(), "starts under way cover it");
        assert_eq!(route.counts(), (0, 2, 3));
        // Whichever ends first goes to the call that came first.
        let mut tickets = ahead.into_iter().chain(own);
        let mut last = tickets.next_back().unwrap();
        assert!(last.engage());
        route.ready(last, "own-a");
        assert_eq!(served(a).await, "own-a");
        let mut next = tickets.next().unwrap();
        assert!(next.engage());
        route.ready(next, "ahead-1");
        assert_eq!(served(b).await, "ahead-1");
    }

    #[tokio::test]
    async fn calls_are_served_in_order_and_one_that_left_is_skipped() {
        let route = Route::new(0);
        let (_a, mut a) = route.wait();
        let (_b, mut b) = route.wait();
        let (_c, mut c) = route.wait();
        let tickets: Vec<_> = [&mut a, &mut b, &mut c]
            .into_iter()
            .map(|w| w.own_start().expect("each call starts one"))
            .collect();
        drop(b); // its client went away
        assert_eq!(route.counts(), (0, 2, 3));
        let mut names = ["third", "second", "first"].into_iter();
        for mut ticket in tickets.into_iter().rev() {
            assert!(ticket.engage() || route.counts().1 == 0);
            route.ready(ticket, names.next().unwrap());
        }
        assert_eq!(served(a).await, "third");
        assert_eq!(served(c).await, "second");
        // Nobody waits and starting ahead is off: removed, not kept.
        assert_eq!(route.counts(), (0, 0, 0));
        assert_eq!(route.removed(), 3, "two served calls, one removed unused");
    }

    #[tokio::test]
    async fn a_start_nobody_needs_any_more_is_abandoned_at_its_slot() {
        let route = Route::new(0);
        let (_a, mut a) = route.wait();
        let mut own = a.own_start().unwrap();
        drop(a);
        assert!(!own.engage(), "nobody waits, nothing to keep ahead");
        drop(own);
        assert_eq!(route.counts(), (0, 0, 0));
        assert_eq!(route.removed(), 0, "no container was made");
    }

    #[tokio::test]
    async fn a_failed_start_goes_to_its_call() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let (_b, mut b) = route.wait();
        let (own_a, mut own_b) = (a.own_start().unwrap(), b.own_start().unwrap());
        let unsent = own_a.failed(EngineError::Pull {
            image: "ferrite/hello".to_string(),
            reason: "no".to_string(),
        });
        assert!(
            unsent.is_none(),
            "the call that asked for it took the error"
        );
        assert!(matches!(
            a.wait().await,
            Waited::Failed(EngineError::Pull { .. })
        ));
        assert!(own_b.engage());
        route.ready(own_b, "own-b");
        assert_eq!(served(b).await, "own-b");
    }

    #[tokio::test]
    async fn a_failed_start_whose_call_was_served_uncovers_the_last_waiting_call() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let (_b, mut b) = route.wait();
        let (own_a, mut own_b) = (a.own_start().unwrap(), b.own_start().unwrap());
        assert!(own_b.engage());
        route.ready(own_b, "own-b");
        assert_eq!(served(a).await, "own-b", "first come, first served");
        let unsent = own_a.failed(EngineError::ShuttingDown);
        assert!(unsent.is_some(), "its call is gone");
        assert!(
            matches!(b.wait().await, Waited::Uncovered),
            "no start is left for b: it starts its own"
        );
    }

    #[tokio::test]
    async fn containers_of_a_retired_image_are_never_handed_out() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let mut own = a.own_start().unwrap();
        assert!(own.engage());
        let old = Fake {
            name: "old",
            image: "sha256:old",
            removed: route.removed.clone(),
        };
        own.ready(old, Duration::from_millis(500), &current);
        assert_eq!(route.removed(), 1);
        assert!(matches!(a.wait().await, Waited::Uncovered));
        // An idle one of an image retired since is skipped and removed too.
        route
            .pools
            .lock()
            .get_mut(&key(&route.spec))
            .unwrap()
            .idle
            .push_back(Ready {
                started: Fake {
                    name: "old-idle",
                    image: "sha256:old",
                    removed: route.removed.clone(),
                },
                since: Instant::now(),
            });
        let (_b, _waiting) = route.wait();
        assert_eq!(route.removed(), 2);
    }

    #[tokio::test]
    async fn a_forgotten_route_sends_its_waiting_calls_to_start_their_own() {
        let route = Route::new(8);
        let (_a, mut a) = route.wait();
        let mut own = a.own_start().unwrap();
        route.pools.forget("app", "/f");
        assert!(matches!(a.wait().await, Waited::Uncovered));
        assert!(!own.engage());
        let (_b, mut b) = route.wait();
        let b_own = b.own_start();
        assert!(b_own.is_some(), "the new pool owes b a start");
        drop(own); // the old ticket leaves the new pool's counts alone
        assert_eq!(route.counts(), (0, 1, 1));
    }

    #[tokio::test]
    async fn a_standby_is_kept_ready_without_calls_until_it_is_no_longer_asked_for() {
        let route = Route::new(8);
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        route
            .pools
            .keep_standby(&route.spec, Duration::from_secs(30), until);
        let mut ahead = route.pools.plan(now);
        assert_eq!(ahead.len(), 1, "one standby, no call yet");
        let mut standby = ahead.remove(0);
        assert!(standby.engage());
        route.ready(standby, "standby");
        assert!(route.pools.plan(now).is_empty(), "it is ready: no other");
        assert_eq!(route.counts().0, 1);
        // A call takes it; then the route's demand sets the target, as
        // for any route with calls.
        match route.enter() {
            (_call, Entry::Ready(c)) => assert_eq!(c.name, "standby"),
            (_, Entry::Wait(_)) => panic!("the call found no standby"),
        }
        assert!(!route.pools.plan(Instant::now()).is_empty());
        // Asked for no more (and the call long past): nothing kept.
        let later = until + Duration::from_secs(31);
        assert!(route.pools.plan(later).is_empty());
        assert!(route.pools.lock().is_empty(), "the route's pool is gone");
    }

    #[tokio::test]
    async fn no_standby_when_starting_ahead_is_off() {
        let route = Route::new(0);
        let until = Instant::now() + Duration::from_secs(60);
        route
            .pools
            .keep_standby(&route.spec, Duration::from_secs(30), until);
        assert!(route.pools.plan(Instant::now()).is_empty());
    }
}
