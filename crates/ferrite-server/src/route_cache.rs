//! Routes and their apps as the invoke path needs them, cached for a short
//! time: a call should not cost two database reads. Changes mark their
//! entries for revalidation at once (see `changes`); the TTL bounds
//! staleness when a change message is lost or there is no change bus.
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
//! handles, so a call is admitted and recorded without another lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrite_model::{App, Route};
use ferrite_store::{Store, StoreError};

use crate::limits::{Gate, Limiter};
use crate::metrics::calls::{Kind, RouteMetrics};

/// Entries kept at most; past it the cache starts over (simple and bounded).
const CAPACITY: usize = 10_000;

type Key = (String, String);
/// A route with its app, shared by the calls that use it.
pub type Entry = Arc<Cached>;

/// What a call needs of its route.
pub struct Cached {
    pub route: Route,
    pub app: App,
    /// The app's limits and counts on this node.
    pub gate: Arc<Gate>,
    /// Where the route's calls are counted and timed.
    pub metrics: Arc<RouteMetrics>,
}

/// An entry and what the cache knows about its freshness.
struct Slot {
    entry: Entry,
    /// When it was read from the store.
    read_at: Instant,
    /// A change was announced: read it again before using it (unless the
    /// store is unavailable).
    revalidate: bool,
    /// The outage in which it was last logged as served stale.
    warned_in: u64,
}

#[derive(Default)]
struct Entries {
    slots: HashMap<Key, Slot>,
    /// Outages of the store seen by lookups so far; the current one while
    /// `in_outage`.
    outages: u64,
    in_outage: bool,
}

pub struct RouteCache {
    entries: Mutex<Entries>,
    /// How long an entry is used without asking the store again.
    ttl: Duration,
    /// Where the gates of apps come from.
    limiter: Limiter,
}

impl RouteCache {
    pub fn new(ttl: Duration, limiter: Limiter) -> RouteCache {
        RouteCache {
            entries: Mutex::default(),
            ttl,
            limiter,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The route and its app, from the cache or the store; the last known
    /// ones while the store is unavailable.
    pub async fn get(&self, store: &dyn Store, app: &str, path: &str) -> Result<Entry, StoreError> {
        let key = (app.to_string(), path.to_string());
        if let Some(slot) = self.entries().slots.get(&key) {
            if !slot.revalidate && slot.read_at.elapsed() < self.ttl {
                return Ok(slot.entry.clone());
            }
        }
        let outages_before = self.entries().outages;
        match self.read(store, app, path).await {
            Ok(entry) => {
                let mut entries = self.store_answered(outages_before);
                if entries.slots.len() >= CAPACITY {
                    entries.slots.clear();
                }
                // Warned once in this outage stays warned.
                let warned_in = entries.slots.get(&key).map_or(0, |s| s.warned_in);
                let slot = Slot {
                    entry: entry.clone(),
                    read_at: Instant::now(),
                    revalidate: false,
                    warned_in,
                };
                entries.slots.insert(key, slot);
                Ok(entry)
            }
            Err(e) if e.is_unavailable() => self.stale(&key, e),
            Err(e) => {
                if matches!(
                    e,
                    StoreError::RouteNotFound { .. } | StoreError::AppNotFound(_)
                ) {
                    self.store_answered(outages_before).slots.remove(&key);
                }
                Err(e)
            }
        }
    }

    /// The entries, the store having answered a read that began when
    /// `outages_before` outages had been seen: that ends the current
    /// outage, unless it began during the read.
    fn store_answered(&self, outages_before: u64) -> std::sync::MutexGuard<'_, Entries> {
        let mut entries = self.entries();
        if entries.outages == outages_before {
            entries.in_outage = false;
        }
        entries
    }

    async fn read(&self, store: &dyn Store, app: &str, path: &str) -> Result<Entry, StoreError> {
        let route = store.get_route(app, path).await?;
        let app_record = store.get_app(app).await?;
        let gate = self.limiter.gate(&app_record);
        let metrics = RouteMetrics::new(&route.app_name, &route.path, Kind::of(&route));
        Ok(Arc::new(Cached {
            route,
            app: app_record,
            gate,
            metrics: Arc::new(metrics),
        }))
    }

    /// The last known entry of `key`, the store being unavailable
    /// (`error`), or that error when the route was never read.
    fn stale(&self, key: &Key, error: StoreError) -> Result<Entry, StoreError> {
        let mut entries = self.entries();
        if !entries.in_outage {
            entries.in_outage = true;
            entries.outages += 1;
        }
        let outage = entries.outages;
        let Some(slot) = entries.slots.get_mut(key) else {
            return Err(error);
        };
        if slot.warned_in != outage {
            slot.warned_in = outage;
            let age_s = slot.read_at.elapsed().as_secs();
            tracing::warn!(app = %key.0, path = %key.1, age_s, error = %error, "store unavailable: serving the route as last read (stale) until it answers");
        }
        crate::metrics::route_served_stale();
        Ok(slot.entry.clone())
    }

    /// Read one route again before its next use (changed or deleted).
    pub fn forget_route(&self, app: &str, path: &str) {
        if let Some(slot) = self
            .entries()
            .slots
            .get_mut(&(app.to_string(), path.to_string()))
        {
            slot.revalidate = true;
        }
    }

    /// Read every route of an app again (its config changed, or it was
    /// deleted).
    pub fn forget_app(&self, app: &str) {
        for ((a, _), slot) in self.entries().slots.iter_mut() {
            if a == app {
                slot.revalidate = true;
            }
        }
    }

    /// Read every route again (changes may have been missed).
    pub fn forget_all(&self) {
        for slot in self.entries().slots.values_mut() {
            slot.revalidate = true;
        }
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

    fn cache() -> RouteCache {
        // A TTL of zero: every lookup asks the store first.
        RouteCache::new(Duration::ZERO, Limiter::new(AppLimits::default()))
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
        let entries = routes.entries();
        assert_eq!(entries.outages, 1, "one outage");
        assert!(entries.in_outage);
        assert_eq!(entries.slots[&("app".into(), "/hello".into())].warned_in, 1);
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
        assert!(routes.entries().slots.is_empty());
        store.close().await;
        let err = routes.get(&store, "app", "/hello").await.err().unwrap();
        assert!(err.is_unavailable(), "nothing left to serve: {err}");
    }
}
