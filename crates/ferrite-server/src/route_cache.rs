//! Routes and their apps as the invoke path needs them, cached for a short
//! time: a call should not cost two database reads. Changes drop their
//! entries at once (see `changes`); the TTL bounds staleness when a change
//! message is lost or there is no change bus.
//!
//! Each entry carries its app's limits [`Gate`], so a call is admitted
//! without another lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrite_model::{App, Route};
use ferrite_store::{Store, StoreError};

use crate::limits::{Gate, Limiter};

/// Entries kept at most; past it the cache starts over (simple and bounded).
const CAPACITY: usize = 10_000;

type Key = (String, String);
/// A route with its app, shared by the calls that use it.
pub type Entry = Arc<Cached>;
type Entries = HashMap<Key, (Instant, Entry)>;

/// What a call needs of its route.
pub struct Cached {
    pub route: Route,
    pub app: App,
    /// The app's limits and counts on this node.
    pub gate: Arc<Gate>,
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

    /// The route and its app, from the cache or the store.
    pub async fn get(&self, store: &dyn Store, app: &str, path: &str) -> Result<Entry, StoreError> {
        let key = (app.to_string(), path.to_string());
        if let Some((at, entry)) = self.entries().get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(entry.clone());
            }
        }
        let route = store.get_route(app, path).await?;
        let app_record = store.get_app(app).await?;
        let gate = self.limiter.gate(&app_record);
        let entry = Arc::new(Cached {
            route,
            app: app_record,
            gate,
        });
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), entry.clone()));
        Ok(entry)
    }

    /// Forget one route (changed or deleted through this node).
    pub fn forget_route(&self, app: &str, path: &str) {
        self.entries().remove(&(app.to_string(), path.to_string()));
    }

    /// Forget every route of an app (its config changed, or it was deleted).
    pub fn forget_app(&self, app: &str) {
        self.entries().retain(|(a, _), _| a != app);
    }

    /// Forget everything (changes may have been missed).
    pub fn forget_all(&self) {
        self.entries().clear();
    }
}
