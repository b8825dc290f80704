//! Routes and their apps as the invoke path needs them, cached for a short
//! time: a call should not cost two database reads. Changes mark their
//! entries for revalidation at once (see `changes`); the TTL bounds
//! staleness when a change message is lost or there is no change bus.
//!
//! The cache is a [`moka`] cache: a hit takes no lock shared with other
//! calls, and past its capacity it keeps the routes used most (TinyLFU)
//! instead of starting over. A route that is missing or due for a read is
//! read once however many calls want it at that moment: they queue on one
//! of [`READ_STRIPES`] locks (chosen by the route) and the first one's read
//! serves the others.
//!
//! A read that finds the route serving other versions than the entry it
//! replaces (a change this node was not told of: a message lost while the
//! bus was down) drops the route's containers on this node, as the change
//! message would have: the engine keeps a pool per version, and a version
//! no longer served would otherwise keep its containers until their idle
//! timeout.
//!
//! While the store is unavailable, a route known from before is served as
//! it was last read (stale), expired or marked or not: a change needs the
//! store, so none can have been made through a node meanwhile. Each route
//! served so is logged once per outage and counted in
//! `ferrite_route_cache_stale_total`; a route never read gets the store's
//! error (503). The first read that answers again ends the outage; a read
//! that finds the route or its app gone drops the entry.
//!
//! Each entry carries its app's limits [`Gate`] and its route's metric
//! handles, so a call is admitted and recorded without another lookup; and,
//! for a route whose traffic names other versions than its newest, those
//! versions' definitions, so a call runs the one it is given
//! ([`Cached::serves`]) without another read.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ferrite_engine::Engine;
use ferrite_model::route::version;
use ferrite_model::{App, Route};
use ferrite_store::{Store, StoreError};
use moka::sync::Cache;

use crate::limits::{Gate, Limiter};
use crate::metrics::calls::{Kind, RouteMetrics};

/// Locks that reads of the store for missing or expired routes queue on.
/// Calls for one route share a lock, so its read is done once; two routes
/// share one only by chance, and then one read waits for the other.
const READ_STRIPES: usize = 256;

type Key = (String, String);
/// A route with its app, shared by the calls that use it.
pub type Entry = Arc<Cached>;

/// What a call needs of its route.
pub struct Cached {
    /// The route as it is: its newest version, its key and its traffic.
    pub route: Route,
    /// The versions its traffic names, each as [`Route::at`] makes it
    /// (none without traffic).
    pub versions: Vec<Route>,
    pub app: App,
    /// The app's limits and counts on this node.
    pub gate: Arc<Gate>,
    /// Where the route's calls are counted and timed.
    pub metrics: Arc<RouteMetrics>,
}

impl Cached {
    /// The route as the version that serves call `call_id`, with request
    /// `headers`, defines it: the route itself without traffic, else the
    /// version its traffic picks (the same on every node).
    pub fn serves(&self, call_id: &str, headers: &HeaderMap) -> &Route {
        let Some(traffic) = &self.route.traffic else {
            return &self.route;
        };
        let picked = version::pick(traffic, call_id, headers);
        picked
            .and_then(|v| self.versions.iter().find(|r| r.version == v))
            .unwrap_or(&self.route)
    }
}

/// An entry and what the cache knows about its freshness.
struct Slot {
    entry: Entry,
    /// When it was read from the store.
    read_at: Instant,
    /// A change was announced: read it again before using it (unless the
    /// store is unavailable).
    revalidate: AtomicBool,
    /// The outage in which it was last logged as served stale.
    warned_in: AtomicU64,
}

/// The store's outages as lookups saw them.
#[derive(Default)]
struct Outages {
    /// Outages seen so far; the current one while `ongoing`.
    seen: u64,
    ongoing: bool,
}

pub struct RouteCache {
    slots: Cache<Key, Arc<Slot>>,
    reading: Box<[tokio::sync::Mutex<()>]>,
    /// Picks a route's lock in `reading`.
    stripe_of: RandomState,
    /// Bumped by every forget. A read that began before a forget may hold
    /// what the change replaced, so it is stored marked for revalidation.
    forgets: AtomicU64,
    outages: Mutex<Outages>,
    /// How long an entry is used without asking the store again.
    ttl: Duration,
    /// Where the gates of apps come from.
    limiter: Limiter,
    /// Whose containers of a route go when a read finds it serving other
    /// versions (`None` in tests without an engine).
    engine: Option<Arc<Engine>>,
}

impl RouteCache {
    /// A cache of at most `capacity` routes.
    pub fn new(
        ttl: Duration,
        capacity: u64,
        limiter: Limiter,
        engine: Option<Arc<Engine>>,
    ) -> RouteCache {
        RouteCache {
            slots: Cache::new(capacity),
            reading: (0..READ_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            stripe_of: RandomState::new(),
            forgets: AtomicU64::new(0),
            outages: Mutex::default(),
            ttl,
            limiter,
            engine,
        }
    }

    fn outages(&self) -> std::sync::MutexGuard<'_, Outages> {
        self.outages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `key` if it may be used without asking the store.
    fn fresh(&self, key: &Key) -> Option<Entry> {
        self.slots
            .get(key)
            .filter(|slot| {
                !slot.revalidate.load(Ordering::SeqCst) && slot.read_at.elapsed() < self.ttl
            })
            .map(|slot| slot.entry.clone())
    }

    /// The route and its app, from the cache or the store; the last known
    /// ones while the store is unavailable.
    pub async fn get(&self, store: &dyn Store, app: &str, path: &str) -> Result<Entry, StoreError> {
        let key = (app.to_string(), path.to_string());
        if let Some(entry) = self.fresh(&key) {
            return Ok(entry);
        }
        let outages_before = self.outages().seen;
        let stripe = self.stripe_of.hash_one(&key) as usize % READ_STRIPES;
        let _reading = self.reading[stripe].lock().await;
        // Read meanwhile by the call this one waited for.
        if let Some(entry) = self.fresh(&key) {
            return Ok(entry);
        }
        if self.outages().seen != outages_before {
            // The call this one waited for found the store away: no need
            // to wait for it again.
            let error = StoreError::Unavailable("it did not answer a read just now".to_string());
            return self.stale(&key, error);
        }
        let forgets_before = self.forgets.load(Ordering::SeqCst);
        match self.read(store, app, path).await {
            Ok(entry) => {
                self.store_answered(outages_before);
                let before = self.slots.get(&key);
                if let (Some(engine), Some(before)) = (&self.engine, &before) {
                    // Before the new entry is used, so no call makes a
                    // container of a new version that this would drop.
                    if serving(&before.entry.route) != serving(&entry.route) {
                        tracing::info!(app, path, "a read found the route serving other versions: its containers on this node go");
                        engine.forget_route(app, path);
                    }
                }
                // Warned once in this outage stays warned.
                let warned_in = before.map_or(0, |slot| slot.warned_in.load(Ordering::SeqCst));
                let forgotten_meanwhile = self.forgets.load(Ordering::SeqCst) != forgets_before;
                let slot = Slot {
                    entry: entry.clone(),
                    read_at: Instant::now(),
                    revalidate: AtomicBool::new(forgotten_meanwhile),
                    warned_in: AtomicU64::new(warned_in),
                };
                self.slots.insert(key, Arc::new(slot));
                Ok(entry)
            }
            Err(e) if e.is_unavailable() => self.stale(&key, e),
            Err(e) => {
                if matches!(
                    e,
                    StoreError::RouteNotFound { .. } | StoreError::AppNotFound(_)
                ) {
                    self.store_answered(outages_before);
                    self.slots.invalidate(&key);
                }
                Err(e)
            }
        }
    }

    /// The store answered a read that began when `outages_before` outages
    /// had been seen: that ends the current outage, unless it began during
    /// the read.
    fn store_answered(&self, outages_before: u64) {
        let mut outages = self.outages();
        if outages.seen == outages_before {
            outages.ongoing = false;
        }
    }

    async fn read(&self, store: &dyn Store, app: &str, path: &str) -> Result<Entry, StoreError> {
        let route = store.get_route(app, path).await?;
        let mut versions = Vec::new();
        for number in route.traffic_versions() {
            let served = if number == route.version {
                Route {
                    traffic: None,
                    ..route.clone()
                }
            } else {
                route.at(&store.get_route_version(app, path, number).await?)
            };
            versions.push(served);
        }
        let app_record = store.get_app(app).await?;
        let gate = self.limiter.gate(&app_record);
        let metrics = RouteMetrics::new(
            &route.app_name,
            &route.path,
            Kind::of(&route),
            &serving(&route),
        );
        Ok(Arc::new(Cached {
            route,
            versions,
            app: app_record,
            gate,
            metrics: Arc::new(metrics),
        }))
    }

    /// The last known entry of `key`, the store being unavailable
    /// (`error`), or that error when the route was never read.
    fn stale(&self, key: &Key, error: StoreError) -> Result<Entry, StoreError> {
        let outage = {
            let mut outages = self.outages();
            if !outages.ongoing {
                outages.ongoing = true;
                outages.seen += 1;
            }
            outages.seen
        };
        let Some(slot) = self.slots.get(key) else {
            return Err(error);
        };
        if slot.warned_in.swap(outage, Ordering::SeqCst) != outage {
            let age_s = slot.read_at.elapsed().as_secs();
            tracing::warn!(app = %key.0, path = %key.1, age_s, error = %error, "store unavailable: serving the route as last read (stale) until it answers");
        }
        crate::metrics::route_served_stale();
        Ok(slot.entry.clone())
    }

    /// Marks the slots that `forgotten` selects for a read before their
    /// next use.
    fn forget(&self, forgotten: impl Fn(&Key) -> bool) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        for (key, slot) in &self.slots {
            if forgotten(&key) {
                slot.revalidate.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Read one route again before its next use (changed or deleted).
    pub fn forget_route(&self, app: &str, path: &str) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        if let Some(slot) = self.slots.get(&(app.to_string(), path.to_string())) {
            slot.revalidate.store(true, Ordering::SeqCst);
        }
    }

    /// Read every route of an app again (its config changed, or it was
    /// deleted).
    pub fn forget_app(&self, app: &str) {
        self.forget(|(a, _)| a == app);
    }

    /// Read every route again (changes may have been missed).
    pub fn forget_all(&self) {
        self.forget(|_| true);
    }
}

/// The versions that serve `route`'s calls.
fn serving(route: &Route) -> Vec<u32> {
    match route.traffic {
        Some(_) => route.traffic_versions(),
        None => vec![route.version],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_model::{AppLimits, RouteInput};
    use ferrite_store::sqlite::SqliteStore;

    async fn store_with_route() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let input: RouteInput = serde_json::from_value(serde_json::json!({
            "path": "/hello", "image": "ferrite/hello"
        }))
        .unwrap();
        let route = Route::create("app", input).unwrap();
        store.create_route(&route).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn calls_for_a_route_being_read_share_one_read() {
        let (_dir, store) = store_with_route().await;
        let routes = RouteCache::new(
            Duration::from_secs(600),
            1_000,
            Limiter::new(AppLimits::default()),
            None,
        );
        let gets = (0..16).map(|_| routes.get(&store, "app", "/hello"));
        let entries = futures_util::future::join_all(gets).await;
        let first = entries[0].as_ref().unwrap();
        for entry in &entries {
            assert!(
                Arc::ptr_eq(first, entry.as_ref().unwrap()),
                "one read, one entry for all"
            );
        }
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_capacity() {
        let (_dir, store) = store_with_route().await;
        for i in 0..40 {
            let input: RouteInput = serde_json::from_value(serde_json::json!({
                "path": format!("/r{i}"), "image": "ferrite/hello"
            }))
            .unwrap();
            store
                .create_route(&Route::create("app", input).unwrap())
                .await
                .unwrap();
        }
        let routes = RouteCache::new(
            Duration::from_secs(600),
            10,
            Limiter::new(AppLimits::default()),
            None,
        );
        for i in 0..40 {
            routes.get(&store, "app", &format!("/r{i}")).await.unwrap();
        }
        routes.slots.run_pending_tasks();
        assert!(
            routes.slots.entry_count() <= 10,
            "{} entries",
            routes.slots.entry_count()
        );
    }

    fn cache() -> RouteCache {
        // A TTL of zero: every lookup asks the store first.
        RouteCache::new(
            Duration::ZERO,
            1_000,
            Limiter::new(AppLimits::default()),
            None,
        )
    }

    #[tokio::test]
    async fn a_known_route_is_served_stale_while_the_store_is_away() {
        let (_dir, store) = store_with_route().await;
        let routes = cache();
        routes.get(&store, "app", "/hello").await.unwrap();
        routes.forget_all();
        store.close().await;
        for _ in 0..3 {
            let entry = routes.get(&store, "app", "/hello").await.unwrap();
            assert_eq!(entry.route.image, "ferrite/hello");
        }
        let outages = routes.outages();
        assert_eq!(outages.seen, 1, "one outage");
        assert!(outages.ongoing);
        let slot = routes.slots.get(&("app".into(), "/hello".into())).unwrap();
        assert_eq!(slot.warned_in.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unknown_route_gets_the_store_error() {
        let (_dir, store) = store_with_route().await;
        let routes = cache();
        store.close().await;
        let err = routes.get(&store, "app", "/other").await.err().unwrap();
        assert!(err.is_unavailable(), "{err}");
    }

    #[tokio::test]
    async fn a_route_found_gone_is_dropped() {
        let (_dir, store) = store_with_route().await;
        let routes = cache();
        routes.get(&store, "app", "/hello").await.unwrap();
        store.delete_route("app", "/hello").await.unwrap();
        let err = routes.get(&store, "app", "/hello").await.err().unwrap();
        assert!(matches!(err, StoreError::RouteNotFound { .. }), "{err}");
        assert!(!routes.slots.contains_key(&("app".into(), "/hello".into())));
        store.close().await;
        let err = routes.get(&store, "app", "/hello").await.err().unwrap();
        assert!(err.is_unavailable(), "nothing left to serve: {err}");
    }
}
