//! ferrite-swarm: routes as Docker Swarm services. Ferrite creates a service
//! per route (its tasks serve HTTP on a port), keeps it matching its route,
//! finds the running tasks' addresses on an overlay network, and spreads
//! requests over them.
//!
//! - [`Swarm`]: the services and networks themselves (create, update,
//!   scale, remove, adopt after a restart) through the Engine API.
//! - [`TaskWatcher`]: each watched service's task addresses, kept fresh from
//!   the engine's events and by polling.
//! - [`Balancer`] and [`Forwarder`]: the task with the fewest outstanding
//!   requests, and a request forwarded to it, retried on another task only
//!   when the connection could not be made.
//! - [`WatchdogKey`]: each service's random key, which its watchdog asks of
//!   every call so that only Ferrite can call it.
//! - [`service_image`]: a function image made into one whose watchdog
//!   serves it over HTTP, so that it can run as a service; [`derived`]:
//!   the one a route runs, made from its image and reused; [`registry`]:
//!   pushed where every node can pull it.
//!
//! Swarm's virtual IPs and ingress mesh are never used (they need IPVS,
//! missing on some kernels): services use DNS round robin and Ferrite
//! routes to task addresses it reads from the Swarm API.
//!
//! It stands on ferrite-engine for the connection to the engine and the
//! ownership labels, and knows nothing of the node's own containers, of the
//! store, or of how a call reaches a route: the server decides which routes
//! become services and when.
#![forbid(unsafe_code)]

mod balance;
mod definition;
pub mod derived;
mod engine_get;
mod error;
mod forward;
mod key;
mod network;
pub mod registry;
mod rollout;
pub mod service_image;
mod services;
mod spec;
mod tasks;
mod watch;

use std::sync::Arc;

use bollard::models::LocalNodeState;
use bollard::Docker;

pub use balance::{Balancer, Lease};
pub use definition::{labels, service_name, ServiceDefinition};
pub use error::SwarmError;
pub use forward::{ForwardError, ForwardSettings, Forwarded, Forwarder, LeasedBody};
pub use key::WatchdogKey;
pub use rollout::{UpdateFailure, UpdateProgress};
pub use services::{EnsureAction, Ensured, OwnedService};
pub use tasks::RunningTask;
pub use watch::{Addresses, TaskWatcher, WatchSettings};

use engine_get::EngineGet;
use ferrite_engine::ConnectSettings;

/// A connection to a Swarm manager's Engine API; cheap to clone.
#[derive(Clone)]
pub struct Swarm {
    docker: Docker,
    /// For the requests bollard cannot make (task addresses).
    get: Arc<EngineGet>,
    /// The engine's address, for messages.
    host: String,
    /// Credentials of the registry service images are pushed to, sent with
    /// every create and update so that Swarm gives them to the pulling nodes.
    registry_auth: Option<bollard::auth::DockerCredentials>,
}

impl Swarm {
    /// Connect as the docker CLI would (`DOCKER_HOST`, TLS variables). This
    /// does not check that the engine is a Swarm manager: see
    /// [`check_manager`](Swarm::check_manager).
    pub async fn connect(settings: &ConnectSettings) -> Result<Swarm, SwarmError> {
        let docker = settings.connect().await?;
        let get = EngineGet::new(settings, &docker.client_version())?;
        Ok(Swarm {
            docker,
            get: Arc::new(get),
            host: settings.host().to_string(),
            registry_auth: None,
        })
    }

    /// Fail with a message that says what to do unless the engine is an
    /// active Swarm manager (only managers can run services). Returns the
    /// node's id.
    pub async fn check_manager(&self) -> Result<String, SwarmError> {
        let info = self.docker.info().await?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY);
        if state != LocalNodeState::ACTIVE {
            let state = match state {
                LocalNodeState::EMPTY => "unknown".to_string(),
                other => other.to_string(),
            };
            return Err(SwarmError::NotActive {
                host: self.host.clone(),
                state,
            });
        }
        if swarm.control_available != Some(true) {
            return Err(SwarmError::NotManager {
                host: self.host.clone(),
            });
        }
        Ok(swarm.node_id.unwrap_or_default())
    }

    /// Send `credentials` with every service created or updated, so that
    /// the nodes running its tasks can pull its image from their registry.
    pub fn with_registry_auth(
        mut self,
        credentials: Option<bollard::auth::DockerCredentials>,
    ) -> Swarm {
        self.registry_auth = credentials;
        self
    }

    /// The bollard client, for what this module does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The addresses on `network` of `service`'s tasks that are meant to
    /// run, whatever their state: Swarm gives a task its address when it
    /// schedules it, before its container starts, so a caller waiting for a
    /// first task can probe these and be served the moment the function
    /// listens, without waiting for Swarm to report the task running.
    pub async fn scheduled_addresses(
        &self,
        service: &str,
        network: &str,
    ) -> Result<Vec<std::net::IpAddr>, SwarmError> {
        let by_service = tasks::desired_running(&self.get, &[service.to_string()]).await?;
        Ok(by_service
            .values()
            .flatten()
            .filter_map(|t| t.address_on(network))
            .collect())
    }

    /// The tasks of `service` meant to run, split by whether they run
    /// `image`: the addresses on `network` of those that do (whatever their
    /// state, as [`scheduled_addresses`](Swarm::scheduled_addresses)), and
    /// how many run another image (an update under way).
    pub async fn tasks_of_image(
        &self,
        service: &str,
        network: &str,
        image: &str,
    ) -> Result<(Vec<std::net::IpAddr>, usize), SwarmError> {
        let by_service = tasks::desired_running(&self.get, &[service.to_string()]).await?;
        let (current, other): (Vec<_>, Vec<_>) = by_service
            .values()
            .flatten()
            .partition(|t| t.runs_image(image));
        Ok((
            current
                .into_iter()
                .filter_map(|t| t.address_on(network))
                .collect(),
            other.len(),
        ))
    }

    /// The nodes (hostnames; ids of nodes without one) where tasks of
    /// `service` could not start because the node lacks `image` ("No such
    /// image": it was made on another node and is in no registry).
    pub async fn nodes_lacking_image(
        &self,
        service: &str,
        image: &str,
    ) -> Result<Vec<String>, SwarmError> {
        let tasks = tasks::all_of(&self.get, service).await?;
        let lacking = tasks::nodes_lacking(&tasks, image);
        if lacking.is_empty() {
            return Ok(lacking);
        }
        let nodes = self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await?;
        Ok(lacking
            .into_iter()
            .map(|id| {
                nodes
                    .iter()
                    .find(|n| n.id.as_deref() == Some(id.as_str()))
                    .and_then(|n| n.description.as_ref()?.hostname.clone())
                    .unwrap_or(id)
            })
            .collect())
    }

    /// How many nodes the Swarm has.
    pub async fn node_count(&self) -> Result<usize, SwarmError> {
        Ok(self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await?
            .len())
    }

    /// The tasks of `service` (name or id) that run and are meant to, with
    /// their address on `network` (name or id); tasks without an address
    /// there are left out.
    pub async fn running_tasks(
        &self,
        service: &str,
        network: &str,
    ) -> Result<Vec<RunningTask>, SwarmError> {
        let by_service = tasks::desired_running(&self.get, &[service.to_string()])
            .await
            .map_err(|e| match e {
                SwarmError::Api { status: 404, .. } => SwarmError::NotFound(service.to_string()),
                other => other,
            })?;
        let mut running: Vec<RunningTask> = by_service
            .values()
            .flatten()
            .filter_map(|t| t.running_on(network))
            .collect();
        running.sort_by_key(|t| t.slot);
        Ok(running)
    }
}
