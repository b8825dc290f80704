//! The overlay network the services' tasks join, and Ferrite with them:
//! task addresses are only reachable on it.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Network, NetworkCreateRequest};
use bollard::query_parameters::InspectNetworkOptions;

use super::error::{is_conflict, is_not_found};
use super::{Swarm, SwarmError};

impl Swarm {
    /// Create the attachable, swarm-scoped overlay network `name` (labelled
    /// as Ferrite's, plus `labels`) unless it exists; returns its id. An
    /// existing network of another kind is refused: services could not be
    /// reached on it.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, SwarmError> {
        if let Some(network) = self.inspect_network(name).await? {
            return existing(name, network);
        }
        let mut all_labels: HashMap<String, String> = labels.clone().into_iter().collect();
        all_labels.insert(ferrite_engine::labels::MANAGED.into(), "true".into());
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            // Standalone containers may join too: Ferrite itself when it
            // runs as a plain container next to the services.
            attachable: Some(true),
            labels: Some(all_labels),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(created) => {
                tracing::info!(network = %name, id = %created.id, "overlay network created");
                Ok(created.id)
            }
            // Created by another node meanwhile.
            Err(e) if is_conflict(&e) => match self.inspect_network(name).await? {
                Some(network) => existing(name, network),
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a network; `false` when there was none. Fails while tasks or
    /// containers are still attached to it.
    pub async fn remove_network(&self, name: &str) -> Result<bool, SwarmError> {
        match self.docker.remove_network(name).await {
            Ok(()) => {
                tracing::info!(network = %name, "network removed");
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn inspect_network(&self, name: &str) -> Result<Option<Network>, SwarmError> {
        let options = InspectNetworkOptions {
            verbose: false,
            scope: Some("swarm".into()),
        };
        match self.docker.inspect_network(name, Some(options)).await {
            Ok(network) => Ok(Some(network)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The id of an existing network, if services can use it.
fn existing(name: &str, network: Network) -> Result<String, SwarmError> {
    let overlay =
        network.driver.as_deref() == Some("overlay") && network.scope.as_deref() == Some("swarm");
    if !overlay {
        return Err(SwarmError::NetworkNotOverlay {
            name: name.to_string(),
            driver: network.driver,
            scope: network.scope,
        });
    }
    if network.attachable != Some(true) {
        tracing::warn!(network = %name, "network is not attachable: standalone containers (Ferrite in a plain container) cannot join it");
    }
    Ok(network.id.unwrap_or_default())
}
