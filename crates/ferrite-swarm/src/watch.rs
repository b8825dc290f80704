//! Each watched service's task addresses, kept fresh in the background.
//!
//! Two sources wake a look at the Swarm: the engine's events (a service
//! created, updated or removed; a task container started or died on this
//! node) and polling, every few seconds normally and fast (250 ms) for a
//! while after a change, until the running tasks match the replicas asked
//! for. Events alone would miss task changes on other nodes; polling alone
//! would be slow or costly. One look covers every watched service in two
//! requests, however many there are.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bollard::models::{EventMessage, EventMessageTypeEnum, ServiceUpdateStatusStateEnum};
use bollard::query_parameters::{EventsOptions, ListServicesOptions};
use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{tasks, Swarm, SwarmError};

/// A service's task addresses (`IP:port` on the overlay network), sorted.
pub type Addresses = Arc<[SocketAddr]>;

/// Swarm labels each task container with its service's name.
const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";
/// Longest pause before following the engine's events again after a failure.
const MAX_EVENTS_BACKOFF: Duration = Duration::from_secs(30);

/// How often the watcher looks.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// When nothing is changing.
    pub poll: Duration,
    /// After a change, until the service settles.
    pub fast_poll: Duration,
    /// Longest fast polling after a change: a service that never settles
    /// (an image that crashes, constraints no node meets) goes back to
    /// normal polling.
    pub fast_for: Duration,
    /// Shortest fast polling after a change: an update is not visible in
    /// the service's status at once, so "settled" right after one means
    /// nothing yet.
    pub fast_at_least: Duration,
}

impl Default for WatchSettings {
    fn default() -> WatchSettings {
        WatchSettings {
            poll: Duration::from_secs(3),
            fast_poll: Duration::from_millis(250),
            fast_for: Duration::from_secs(60),
            fast_at_least: Duration::from_secs(2),
        }
    }
}

/// Keeps the task addresses of the services it is told to watch. Cheap to
/// clone; the background work stops with the cancellation token given to
/// [`start`](TaskWatcher::start).
#[derive(Clone)]
pub struct TaskWatcher {
    inner: Arc<Inner>,
}

struct Inner {
    swarm: Swarm,
    /// The overlay network whose addresses are wanted (name or id).
    network: String,
    settings: WatchSettings,
    services: Mutex<HashMap<String, Watched>>,
    /// Wakes the polling loop at once (an event, a change, a new service).
    wake: Notify,
}

struct Watched {
    /// Port the tasks serve on.
    port: u16,
    addresses: watch::Sender<Addresses>,
    /// Poll fast until the service settles, but not past this.
    fast_until: Option<Instant>,
    /// The last change; fast polling lasts at least `fast_at_least` from it.
    changed_at: Instant,
    /// Whether the last look found running tasks matching the replicas.
    settled: bool,
}

/// A watched service as the engine lists it.
struct Listed {
    id: String,
    replicas: u64,
    /// A rolling update (or its rollback) is under way.
    updating: bool,
}

impl TaskWatcher {
    /// Start following the engine's events and polling, in tasks owned by
    /// `tracker`, until `cancel`. Nothing is watched yet.
    pub fn start(
        swarm: Swarm,
        network: impl Into<String>,
        settings: WatchSettings,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> TaskWatcher {
        let inner = Arc::new(Inner {
            swarm,
            network: network.into(),
            settings,
            services: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        tracker.spawn(inner.clone().poll(cancel.clone()));
        tracker.spawn(inner.clone().follow_events(cancel));
        TaskWatcher { inner }
    }

    /// Keep `service`'s addresses fresh (its tasks serve on `port`), looking
    /// fast until it settles. Watching again updates the port and looks
    /// fast again. Call it once the service exists: a watched service that
    /// does not exist has no address and nothing to wait for.
    pub fn watch(&self, service: &str, port: u16) -> watch::Receiver<Addresses> {
        let now = Instant::now();
        let receiver = {
            let mut services = self.inner.lock();
            let watched = services
                .entry(service.to_string())
                .or_insert_with(|| Watched {
                    port,
                    addresses: watch::Sender::new(Arc::from(Vec::new())),
                    fast_until: None,
                    changed_at: now,
                    settled: false,
                });
            watched.port = port;
            watched.changed_at = now;
            watched.fast_until = Some(now + self.inner.settings.fast_for);
            watched.addresses.subscribe()
        };
        self.inner.wake.notify_one();
        receiver
    }

    /// Stop watching; subscribers see the sender go.
    pub fn unwatch(&self, service: &str) {
        self.inner.lock().remove(service);
    }

    /// `service` was just created, updated or scaled, or a request found a
    /// task gone: look now, and fast until its tasks match its replicas.
    pub fn changed(&self, service: &str) {
        if self.inner.mark_changed(service) {
            self.inner.wake.notify_one();
        }
    }

    /// The service's task addresses now; empty when unknown or not watched.
    pub fn addresses(&self, service: &str) -> Addresses {
        self.inner
            .lock()
            .get(service)
            .map(|w| w.addresses.borrow().clone())
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Follow the service's addresses as they change (to wait for a first
    /// task, say); `None` when it is not watched.
    pub fn subscribe(&self, service: &str) -> Option<watch::Receiver<Addresses>> {
        self.inner
            .lock()
            .get(service)
            .map(|w| w.addresses.subscribe())
    }

    /// Whether the last look found the service's running tasks matching
    /// its replicas, with no update under way.
    pub fn is_settled(&self, service: &str) -> bool {
        self.inner.lock().get(service).is_some_and(|w| w.settled)
    }

    /// Look at every watched service now, without waiting for the loop.
    pub async fn refresh(&self) -> Result<(), SwarmError> {
        self.inner.refresh().await
    }
}

impl Inner {
    /// Every update of the map is a single step, so a poisoned lock is
    /// still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Watched>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fast polling for a watched service; `false` when it is not watched.
    fn mark_changed(&self, service: &str) -> bool {
        let now = Instant::now();
        match self.lock().get_mut(service) {
            Some(w) => {
                w.changed_at = now;
                w.fast_until = Some(now + self.settings.fast_for);
                true
            }
            None => false,
        }
    }

    fn next_wait(&self) -> Duration {
        let now = Instant::now();
        let fast = self
            .lock()
            .values()
            .any(|w| w.fast_until.is_some_and(|until| until > now));
        if fast {
            self.settings.fast_poll
        } else {
            self.settings.poll
        }
    }

    async fn poll(self: Arc<Self>, cancel: CancellationToken) {
        let mut last_error: Option<String> = None;
        loop {
            let wait = self.next_wait();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            match self.refresh().await {
                Ok(()) => {
                    if last_error.take().is_some() {
                        tracing::info!(network = %self.network, "task discovery works again");
                    }
                }
                Err(e) => {
                    // Once per distinct error, not four times a second.
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(network = %self.network, error = %message, "cannot read the services' tasks; trying again");
                    }
                    last_error = Some(message);
                }
            }
        }
    }

    async fn refresh(&self) -> Result<(), SwarmError> {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        if names.is_empty() {
            return Ok(());
        }
        let listed = self.list(&names).await?;
        let ids: Vec<String> = listed.values().map(|l| l.id.clone()).collect();
        let tasks = tasks::desired_running(&self.swarm.get, &ids).await?;
        let now = Instant::now();
        let mut services = self.lock();
        for (name, watched) in services.iter_mut() {
            let (addresses, settled) = match listed.get(name) {
                // Removed (or not created yet): no address, nothing to wait for.
                None => (Vec::new(), true),
                Some(service) => {
                    let service_tasks = tasks.get(&service.id).map(Vec::as_slice).unwrap_or(&[]);
                    let mut addresses: Vec<SocketAddr> = service_tasks
                        .iter()
                        .filter_map(|t| t.running_on(&self.network))
                        .map(|t| SocketAddr::new(t.ip, watched.port))
                        .collect();
                    addresses.sort();
                    addresses.dedup();
                    let pending = service_tasks.iter().any(|t| t.is_pending());
                    let settled = !service.updating
                        && !pending
                        && u64::try_from(addresses.len()).ok() == Some(service.replicas);
                    (addresses, settled)
                }
            };
            let changed = watched.addresses.send_if_modified(|current| {
                if **current == *addresses {
                    return false;
                }
                *current = Arc::from(addresses.as_slice());
                true
            });
            if changed {
                tracing::debug!(service = %name, tasks = addresses.len(), addresses = ?addresses, "task addresses changed");
            }
            watched.settled = settled;
            let past_minimum = now >= watched.changed_at + self.settings.fast_at_least;
            let expired = watched.fast_until.is_some_and(|until| now >= until);
            if (settled && past_minimum) || expired {
                if expired && !settled {
                    tracing::debug!(service = %name, "service did not settle; back to normal polling");
                }
                watched.fast_until = None;
            }
        }
        Ok(())
    }

    /// The watched services that exist, by name, with their replicas.
    async fn list(&self, names: &[String]) -> Result<HashMap<String, Listed>, SwarmError> {
        let options = ListServicesOptions {
            filters: Some(HashMap::from([("name".to_string(), names.to_vec())])),
            status: None,
        };
        let services = self.swarm.docker.list_services(Some(options)).await?;
        Ok(services
            .into_iter()
            .filter_map(|s| {
                let spec = s.spec.unwrap_or_default();
                // The engine's name filter matches prefixes: keep exact names.
                let name = spec.name.clone().filter(|n| names.contains(n))?;
                let updating = matches!(
                    s.update_status.and_then(|u| u.state),
                    Some(
                        ServiceUpdateStatusStateEnum::UPDATING
                            | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                    )
                );
                Some((
                    name,
                    Listed {
                        id: s.id.unwrap_or_default(),
                        replicas: super::spec::replicas(&spec),
                        updating,
                    },
                ))
            })
            .collect())
    }

    /// Follow the engine's events for as long as the watcher lives, again
    /// after any failure (with a growing pause).
    async fn follow_events(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let services = self.swarm.docker.events(Some(EventsOptions {
                filters: Some(HashMap::from([(
                    "type".to_string(),
                    vec!["service".to_string()],
                )])),
                ..Default::default()
            }));
            // Only task containers, and only the moments their task comes
            // or goes (a busy node has many other container events).
            let containers = self.swarm.docker.events(Some(EventsOptions {
                filters: Some(HashMap::from([
                    ("type".to_string(), vec!["container".to_string()]),
                    (
                        "event".to_string(),
                        vec!["start".to_string(), "die".to_string()],
                    ),
                    ("label".to_string(), vec![SERVICE_NAME_LABEL.to_string()]),
                ])),
                ..Default::default()
            }));
            let mut events = futures_util::stream::select(services, containers);
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = events.next() => next,
                };
                match next {
                    Some(Ok(event)) => {
                        backoff = Duration::from_secs(1);
                        self.on_event(&event);
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "engine events interrupted; following them again");
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_EVENTS_BACKOFF);
            // Events may have been missed meanwhile.
            self.wake.notify_one();
        }
    }

    fn on_event(&self, event: &EventMessage) {
        let attributes = event.actor.as_ref().and_then(|a| a.attributes.as_ref());
        let key = match event.typ {
            Some(EventMessageTypeEnum::SERVICE) => "name",
            Some(EventMessageTypeEnum::CONTAINER) => SERVICE_NAME_LABEL,
            _ => return,
        };
        let Some(service) = attributes.and_then(|a| a.get(key)) else {
            return;
        };
        if self.mark_changed(service) {
            tracing::trace!(service = %service, action = ?event.action, "engine event");
            self.wake.notify_one();
        }
    }
}
