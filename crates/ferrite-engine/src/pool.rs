//! Containers started ahead of their calls, per route, sized from recent
//! demand: enough to cover the calls that arrive while a replacement starts
//! (arrival rate × start time) plus the recent peak of concurrent calls,
//! capped per route, and none once the route has been idle for its
//! `idle_timeout`. Containers made from an image that the route's image
//! name no longer names (it was rebuilt or pulled anew) are never handed
//! out: [`Pools::retire_image`] removes them when the engine says so.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::container::{ContainerSpec, Started};
use crate::image::{normalize, Images};

/// How far back demand is measured.
const WINDOW: Duration = Duration::from_secs(10);
/// After a failed start, wait this long before trying that route again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

type RouteKey = (String, String);

fn key(spec: &ContainerSpec) -> RouteKey {
    (spec.app.clone(), spec.path.clone())
}

struct Ready {
    started: Started,
    since: Instant,
}

struct RoutePool {
    spec: ContainerSpec,
    idle: VecDeque<Ready>,
    starting: usize,
    in_flight: usize,
    last_call: Instant,
    keep_warm: Duration,
    arrivals: VecDeque<Instant>,
    /// Highest `in_flight` seen, and when, to decay it after `WINDOW`.
    peak: (usize, Instant),
    retry_at: Option<Instant>,
}

impl RoutePool {
    fn new(spec: ContainerSpec, now: Instant, keep_warm: Duration) -> RoutePool {
        RoutePool {
            spec,
            idle: VecDeque::new(),
            starting: 0,
            in_flight: 0,
            last_call: now,
            keep_warm,
            arrivals: VecDeque::new(),
            peak: (0, now),
            retry_at: None,
        }
    }

    /// Containers this route should have started ahead right now.
    fn target(&self, now: Instant, start_time: Duration, cap: usize) -> usize {
        if now.duration_since(self.last_call) > self.keep_warm {
            return 0;
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
}

/// Decrements the route's in-flight count when the call ends.
pub struct InFlight {
    pools: Arc<Pools>,
    key: RouteKey,
}

impl Drop for InFlight {
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

pub struct Pools {
    routes: Mutex<HashMap<RouteKey, RoutePool>>,
    /// Wakes the refill loop when a container is taken.
    pub wake: Notify,
    max_per_route: usize,
    /// Moving average of how long a container takes to start, in µs.
    start_time_us: AtomicU64,
}

impl Pools {
    pub fn new(max_per_route: usize) -> Pools {
        Pools {
            routes: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            max_per_route,
            start_time_us: AtomicU64::new(600_000),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RouteKey, RoutePool>> {
        // A panic while holding the lock leaves only counters behind; keep going.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a call to `spec`'s route and take a container started ahead,
    /// if one is ready. A route whose definition changed drops the
    /// containers made for the old one.
    /// Containers of an image the name no longer names are dropped on the
    /// way (an in-memory check, see [`Images::is_current`]).
    pub fn enter(
        self: &Arc<Self>,
        spec: &ContainerSpec,
        keep_warm: Duration,
        images: &Images,
    ) -> (InFlight, Option<Started>) {
        let now = Instant::now();
        let mut stale = Vec::new();
        let taken = {
            let mut routes = self.lock();
            let pool = routes
                .entry(key(spec))
                .or_insert_with(|| RoutePool::new(spec.clone(), now, keep_warm));
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
                if images.is_current(&spec.image, &ready.started.image_id) {
                    taken = Some(ready.started);
                    break;
                }
                stale.push(ready);
            }
            taken
        };
        drop(stale); // removals run in the background
        (
            InFlight {
                pools: self.clone(),
                key: key(spec),
            },
            taken,
        )
    }

    /// Decide which containers to start now; each returned spec is counted
    /// as starting until [`Pools::add`] or [`Pools::start_failed`].
    pub fn plan(&self, now: Instant) -> Vec<ContainerSpec> {
        let start_time = Duration::from_micros(self.start_time_us.load(Ordering::Relaxed));
        let mut expired = Vec::new();
        let mut plan = Vec::new();
        {
            let mut routes = self.lock();
            routes.retain(|_, pool| {
                let target = pool.target(now, start_time, self.max_per_route);
                while pool.idle.len() > target {
                    expired.extend(pool.idle.pop_back());
                }
                let have = pool.idle.len() + pool.starting;
                if have < target && pool.retry_at.is_none_or(|t| now >= t) {
                    let missing = target - have;
                    plan.extend(std::iter::repeat_n(pool.spec.clone(), missing));
                    pool.starting += missing;
                }
                target > 0 || pool.in_flight > 0 || pool.starting > 0 || !pool.idle.is_empty()
            });
        }
        drop(expired);
        plan
    }

    /// A container started ahead is ready.
    /// One made from an image `spec.image` no longer names is removed.
    pub fn add(&self, spec: &ContainerSpec, started: Started, took: Duration, images: &Images) {
        let old = self.start_time_us.load(Ordering::Relaxed);
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.start_time_us
            .store((old * 7 + sample) / 8, Ordering::Relaxed);
        let mut routes = self.lock();
        match routes.get_mut(&key(spec)) {
            Some(pool)
                if pool.spec == *spec && images.is_current(&spec.image, &started.image_id) =>
            {
                pool.starting = pool.starting.saturating_sub(1);
                pool.retry_at = None;
                pool.idle.push_back(Ready {
                    started,
                    since: Instant::now(),
                });
            }
            Some(pool) => {
                pool.starting = pool.starting.saturating_sub(1);
                drop(routes);
                drop(started);
            }
            None => {
                drop(routes);
                drop(started);
            }
        }
    }

    /// A container started ahead is not wanted after all (the node stops,
    /// or the engine went away while it started).
    pub fn start_abandoned(&self, spec: &ContainerSpec) {
        if let Some(pool) = self.lock().get_mut(&key(spec)) {
            pool.starting = pool.starting.saturating_sub(1);
        }
    }

    pub fn start_failed(&self, spec: &ContainerSpec) {
        if let Some(pool) = self.lock().get_mut(&key(spec)) {
            pool.starting = pool.starting.saturating_sub(1);
            pool.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
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
            let (keep, old): (VecDeque<Ready>, VecDeque<Ready>) =
                pool.idle.drain(..).partition(|r| r.started.image_id == id);
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

    /// Forget a route: its idle containers go now.
    pub fn forget(&self, app: &str, path: &str) {
        let removed = self.lock().remove(&(app.to_string(), path.to_string()));
        drop(removed);
    }

    /// Forget every route of an app.
    pub fn forget_app(&self, app: &str) {
        let mut routes = self.lock();
        let gone: Vec<RouteKey> = routes.keys().filter(|(a, _)| a == app).cloned().collect();
        let removed: Vec<_> = gone.iter().filter_map(|key| routes.remove(key)).collect();
        drop(routes);
        drop(removed);
    }

    /// Containers started ahead, per route: `(app, path, count)`.
    pub fn prestarted_per_route(&self) -> Vec<(String, String, usize)> {
        self.lock()
            .iter()
            .map(|((app, path), pool)| (app.clone(), path.clone(), pool.idle.len()))
            .collect()
    }

    /// Containers started ahead, on every route (for tests).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(|p| p.idle.len()).sum()
    }

    /// Drop every idle container (shutdown).
    pub fn drain(&self) {
        let drained: Vec<_> = self
            .lock()
            .values_mut()
            .flat_map(|p| p.idle.drain(..))
            .collect();
        drop(drained);
    }
}
