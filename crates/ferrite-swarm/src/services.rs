//! The lifecycle of a route's service: made to match its definition
//! (created, or updated in place by a rolling update), scaled, listed for
//! adoption after a restart, removed.

use std::collections::HashMap;

use bollard::models::{NodeState, Service};
use bollard::query_parameters::{
    InspectServiceOptions, ListNodesOptions, ListServicesOptions, UpdateServiceOptions,
};

use super::definition::{labels, ServiceDefinition};
use super::error::{is_conflict, is_not_found, is_out_of_sequence};
use super::{rollout, spec, Swarm, SwarmError, WatchdogKey};

/// What [`Swarm::ensure`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureAction {
    Created,
    /// The definition changed: a rolling update, replicas kept.
    Updated,
    /// The service already matches its definition.
    Unchanged,
    /// An update to this very definition failed before and Swarm restored
    /// the service's previous one, which it keeps: see
    /// [`Ensured::failed_update`].
    FailedBefore,
}

/// A service made to match its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub name: String,
    pub id: String,
    pub action: EnsureAction,
    /// The service's replica count: the definition's when created, the
    /// current one otherwise.
    pub replicas: u64,
    /// The key its watchdog asks of every call: made with the service, then
    /// read back from its spec.
    pub key: WatchdogKey,
    /// Why the update to the definition failed, when it did before
    /// ([`EnsureAction::FailedBefore`]).
    pub failed_update: Option<String>,
}

/// A service of an owner, as found on the Swarm: what the server needs to
/// adopt it (or to remove it when its route is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedService {
    pub name: String,
    pub id: String,
    pub app: String,
    pub path: String,
    /// Hash of the definition it was made from ([`ServiceDefinition::spec_hash`]).
    pub spec_hash: String,
    /// Port its tasks serve on, when the label is readable.
    pub port: Option<u16>,
    /// Replicas asked for.
    pub replicas: u64,
    /// Tasks running now, as Swarm counts them.
    pub running: u64,
    /// The service's version index (changes with every update).
    pub version: u64,
    /// The image its tasks run.
    pub image: String,
    /// The state of its last rolling update (`updating`, `completed`,
    /// `rollback_completed`, ...), `None` when it was never updated. After a
    /// failed update Swarm rolls the whole spec back, labels included, so
    /// the service shows the old definition's hash again: a server that
    /// sees `rollback_completed` knows that ensuring the new definition again
    /// would only repeat the failure.
    pub update_state: Option<String>,
}

/// One retry after a race with another writer (a node creating the same
/// service, the autoscaler scaling it during an update).
const ATTEMPTS: usize = 2;

impl Swarm {
    /// Make the route's service match `def`: create it if missing, update it
    /// (a rolling update, start-first) when its definition changed, keeping
    /// the replica count the autoscaler set; nothing when it already matches.
    /// A service of the same name that `def.owner` does not own is refused.
    ///
    /// A new service gets a new watchdog key; an existing one keeps its own
    /// through the update (one made before keys existed gets one, which is
    /// an update even when its definition is unchanged).
    ///
    /// A definition whose update failed before (the service carries the
    /// failure's mark for its hash, [`Swarm::mark_failed`]) is not tried
    /// again: the service is left as Swarm restored it and the answer says
    /// why ([`EnsureAction::FailedBefore`]). [`Swarm::ensure_again`] tries it.
    pub async fn ensure(&self, def: &ServiceDefinition) -> Result<Ensured, SwarmError> {
        self.ensure_with(def, false).await
    }

    /// [`Swarm::ensure`], trying again a definition whose update failed
    /// before (its route was changed since, by someone who may have fixed
    /// what made it fail).
    pub async fn ensure_again(&self, def: &ServiceDefinition) -> Result<Ensured, SwarmError> {
        self.ensure_with(def, true).await
    }

    async fn ensure_with(
        &self,
        def: &ServiceDefinition,
        retry_failed: bool,
    ) -> Result<Ensured, SwarmError> {
        def.validate()?;
        let name = def.service_name();
        let hash = def.spec_hash();
        let cpu_ceiling = match def.confinement.cpus {
            Some(_) => self.smallest_node_nano_cpus().await?,
            None => None,
        };
        for attempt in 1..=ATTEMPTS {
            let Some(service) = self.inspect(&name).await? else {
                let key = new_key()?;
                match self
                    .docker
                    .create_service(
                        spec::build(def, def.replicas, &key, cpu_ceiling),
                        self.registry_auth.clone(),
                    )
                    .await
                {
                    Ok(created) => {
                        let id = created.id.unwrap_or_default();
                        for warning in created.warnings.unwrap_or_default() {
                            tracing::debug!(service = %name, %warning, "swarm warning on create");
                        }
                        tracing::info!(service = %name, id = %id, app = %def.app, path = %def.path, image = %def.image, replicas = def.replicas, "service created");
                        return Ok(Ensured {
                            name,
                            id,
                            action: EnsureAction::Created,
                            replicas: def.replicas,
                            key,
                            failed_update: None,
                        });
                    }
                    // Another node created it meanwhile: look again.
                    Err(e) if is_conflict(&e) && attempt < ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            check_owner(&service, &name, &def.owner)?;
            let current = service.spec.clone().unwrap_or_default();
            let replicas = spec::replicas(&current);
            let id = service.id.clone().unwrap_or_default();
            let found_hash = current
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::SPEC))
                .map(String::as_str);
            let found_key = key_of(&current);
            if let (Some(key), Some(true)) = (&found_key, found_hash.map(|h| h == hash)) {
                return Ok(Ensured {
                    name,
                    id,
                    action: EnsureAction::Unchanged,
                    replicas,
                    key: key.clone(),
                    failed_update: None,
                });
            }
            if let (Some(key), Some(why), false) = (
                &found_key,
                rollout::failed_for(&current, &hash),
                retry_failed,
            ) {
                tracing::debug!(service = %name, %why, "not trying again an update that failed");
                return Ok(Ensured {
                    name,
                    id,
                    action: EnsureAction::FailedBefore,
                    replicas,
                    key: key.clone(),
                    failed_update: Some(why),
                });
            }
            let key = match found_key {
                Some(key) => key,
                None => new_key()?,
            };
            let options = update_options(&service, &name)?;
            match self
                .docker
                .update_service(
                    &name,
                    spec::build(def, replicas, &key, cpu_ceiling),
                    options,
                    self.registry_auth.clone(),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(service = %name, app = %def.app, path = %def.path, image = %def.image, replicas, "service updated");
                    return Ok(Ensured {
                        name,
                        id,
                        action: EnsureAction::Updated,
                        replicas,
                        key,
                        failed_update: None,
                    });
                }
                Err(e) if is_out_of_sequence(&e) && attempt < ATTEMPTS => {
                    tracing::debug!(service = %name, "service changed during its update; trying again");
                }
                Err(e) if is_out_of_sequence(&e) => return Err(SwarmError::Conflict(name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(SwarmError::Conflict(name))
    }

    /// Set a service's replica count (the autoscaler's decision), leaving the
    /// rest of its spec as it is. Nothing is sent when it already has that
    /// count. Retried once when the service changed in between.
    pub async fn scale(&self, name: &str, replicas: u64) -> Result<(), SwarmError> {
        if i64::try_from(replicas).is_err() {
            return Err(SwarmError::Invalid(format!("{replicas} replicas")));
        }
        for attempt in 1..=ATTEMPTS {
            let service = self
                .inspect(name)
                .await?
                .ok_or_else(|| SwarmError::NotFound(name.to_string()))?;
            let mut current = service.spec.clone().unwrap_or_default();
            let before = spec::replicas(&current);
            if before == replicas {
                return Ok(());
            }
            spec::set_replicas(&mut current, replicas);
            let options = update_options(&service, name)?;
            match self
                .docker
                .update_service(name, current, options, None)
                .await
            {
                Ok(_) => {
                    tracing::info!(service = %name, from = before, to = replicas, "service scaled");
                    return Ok(());
                }
                Err(e) if is_out_of_sequence(&e) && attempt < ATTEMPTS => {
                    tracing::debug!(service = %name, "service changed while scaling; trying again");
                }
                Err(e) if is_out_of_sequence(&e) => {
                    return Err(SwarmError::Conflict(name.to_string()))
                }
                Err(e) if is_not_found(&e) => return Err(SwarmError::NotFound(name.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        Err(SwarmError::Conflict(name.to_string()))
    }

    /// Remove a service (Swarm stops its tasks). `false` when there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, SwarmError> {
        match self.docker.delete_service(name).await {
            Ok(()) => {
                tracing::info!(service = %name, "service removed");
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The services `owner` owns, so that a restarted server adopts them
    /// (and removes those whose route is gone) instead of making new ones.
    pub async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedService>, SwarmError> {
        let options = ListServicesOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{}={owner}", labels::OWNER)],
            )])),
            status: Some(true),
        };
        let services = self.docker.list_services(Some(options)).await?;
        let mut owned: Vec<OwnedService> = services
            .into_iter()
            .filter_map(|s| {
                let spec = s.spec.unwrap_or_default();
                let labels_of = spec.labels.clone().unwrap_or_default();
                // The engine filtered already; checked again so that a
                // filter the engine ignored never hands over someone else's.
                if labels_of.get(labels::OWNER).map(String::as_str) != Some(owner) {
                    return None;
                }
                let label = |key: &str| labels_of.get(key).cloned().unwrap_or_default();
                Some(OwnedService {
                    name: spec.name.clone().unwrap_or_default(),
                    id: s.id.unwrap_or_default(),
                    app: label(labels::APP),
                    path: label(labels::PATH),
                    spec_hash: label(labels::SPEC),
                    port: label(labels::PORT).parse().ok(),
                    replicas: spec::replicas(&spec),
                    running: s
                        .service_status
                        .and_then(|st| st.running_tasks)
                        .unwrap_or(0),
                    version: s.version.and_then(|v| v.index).unwrap_or(0),
                    image: spec
                        .task_template
                        .as_ref()
                        .and_then(|t| t.container_spec.as_ref())
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default(),
                    update_state: s
                        .update_status
                        .and_then(|u| u.state)
                        .map(|state| state.to_string())
                        .filter(|state| !state.is_empty()),
                })
            })
            .collect();
        owned.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(owned)
    }

    /// The watchdog key of a service as its spec holds it now: what a node
    /// reads again when a watchdog refused the key it had.
    pub async fn service_key(&self, name: &str) -> Result<Option<WatchdogKey>, SwarmError> {
        let service = self
            .inspect(name)
            .await?
            .ok_or_else(|| SwarmError::NotFound(name.to_string()))?;
        Ok(key_of(&service.spec.unwrap_or_default()))
    }

    /// The CPUs of the Swarm's smallest ready node, in billionths: the most a
    /// task's CPU cap may name for the task to start on any node. `None`
    /// when no node says.
    async fn smallest_node_nano_cpus(&self) -> Result<Option<i64>, SwarmError> {
        let nodes = self.docker.list_nodes(None::<ListNodesOptions>).await?;
        Ok(nodes
            .iter()
            .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
            .filter_map(|n| n.description.as_ref()?.resources.as_ref()?.nano_cpus)
            .filter(|cpus| *cpus > 0)
            .min())
    }

    /// A service by name, `None` when there is none.
    pub(crate) async fn inspect(&self, name: &str) -> Result<Option<Service>, SwarmError> {
        match self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
        {
            Ok(service) => Ok(Some(service)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The watchdog key in a service spec's environment.
fn key_of(spec: &bollard::models::ServiceSpec) -> Option<WatchdogKey> {
    let env = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.env.as_ref())?;
    WatchdogKey::from_env(env)
}

fn new_key() -> Result<WatchdogKey, SwarmError> {
    WatchdogKey::generate().map_err(|e| SwarmError::Key(e.to_string()))
}

fn check_owner(service: &Service, name: &str, owner: &str) -> Result<(), SwarmError> {
    let found = service
        .spec
        .as_ref()
        .and_then(|s| s.labels.as_ref())
        .and_then(|l| l.get(labels::OWNER))
        .cloned();
    if found.as_deref() == Some(owner) {
        Ok(())
    } else {
        Err(SwarmError::NotOwned {
            name: name.to_string(),
            owner: owner.to_string(),
            found,
        })
    }
}

/// An update of exactly the version we read: Swarm refuses it when the
/// service changed since, instead of overwriting that change.
pub(crate) fn update_options(
    service: &Service,
    name: &str,
) -> Result<UpdateServiceOptions, SwarmError> {
    let index = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    // bollard sends the version as an i32; an index beyond it would take
    // two billion changes of the cluster.
    let version = i32::try_from(index).map_err(|_| {
        SwarmError::Invalid(format!(
            "service {name}: version index {index} is beyond what the client can send"
        ))
    })?;
    Ok(UpdateServiceOptions {
        version,
        ..Default::default()
    })
}
