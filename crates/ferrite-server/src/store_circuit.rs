//! A circuit breaker in front of the store, so that a database that is away
//! costs its timeout once, not once per request.
//!
//! While the store answers, every call goes through. The first call that
//! fails because the database cannot be reached ([`StoreError::is_unavailable`])
//! opens the circuit: from then on every call fails at once with
//! [`StoreError::Unavailable`] (a 503 on `/v1`; the route cache serves what
//! it knows; the history keeps its records in memory), and one probe, never
//! more, asks the database every [`PROBE_EVERY`] whether it is back. The
//! first answer closes the circuit. Calls already waiting on the database
//! when it went away still wait out their pool timeout (`FERRITE_DB_TIMEOUT`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferrite_model::{ApiKey, App, AppInput, Call, Route, RouteInput, RouteVersion};
use ferrite_store::{
    CallFilter, CallUpdate, KeyBounds, RecordedCall, Schedule, Schedules, Store, StoreError,
    StoredKey,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Pause between two probes of an absent database (each probe itself waits
/// up to the pool's timeout for a connection).
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The store, behind the circuit.
pub struct StoreCircuit {
    inner: Arc<dyn Store>,
    /// Whether calls go through; read on every call, so an atomic.
    up: AtomicBool,
    /// Since when the store is away, and why (for the log and the errors).
    down: Mutex<Option<Outage>>,
    /// Wakes the probe when the circuit opens.
    opened: Notify,
}

struct Outage {
    since: Instant,
    cause: String,
}

impl StoreCircuit {
    pub fn new(inner: Arc<dyn Store>) -> Arc<StoreCircuit> {
        crate::metrics::store_up(true);
        Arc::new(StoreCircuit {
            inner,
            up: AtomicBool::new(true),
            down: Mutex::default(),
            opened: Notify::new(),
        })
    }

    fn down(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `call` unless the store is known to be away; open the circuit
    /// when it finds the store away.
    async fn guard<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.up.load(Ordering::Acquire) {
            let cause = self.down().as_ref().map(|o| o.cause.clone());
            return Err(StoreError::Unavailable(cause.unwrap_or_default()));
        }
        let result = call.await;
        if let Err(e) = &result {
            if e.is_unavailable() {
                self.open(e);
            }
        }
        result
    }

    fn open(&self, cause: &StoreError) {
        let mut down = self.down();
        if down.is_some() {
            return;
        }
        *down = Some(Outage {
            since: Instant::now(),
            cause: cause.to_string(),
        });
        self.up.store(false, Ordering::Release);
        crate::metrics::store_up(false);
        tracing::warn!(error = %cause, "the store is unavailable: known routes are served from the cache, call records wait in memory, management requests answer 503 until it answers again");
        self.opened.notify_one();
    }

    /// Open the circuit as a failed call would (for tests elsewhere).
    #[cfg(test)]
    pub fn open_for_test(&self) {
        self.open(&StoreError::Unavailable("test".into()));
    }

    fn close(&self) {
        let Some(outage) = self.down().take() else {
            return;
        };
        self.up.store(true, Ordering::Release);
        crate::metrics::store_up(true);
        let down_ms = u64::try_from(outage.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(down_ms, "the store answers again");
    }

    /// While the circuit is open, ask the store whether it is back, one
    /// probe at a time, until `cancel`.
    pub async fn probe(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.opened.notified() => {}
            }
            while !self.up.load(Ordering::Acquire) {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                }
                match self.inner.ping().await {
                    Ok(()) => self.close(),
                    Err(e) => tracing::debug!(error = %e, "the store is still unavailable"),
                }
            }
        }
    }
}

#[async_trait]
impl Schedules for StoreCircuit {
    async fn create_schedule(&self, schedule: &Schedule, max: u32) -> Result<(), StoreError> {
        self.guard(self.inner.create_schedule(schedule, max)).await
    }
    async fn get_schedule(&self, app: &str, id: &str) -> Result<Schedule, StoreError> {
        self.guard(self.inner.get_schedule(app, id)).await
    }
    async fn list_schedules(&self, app: &str) -> Result<Vec<Schedule>, StoreError> {
        self.guard(self.inner.list_schedules(app)).await
    }
    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.guard(self.inner.update_schedule(schedule)).await
    }
    async fn delete_schedule(&self, app: &str, id: &str) -> Result<(), StoreError> {
        self.guard(self.inner.delete_schedule(app, id)).await
    }
    async fn due_schedules(&self, now_ms: i64, limit: u32) -> Result<Vec<Schedule>, StoreError> {
        self.guard(self.inner.due_schedules(now_ms, limit)).await
    }
    async fn advance_schedule(
        &self,
        id: &str,
        from_ms: i64,
        to_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.guard(self.inner.advance_schedule(id, from_ms, to_ms))
            .await
    }
}

#[async_trait]
impl Store for StoreCircuit {
    async fn create_app(&self, app: &App) -> Result<(), StoreError> {
        self.guard(self.inner.create_app(app)).await
    }
    async fn get_app(&self, name: &str) -> Result<App, StoreError> {
        self.guard(self.inner.get_app(name)).await
    }
    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.guard(self.inner.list_apps()).await
    }
    async fn update_app(&self, name: &str, patch: AppInput) -> Result<App, StoreError> {
        self.guard(self.inner.update_app(name, patch)).await
    }
    async fn delete_app(&self, name: &str, cascade: bool) -> Result<(), StoreError> {
        self.guard(self.inner.delete_app(name, cascade)).await
    }
    async fn create_route(&self, route: &Route) -> Result<(), StoreError> {
        self.guard(self.inner.create_route(route)).await
    }
    async fn get_route(&self, app: &str, path: &str) -> Result<Route, StoreError> {
        self.guard(self.inner.get_route(app, path)).await
    }
    async fn list_routes(&self, app: &str) -> Result<Vec<Route>, StoreError> {
        self.guard(self.inner.list_routes(app)).await
    }
    async fn update_route(
        &self,
        app: &str,
        path: &str,
        patch: RouteInput,
    ) -> Result<Route, StoreError> {
        self.guard(self.inner.update_route(app, path, patch)).await
    }
    async fn delete_route(&self, app: &str, path: &str) -> Result<(), StoreError> {
        self.guard(self.inner.delete_route(app, path)).await
    }
    async fn list_route_versions(
        &self,
        app: &str,
        path: &str,
    ) -> Result<Vec<RouteVersion>, StoreError> {
        self.guard(self.inner.list_route_versions(app, path)).await
    }
    async fn get_route_version(
        &self,
        app: &str,
        path: &str,
        version: u32,
    ) -> Result<RouteVersion, StoreError> {
        self.guard(self.inner.get_route_version(app, path, version))
            .await
    }
    async fn insert_call(&self, call: &Call) -> Result<(), StoreError> {
        self.guard(self.inner.insert_call(call)).await
    }
    async fn insert_calls(&self, calls: &[Call]) -> Result<(), StoreError> {
        self.guard(self.inner.insert_calls(calls)).await
    }
    async fn record_calls(&self, calls: &[RecordedCall]) -> Result<u64, StoreError> {
        self.guard(self.inner.record_calls(calls)).await
    }
    async fn update_call(&self, id: &str, update: &CallUpdate<'_>) -> Result<Call, StoreError> {
        self.guard(self.inner.update_call(id, update)).await
    }
    async fn get_call(&self, app: &str, id: &str) -> Result<Call, StoreError> {
        self.guard(self.inner.get_call(app, id)).await
    }
    async fn find_call(&self, id: &str) -> Result<Call, StoreError> {
        self.guard(self.inner.find_call(id)).await
    }
    async fn call_output(&self, app: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard(self.inner.call_output(app, id)).await
    }
    async fn list_calls(&self, app: &str, filter: CallFilter) -> Result<Vec<Call>, StoreError> {
        self.guard(self.inner.list_calls(app, filter)).await
    }
    async fn put_call_log(&self, id: &str, log: &[u8]) -> Result<(), StoreError> {
        self.guard(self.inner.put_call_log(id, log)).await
    }
    async fn dead_letter(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError> {
        self.guard(self.inner.dead_letter(app, id)).await
    }
    async fn delete_dead_letter(&self, app: &str, id: &str) -> Result<(), StoreError> {
        self.guard(self.inner.delete_dead_letter(app, id)).await
    }
    async fn get_call_log(&self, app: &str, id: &str) -> Result<Vec<u8>, StoreError> {
        self.guard(self.inner.get_call_log(app, id)).await
    }
    async fn count_queued_calls(&self, app: &str) -> Result<u64, StoreError> {
        self.guard(self.inner.count_queued_calls(app)).await
    }
    async fn purge_calls(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        self.guard(self.inner.purge_calls(older_than_ms)).await
    }
    async fn create_key(
        &self,
        key: &ApiKey,
        secret_hash: &[u8],
        bounds: KeyBounds,
    ) -> Result<(), StoreError> {
        self.guard(self.inner.create_key(key, secret_hash, bounds))
            .await
    }
    async fn get_key(&self, id: &str) -> Result<StoredKey, StoreError> {
        self.guard(self.inner.get_key(id)).await
    }
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.guard(self.inner.list_keys()).await
    }
    async fn delete_key(&self, id: &str) -> Result<(), StoreError> {
        self.guard(self.inner.delete_key(id)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.guard(self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_store::sqlite::SqliteStore;

    /// A real store whose pool is closed: every query fails as a database
    /// that went away does.
    async fn closed_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let store = Arc::new(SqliteStore::open(&url).await.unwrap());
        (dir, store)
    }

    #[tokio::test]
    async fn opens_on_an_unreachable_store_and_fails_fast_then() {
        let (_dir, store) = closed_store().await;
        let circuit = StoreCircuit::new(store.clone());
        assert!(circuit.list_apps().await.is_ok());
        store.close().await;
        let first = circuit.list_apps().await.unwrap_err();
        assert!(first.is_unavailable(), "{first}");
        assert!(!circuit.up.load(Ordering::Acquire));
        // Now nothing reaches the store: the answer says it is unavailable.
        let next = circuit.get_app("a").await.unwrap_err();
        assert!(matches!(next, StoreError::Unavailable(_)), "{next}");
        assert!(next.to_string().contains("closed"), "{next}");
    }

    #[tokio::test]
    async fn a_refusal_leaves_it_closed() {
        let (_dir, store) = closed_store().await;
        let circuit = StoreCircuit::new(store);
        let err = circuit.get_app("missing").await.unwrap_err();
        assert!(matches!(err, StoreError::AppNotFound(_)));
        assert!(circuit.up.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn the_probe_closes_it_once_the_store_answers() {
        let (_dir, store) = closed_store().await;
        let circuit = StoreCircuit::new(store);
        circuit.open_for_test();
        assert!(circuit.get_app("a").await.is_err());
        let cancel = CancellationToken::new();
        let probe = tokio::spawn(circuit.clone().probe(cancel.clone()));
        let mut waited = 0;
        while !circuit.up.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
            assert!(waited < 200, "the probe never closed the circuit");
        }
        assert!(circuit.list_apps().await.is_ok());
        cancel.cancel();
        probe.await.unwrap();
    }
}
