//! Routes that run as Swarm services (a route with a `service` section):
//! their services made to match the routes, adopted after a restart, scaled
//! by the autoscaler, and called through their tasks' addresses.
//!
//! Only a node whose engine is a Swarm manager runs them; on any other
//! node [`ServiceState`] holds the reason, and calls to such routes get a
//! 503 that says it. A route's image need not be a service image: the node
//! derives one from it (see `image`).

pub mod autoscale;
mod call;
mod image;
mod key;
mod meter;
mod missing;
pub mod relay;
mod rollout;
mod scaling;
mod shared_load;
mod stand_in;
pub use call::ServiceError;
mod listing;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferrite_engine::Engine;
use ferrite_model::{App, Millis, Route, ServiceSpec};
use ferrite_store::{Store, StoreError};
use ferrite_swarm::registry::ServiceRegistry;
use ferrite_swarm::{
    self as swarm, Addresses, Balancer, ForwardSettings, Forwarder, ServiceDefinition, Swarm,
    SwarmError, TaskWatcher, WatchSettings,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::changes::Change;
use crate::ServerConfig;
use autoscale::{AutoscaleSettings, Autoscaler, Bounds, Decision};
use key::KeyState;
pub use listing::ServiceView;
use meter::ConcurrencyMeter;

/// Services on this node: running, or why not.
pub type ServiceState = Result<Arc<Services>, Arc<str>>;

/// What the services of this node are made with.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The installation that owns the services (their `org.ferrite.owner`).
    pub owner: String,
    /// The overlay network the tasks join and this node reaches them on.
    pub network: String,
    pub autoscale: AutoscaleSettings,
    /// How long a call waits for a first ready task.
    pub start_wait: Duration,
    /// Sync calls run on this node while the service has no ready task.
    pub stand_in: bool,
    /// Most routes at zero with a container of their image kept ready.
    pub standby: usize,
    /// The image the watchdog of derived service images comes from.
    pub watchdog_image: String,
    /// Where service images are pushed for every node to pull (see `image`).
    pub registry: Option<String>,
}

impl ServiceSettings {
    pub fn from_config(config: &ServerConfig) -> ServiceSettings {
        ServiceSettings {
            owner: config.service_owner.clone(),
            network: config.service_network.clone(),
            autoscale: AutoscaleSettings::with_stable_window(config.autoscale_window),
            start_wait: config.service_start_wait,
            stand_in: config.service_stand_in,
            standby: config.service_standby,
            watchdog_image: config.watchdog_image.clone(),
            registry: config.service_registry.clone(),
        }
    }
}

/// The routes of this node that run as services.
pub struct Services {
    swarm: Swarm,
    watcher: TaskWatcher,
    forwarder: Forwarder,
    store: Arc<dyn Store>,
    /// The node's engine: its follower of image events tells when a
    /// route's image is rebuilt.
    engine: Arc<Engine>,
    settings: ServiceSettings,
    /// The registry service images are pushed to, with its credentials.
    registry: Option<ServiceRegistry>,
    managed: Mutex<HashMap<(String, String), Arc<Managed>>>,
    /// Why the service of a route could not be made, for `GET
    /// /v1/services`, until it is made or the route goes.
    failed: Mutex<HashMap<(String, String), Failure>>,
    /// Every stored route was taken up at start (so that images only
    /// unmanaged routes run are not taken for unused).
    adopted: AtomicBool,
    /// The last removal of unused derived images left some behind.
    unused_left: AtomicBool,
    /// One change of services at a time (an API change, the adoption at
    /// start, a call finding its service missing), so two never race to
    /// create or remove the same service.
    changing: tokio::sync::Mutex<()>,
    /// Load shared with the other nodes, one of which decides; `None` on a
    /// node that decides alone (no Redis, no PostgreSQL).
    shared: Option<shared_load::SharedLoad>,
    /// Owns the scale-ups that calls run on this node start and do not wait
    /// for (see `stand_in`).
    tasks: TaskTracker,
}

/// One route's service as this node runs it.
pub(crate) struct Managed {
    pub name: String,
    pub app: String,
    pub path: String,
    /// The route's image, as the route names it.
    pub image: String,
    /// The id `image` had when the service was made from it.
    source_id: String,
    /// The image the tasks run: `image`, or the one derived from it.
    pub run_image: String,
    /// An update to another `run_image` may still be under way: calls go
    /// only to tasks running the new one until no other is left.
    renewing: AtomicBool,
    pub spec: ServiceSpec,
    /// Hash of the definition the service was made to match.
    hash: String,
    pub balancer: Arc<Balancer>,
    /// In-flight calls, waiting ones included: what the autoscaler samples.
    pub meter: ConcurrencyMeter,
    pub addresses: watch::Receiver<Addresses>,
    control: Mutex<Control>,
    /// The key its watchdog asks of every call, as this node last read it.
    key: Mutex<KeyState>,
    /// Its last rolling update: followed until Swarm ends it, and why it
    /// failed when it did (the service then runs its previous definition).
    rollout: Mutex<rollout::Rollout>,
    /// The route the service was made for, when its calls may run on this
    /// node while the service has no ready task (see `stand_in`).
    local: Option<Route>,
    /// Calls that ran on this node that way since it started managing the
    /// service: with `balancer`'s, the calls of the service.
    ran_here: std::sync::atomic::AtomicU64,
    /// The Swarm nodes that lack `run_image` (no registry; see `missing`).
    missing_on: Mutex<Vec<String>>,
}

/// A route whose service could not be made, and why.
pub(crate) struct Failure {
    pub image: String,
    pub spec: ServiceSpec,
    pub message: String,
}

/// The autoscaler's side of a service.
struct Control {
    autoscaler: Autoscaler,
    /// Replicas asked of Swarm last.
    replicas: u32,
    /// The last decision that changed the replicas, and when.
    last_change: Option<(Decision, Millis)>,
    /// The latest decision, whatever it was.
    latest: Option<Decision>,
    /// The service's load over the nodes at the last tick.
    share: Option<shared_load::Share>,
}

impl Managed {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn missing_on(&self) -> MutexGuard<'_, Vec<String>> {
        self.missing_on.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rollout(&self) -> MutexGuard<'_, rollout::Rollout> {
        self.rollout.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            min: self.spec.min_replicas,
            max: self.spec.max_replicas,
            target: f64::from(self.spec.target_concurrency.max(1)),
            scale_to_zero_after: Duration::from_secs(self.spec.scale_to_zero_after),
        }
    }
}

impl Services {
    /// Connect to the engine as a Swarm manager, make the network, adopt
    /// the services of the stored routes (and remove those whose route is
    /// gone), and start watching tasks and scaling, until `cancel`.
    /// Err holds why this node runs no services.
    pub async fn start(
        config: &ServerConfig,
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> ServiceState {
        let settings = ServiceSettings::from_config(config);
        let connect = config.connect_settings();
        let registry = match image::registry(&settings, config.docker_auth.as_deref()) {
            Ok(registry) => registry,
            Err(e) => return Err(unavailable(&e)),
        };
        let swarm = match Swarm::connect(&connect).await {
            Ok(swarm) => {
                swarm.with_registry_auth(registry.as_ref().and_then(|r| r.credentials.clone()))
            }
            Err(e) => return Err(unavailable(&e)),
        };
        if let Err(e) = swarm.check_manager().await {
            return Err(unavailable(&e));
        }
        let labels = BTreeMap::from([(swarm::labels::OWNER.to_string(), settings.owner.clone())]);
        if let Err(e) = swarm.ensure_network(&settings.network, &labels).await {
            return Err(unavailable(&e));
        }
        let watcher = TaskWatcher::start(
            swarm.clone(),
            settings.network.clone(),
            WatchSettings::default(),
            cancel.clone(),
            tasks,
        );
        let shared = match config.change_bus() {
            Some(bus) => {
                match shared_load::SharedLoad::open(
                    &bus.url,
                    &settings.owner,
                    engine.node_id(),
                    bus.timeout,
                )
                .await
                {
                    Ok(shared) => Some(shared),
                    // Deciding alone beside nodes that share would make two
                    // decisions for one service.
                    Err(e) => {
                        return Err(Arc::from(format!(
                            "this node cannot share its services' load: {e}"
                        )))
                    }
                }
            }
            None => None,
        };
        let services = Arc::new(Services {
            swarm,
            watcher,
            forwarder: Forwarder::new(ForwardSettings::default()),
            store,
            engine,
            settings,
            registry,
            managed: Mutex::default(),
            failed: Mutex::default(),
            adopted: AtomicBool::new(false),
            unused_left: AtomicBool::new(false),
            changing: tokio::sync::Mutex::new(()),
            shared,
            tasks: tasks.clone(),
        });
        services.adopt().await;
        tasks.spawn(services.clone().follow_moves(cancel.clone()));
        tasks.spawn(services.clone().follow_rollouts(cancel.clone()));
        tasks.spawn(services.clone().follow_missing_images(cancel.clone()));
        tasks.spawn(services.clone().autoscale(cancel));
        tracing::info!(network = %services.settings.network, owner = %services.settings.owner, "routes with a service section run as Swarm services");
        Ok(services)
    }

    fn managed(&self) -> MutexGuard<'_, HashMap<(String, String), Arc<Managed>>> {
        self.managed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self) -> MutexGuard<'_, HashMap<(String, String), Failure>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the Swarm match the store: every route with a service section
    /// gets its service (adopted when it exists), and owned services whose
    /// route is gone are removed. Failures are logged: a route whose
    /// service could not be made is made on its first call.
    async fn adopt(&self) {
        let owned = match self.swarm.list_owned(&self.settings.owner).await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this installation's services");
                Vec::new()
            }
        };
        let mut wanted = std::collections::HashSet::new();
        match self.store.list_apps().await {
            Ok(apps) => {
                for app in apps {
                    let routes = match self.store.list_routes(&app.name).await {
                        Ok(routes) => routes,
                        Err(e) => {
                            tracing::warn!(app = %app.name, error = %e, "cannot list routes");
                            continue;
                        }
                    };
                    for route in routes.into_iter().filter(|r| r.service.is_some()) {
                        wanted.insert(swarm::service_name(
                            &self.settings.owner,
                            &app.name,
                            &route.path,
                        ));
                        if let Err(e) = self.ensure(&app, &route).await {
                            tracing::warn!(app = %app.name, path = %route.path, error = %e, "cannot make the route's service");
                        }
                    }
                }
            }
            Err(e) => {
                // Without the routes, nothing can be told orphaned.
                tracing::warn!(error = %e, "cannot list apps: services not adopted");
                return;
            }
        }
        for service in owned.iter().filter(|s| !wanted.contains(&s.name)) {
            tracing::info!(service = %service.name, app = %service.app, path = %service.path, "removing a service whose route is gone");
            if let Err(e) = self.swarm.remove(&service.name).await {
                tracing::warn!(service = %service.name, error = %e, "cannot remove service");
            }
        }
        self.adopted.store(true, Ordering::Release);
        self.remove_unused_images().await;
    }

    /// The service of `route` in plain terms, its tasks running `image`.
    fn definition(&self, app: &App, route: &Route, image: String) -> ServiceDefinition {
        let spec = route.service.clone().unwrap_or_default();
        ServiceDefinition {
            owner: self.settings.owner.clone(),
            app: route.app_name.clone(),
            path: route.path.clone(),
            image,
            port: spec.port,
            memory_mib: route.memory,
            replicas: u64::from(spec.min_replicas),
            env: ferrite_model::contract::route_hot_environment(app, route)
                .into_iter()
                .collect(),
            labels: spec.labels.clone(),
            constraints: spec.constraints.clone(),
            network: self.settings.network.clone(),
            confinement: route.confinement(),
        }
    }

    /// After `route` was created or changed: make its service match it, or
    /// remove its service when it no longer has a service section.
    /// A change tries again an update of the service that failed before.
    pub async fn route_changed(&self, app: &App, route: &Route) -> Result<(), SwarmError> {
        match route.service {
            Some(_) => self
                .ensure_changed(app, route, Retry::Failed)
                .await
                .map(drop),
            None => self.remove(&route.app_name, &route.path).await,
        }
    }

    /// Make `route`'s service match it (create, or a rolling update when it
    /// changed) and manage it; the autoscaler's state survives an update.
    /// Why it failed is kept for the listing until it succeeds.
    async fn ensure(&self, app: &App, route: &Route) -> Result<Arc<Managed>, SwarmError> {
        self.ensure_changed(app, route, Retry::Never).await
    }

    /// [`Services::ensure`]; `retry` says whether an update of the service
    /// that failed before is tried again.
    async fn ensure_changed(
        &self,
        app: &App,
        route: &Route,
        retry: Retry,
    ) -> Result<Arc<Managed>, SwarmError> {
        let key = (route.app_name.clone(), route.path.clone());
        let made = self.make(app, route, retry).await;
        match &made {
            Ok(_) => {
                self.failed().remove(&key);
            }
            Err(e) => {
                tracing::warn!(app = %route.app_name, path = %route.path, error = %e, "the route's service cannot be made");
                self.failed().insert(
                    key,
                    Failure {
                        image: route.image.clone(),
                        spec: route.service.clone().unwrap_or_default(),
                        message: e.to_string(),
                    },
                );
            }
        }
        made
    }

    async fn make(
        &self,
        app: &App,
        route: &Route,
        retry: Retry,
    ) -> Result<Arc<Managed>, SwarmError> {
        let spec = route.service.clone().unwrap_or_default();
        let _changing = self.changing.lock().await;
        let prepared = self.prepare(route).await?;
        let def = self.definition(app, route, prepared.image.clone());
        def.validate()?;
        let hash = def.spec_hash();
        let key = (route.app_name.clone(), route.path.clone());
        let previous = self.managed().get(&key).cloned();
        let retry_failed = |m: &Managed| retry == Retry::Failed && m.rollout().failed.is_some();
        if let Some(m) = previous
            .as_ref()
            .filter(|m| m.hash == hash && !retry_failed(m))
        {
            return Ok(m.clone());
        }
        let renewing = previous
            .as_ref()
            .is_some_and(|m| m.run_image != def.image || m.renewing.load(Ordering::Acquire));
        let ensured = match retry {
            Retry::Failed => self.swarm.ensure_again(&def).await?,
            Retry::Never => self.swarm.ensure(&def).await?,
        };
        let failed_before = ensured.action == swarm::EnsureAction::FailedBefore;
        // An update of a service this node did not manage yet (adopted at
        // start after its image was rebuilt) may be a move to a new image
        // too; when it is not, the first call finds no task of another
        // image and calls go on as usual. After a failed update the tasks
        // run the previous image, and calls go to them.
        let renewing = !failed_before
            && (renewing || (previous.is_none() && ensured.action == swarm::EnsureAction::Updated));
        match &ensured.failed_update {
            Some(why) => {
                tracing::warn!(service = %ensured.name, app = %def.app, path = %def.path, why = %why, "the route's service keeps its previous definition: the update to this one failed before; a change of the route tries it again");
            }
            None => {
                tracing::info!(service = %ensured.name, app = %def.app, path = %def.path, action = ?ensured.action, replicas = ensured.replicas, "service matches its route");
            }
        }
        let rollout = match ensured.action {
            swarm::EnsureAction::Updated => rollout::Rollout::started(Instant::now()),
            _ => rollout::Rollout::settled(ensured.failed_update.clone()),
        };
        let addresses = self.watcher.watch(&ensured.name, def.port);
        self.watcher.changed(&ensured.name);
        let replicas = u32::try_from(ensured.replicas).unwrap_or(u32::MAX);
        let fresh = Autoscaler::new(self.settings.autoscale, Instant::now());
        let control = match previous {
            // An update keeps what the autoscaler learned and its counts.
            Some(old) => {
                let mut old = old.control();
                Control {
                    autoscaler: std::mem::replace(&mut old.autoscaler, fresh),
                    replicas,
                    last_change: old.last_change.take(),
                    latest: old.latest.take(),
                    share: old.share.take(),
                }
            }
            None => Control {
                autoscaler: fresh,
                replicas,
                last_change: None,
                latest: None,
                share: None,
            },
        };
        let local = stand_in::local_route(&self.settings, route, &def.image);
        let managed = Arc::new(Managed {
            name: ensured.name,
            app: def.app,
            path: def.path,
            image: route.image.clone(),
            source_id: prepared.source_id,
            run_image: def.image,
            renewing: AtomicBool::new(renewing),
            spec,
            hash,
            balancer: Balancer::new(),
            meter: ConcurrencyMeter::new(Instant::now()),
            addresses,
            control: Mutex::new(control),
            key: Mutex::new(KeyState {
                key: ensured.key,
                reread: None,
            }),
            rollout: Mutex::new(rollout),
            local,
            ran_here: std::sync::atomic::AtomicU64::new(0),
            missing_on: Mutex::default(),
        });
        self.managed().insert(key, managed.clone());
        self.follow_sources();
        if renewing || prepared.built {
            self.remove_unused_images().await;
        }
        Ok(managed)
    }

    /// Remove the service of a route that is gone or no longer has one.
    pub async fn remove(&self, app: &str, path: &str) -> Result<(), SwarmError> {
        let _changing = self.changing.lock().await;
        let name = swarm::service_name(&self.settings.owner, app, path);
        let key = (app.to_string(), path.to_string());
        self.failed().remove(&key);
        self.managed().remove(&key);
        self.follow_sources();
        self.watcher.unwatch(&name);
        if self.swarm.remove(&name).await? {
            tracing::info!(service = %name, app, path, "service removed with its route");
            self.remove_unused_images().await;
        }
        Ok(())
    }

    /// Remove the services of every route of `app` (the app is gone): those
    /// this node manages and those it has not taken up yet.
    pub async fn remove_app(&self, app: &str) -> Result<(), SwarmError> {
        let mut paths: std::collections::BTreeSet<String> = self
            .managed()
            .keys()
            .filter(|(a, _)| a == app)
            .map(|(_, p)| p.clone())
            .collect();
        let owned = self.swarm.list_owned(&self.settings.owner).await?;
        paths.extend(owned.into_iter().filter(|o| o.app == app).map(|o| o.path));
        for path in paths {
            self.remove(app, &path).await?;
        }
        Ok(())
    }

    /// Make the services of `app`'s routes match them again (the app's
    /// config, which is in their environment, changed).
    pub async fn refresh_app(&self, app: &App) -> Result<(), SwarmError> {
        let routes = match self.store.list_routes(&app.name).await {
            Ok(routes) => routes,
            Err(e) => {
                tracing::warn!(app = %app.name, error = %e, "cannot list routes");
                return Ok(());
            }
        };
        for route in routes.iter().filter(|r| r.service.is_some()) {
            self.ensure_changed(app, route, Retry::Failed).await?;
        }
        Ok(())
    }

    /// Make the services follow the changes made through other nodes (a
    /// worker's node, which makes none, or another manager), until
    /// `cancel`. Only the node that scales the services does, so that two
    /// managers do not race to make the same one; a node that does not
    /// makes a route's service on its first call there.
    pub async fn follow_changes(
        self: Arc<Self>,
        mut heard: tokio::sync::broadcast::Receiver<Change>,
        cancel: CancellationToken,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let change = tokio::select! {
                () = cancel.cancelled() => return,
                change = heard.recv() => match change {
                    Ok(change) => change,
                    Err(RecvError::Lagged(_)) => Change::All,
                    Err(RecvError::Closed) => return,
                },
            };
            if !self.shared.as_ref().is_some_and(|s| s.holds()) {
                continue;
            }
            match change {
                Change::Route { app, path } => self.follow_route(&app, &path).await,
                Change::App { app } => self.follow_app(&app).await,
                Change::All => self.adopt().await,
            }
        }
    }

    async fn follow_route(&self, app: &str, path: &str) {
        let result = match self.store.get_route(app, path).await {
            Ok(route) if route.service.is_some() => match self.store.get_app(app).await {
                Ok(app) => self.route_changed(&app, &route).await,
                Err(e) => {
                    tracing::warn!(app, path, error = %e, "cannot load the app of a service route");
                    return;
                }
            },
            Ok(_) | Err(StoreError::RouteNotFound { .. } | StoreError::AppNotFound(_)) => {
                self.remove(app, path).await
            }
            Err(e) => {
                tracing::warn!(app, path, error = %e, "cannot load a route changed on another node");
                return;
            }
        };
        if let Err(e) = result {
            tracing::warn!(app, path, error = %e, "the route's service does not match it yet");
        }
    }

    async fn follow_app(&self, app: &str) {
        let result = match self.store.get_app(app).await {
            Ok(app) => self.refresh_app(&app).await,
            Err(StoreError::AppNotFound(_)) => self.remove_app(app).await,
            Err(e) => {
                tracing::warn!(app, error = %e, "cannot load an app changed on another node");
                return;
            }
        };
        if let Err(e) = result {
            tracing::warn!(app, error = %e, "the app's services do not match it yet");
        }
    }

    /// The managed service of `route`, made on the spot when this node does
    /// not run it yet (a route created through another node).
    pub(crate) async fn for_route(
        &self,
        app: &App,
        route: &Route,
    ) -> Result<Arc<Managed>, SwarmError> {
        let key = (route.app_name.clone(), route.path.clone());
        let found = self.managed().get(&key).cloned();
        match found {
            Some(managed) => Ok(managed),
            None => self.ensure(app, route).await,
        }
    }
}

/// Whether making a service may try again an update that failed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Its route (or app) was changed: whoever changed it may have fixed
    /// what made the update fail.
    Failed,
    /// An adoption, a call, a rebuilt image: the same definition would
    /// fail the same way.
    Never,
}

fn unavailable(e: &SwarmError) -> Arc<str> {
    tracing::info!(reason = %e, "routes with a service section cannot run on this node");
    Arc::from(format!("this node cannot run Swarm services: {e}"))
}
