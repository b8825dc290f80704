//! Calls to routes served as services, on a node whose engine is a Swarm
//! worker. The stack runs a Ferrite on every node and HAProxy spreads calls
//! over all of them, but only a manager's engine can make services or list
//! their tasks. A worker's node calls the tasks itself, with what it can
//! learn without a manager's engine:
//!
//! - the tasks' addresses from Docker's DNS on the services' network, which
//!   this node is on (`tasks.<service>`), read again every second while the
//!   service is called, and at once when a call finds none;
//! - the service's watchdog key from the decisions the autoscaler's lease
//!   holder publishes in the shared state (Redis or PostgreSQL, which the
//!   functions cannot reach);
//! - its calls in flight published with every node's load, so the holder
//!   scales the service from all of it; a call that finds no task publishes
//!   at once rather than at the next second, and the holder scales the
//!   service up from zero.
//!
//! A worker never makes, updates or removes a service: the holder follows
//! the changes made through any node ([`super::Services::follow_changes`]).
//! Nor does it run a call itself while a service has no task, or send calls
//! only to the new tasks of an update under way: a manager does both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use ferrite_engine::Timings;
use ferrite_model::Route;
use ferrite_queue::shared::Shared;
use ferrite_swarm::{
    self as swarm, Addresses, Balancer, ForwardSettings, Forwarder, Swarm, SwarmError, WatchdogKey,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::call::{answer_by, forward_with_key, probe, ServiceError, PROBE_PAUSE};
use super::meter::ConcurrencyMeter;
use super::shared_load::{to_next_second, Published};
use crate::ServerConfig;

/// A service not called for this long is forgotten here: its load is no
/// longer published, its tasks no longer looked up.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// Shortest time between two rounds a call asked for (a call finding no
/// task or no key): a burst of such calls makes one round, not one each.
const WOKEN_PAUSE: Duration = Duration::from_millis(200);

/// Why a worker's node lists no service (`GET /v1/services`).
pub const LISTED_BY_MANAGERS: &str = "this node's engine is a Swarm worker: it calls the tasks of service routes, and a manager's node makes, scales and lists their services";

/// The service calls of a worker's node.
pub struct Relay {
    shared: Shared,
    owner: String,
    forwarder: Forwarder,
    start_wait: Duration,
    relayed: Mutex<HashMap<String, Arc<Relayed>>>,
    /// A call found no task or no key: publish and read now.
    wake: Notify,
    /// The last exchange with the shared state failed: logged once.
    broken: AtomicBool,
}

/// One service as this node calls it.
struct Relayed {
    name: String,
    port: u16,
    balancer: Arc<Balancer>,
    meter: ConcurrencyMeter,
    /// Its tasks, as the last look-up found them.
    addresses: Mutex<Addresses>,
    /// Its watchdog key, as the holder last published it.
    key: Mutex<Option<WatchdogKey>>,
    last_call: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Relayed {
    fn new(name: &str, port: u16, key: Option<WatchdogKey>) -> Arc<Relayed> {
        Arc::new(Relayed {
            name: name.to_string(),
            port,
            balancer: Balancer::new(),
            meter: ConcurrencyMeter::new(Instant::now()),
            addresses: Mutex::new(Arc::from(Vec::new())),
            key: Mutex::new(key),
            last_call: Mutex::new(Instant::now()),
        })
    }

    fn addresses(&self) -> Addresses {
        lock(&self.addresses).clone()
    }

    fn key(&self) -> Option<WatchdogKey> {
        lock(&self.key).clone()
    }
}

impl Relay {
    /// The relay of a node whose engine is a Swarm worker and which shares
    /// state with the others (Redis or PostgreSQL); `None` on any other
    /// node (a manager runs services itself; a node outside a Swarm, or
    /// alone on SQLite, has no service to call).
    pub async fn start(
        config: &ServerConfig,
        node: &str,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Option<Arc<Relay>> {
        let bus = config.change_bus()?;
        let swarm = Swarm::connect(&config.connect_settings()).await.ok()?;
        match swarm.check_manager().await {
            Err(SwarmError::NotManager { .. }) => {}
            _ => return None,
        }
        let owner = config.service_owner.clone();
        let shared = match Shared::open(&bus.url, &owner, node, bus.timeout).await {
            Ok(shared) => shared,
            Err(e) => {
                tracing::warn!(error = %e, "a worker's node cannot reach the shared state: it calls no service route");
                return None;
            }
        };
        let relay = Arc::new(Relay {
            shared,
            owner,
            forwarder: Forwarder::new(ForwardSettings::default()),
            start_wait: config.service_start_wait,
            relayed: Mutex::default(),
            wake: Notify::new(),
            broken: AtomicBool::new(false),
        });
        tasks.spawn(relay.clone().rounds(cancel));
        tracing::info!(server = relay.shared.server(), "this node's engine is a Swarm worker: calls to service routes go to their tasks, found by DNS, scaled by a manager");
        Some(relay)
    }

    fn relayed(&self, name: &str, port: u16) -> Arc<Relayed> {
        let mut relayed = lock(&self.relayed);
        let entry = relayed
            .entry(name.to_string())
            .or_insert_with(|| Relayed::new(name, port, None));
        // The route's port changed: what was found at the old one is not it.
        if entry.port != port {
            *entry = Relayed::new(name, port, entry.key());
        }
        entry.clone()
    }

    /// Run `request` (its target the route's path) on `route`'s service and
    /// answer with its task's response, and how long its phases took, as
    /// [`super::Services::call`] does on a manager.
    pub(crate) async fn call(
        &self,
        route: &Route,
        request: Request<Bytes>,
    ) -> Result<(Response<Body>, Timings), ServiceError> {
        let mut timings = Timings::default();
        let deadline = Instant::now() + Duration::from_secs(route.timeout);
        let wait_until = (Instant::now() + self.start_wait).min(deadline);
        let port = route.service.as_ref().map(|s| s.port).unwrap_or_default();
        let name = swarm::service_name(&self.owner, &route.app_name, &route.path);
        let relayed = self.relayed(&name, port);
        *lock(&relayed.last_call) = Instant::now();
        let _in_flight = relayed.meter.enter();
        let not_ready = || ServiceError::NotReady {
            service: name.clone(),
            waited_s: self.start_wait.as_secs(),
        };
        // Tasks that answer, found now when none was known.
        let mut ready: Option<Addresses> = None;
        if relayed.addresses().is_empty() {
            timings.cold_start = true;
            let waiting = Instant::now();
            // This node's load, published now, scales the service from zero.
            self.wake.notify_one();
            loop {
                let found = resolve(&name, port).await;
                let up = probe(&found).await;
                if !up.is_empty() {
                    *lock(&relayed.addresses) = Arc::from(found);
                    ready = Some(Arc::from(up));
                    break;
                }
                if Instant::now() + PROBE_PAUSE >= wait_until {
                    return Err(not_ready());
                }
                tokio::time::sleep(PROBE_PAUSE).await;
            }
            timings.container = waiting.elapsed();
        }
        let key = loop {
            if let Some(key) = relayed.key() {
                break key;
            }
            self.wake.notify_one();
            if Instant::now() + PROBE_PAUSE >= wait_until {
                return Err(ServiceError::Unpublished { service: name });
            }
            tokio::time::sleep(PROBE_PAUSE).await;
        };
        let addresses = || match &ready {
            Some(ready) => ready.clone(),
            None => relayed.addresses(),
        };
        // The service was made again with a new key: once the holder
        // publishes it, the call goes again.
        let fresh = || async {
            self.wake.notify_one();
            tokio::time::sleep(WOKEN_PAUSE * 2).await;
            relayed.key().filter(|fresh| *fresh != key)
        };
        let call = forward_with_key(
            &self.forwarder,
            &relayed.balancer,
            &addresses,
            &request,
            &key,
            fresh,
        );
        answer_by(deadline, &name, timings, call).await
    }

    /// Every second (on the second, as every node publishes), and when a
    /// call asks: publish this node's load, read the holder's keys, look the
    /// tasks up again.
    async fn rounds(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let woken = tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(to_next_second()) => false,
                () = self.wake.notified() => true,
            };
            self.round(woken).await;
            if woken {
                tokio::time::sleep(WOKEN_PAUSE).await;
            }
        }
    }

    async fn round(&self, woken: bool) {
        let now = Instant::now();
        let relayed: Vec<Arc<Relayed>> = {
            let mut relayed = lock(&self.relayed);
            relayed.retain(|_, r| {
                r.meter.in_flight() > 0 || now.duration_since(*lock(&r.last_call)) < FORGET_AFTER
            });
            relayed.values().cloned().collect()
        };
        let loads: Vec<(String, f64)> = relayed
            .iter()
            .map(|r| {
                let average = r.meter.take_average(now);
                // Asked by a call: what waits now counts in full, so that
                // the holder's next look scales the service from zero.
                let waiting = if woken {
                    r.meter.in_flight() as f64
                } else {
                    0.0
                };
                (r.name.clone(), average.max(waiting))
            })
            .collect();
        let exchanged = async {
            self.shared.publish_loads(&loads).await?;
            self.shared.decisions().await
        };
        match exchanged.await {
            Ok(decisions) => {
                if self.broken.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        server = self.shared.server(),
                        "the shared state answers again"
                    );
                }
                for r in &relayed {
                    let key = decisions
                        .get(&r.name)
                        .and_then(|text| serde_json::from_str::<Published>(text).ok())
                        .and_then(|p| p.key);
                    // A holder that is gone publishes nothing for a while:
                    // the key known stays.
                    if let Some(key) = key {
                        *lock(&r.key) = Some(key);
                    }
                }
            }
            Err(e) => {
                if !self.broken.swap(true, Ordering::Relaxed) {
                    tracing::warn!(server = self.shared.server(), error = %e, "cannot share this node's service calls: the services are not scaled from them until it can");
                }
            }
        }
        let lookups = relayed.iter().map(|r| async move {
            let found = resolve(&r.name, r.port).await;
            *lock(&r.addresses) = Arc::from(found);
        });
        futures_util::future::join_all(lookups).await;
    }
}

/// The addresses Docker's DNS gives for the tasks of service `name` on the
/// networks this node shares with it; none when it has no task (or this
/// node is on no network of it).
async fn resolve(name: &str, port: u16) -> Vec<SocketAddr> {
    match tokio::net::lookup_host((format!("tasks.{name}"), port)).await {
        Ok(found) => {
            let mut found: Vec<SocketAddr> = found.collect();
            found.sort();
            found.dedup();
            found
        }
        Err(e) => {
            tracing::debug!(service = name, error = %e, "no task address found");
            Vec::new()
        }
    }
}
