//! Without a registry for service images (FERRITE_SERVICE_REGISTRY), an
//! image this node derived is on this node only: on a Swarm of several
//! nodes, a task placed on another one fails with "No such image". Those
//! nodes are found from the tasks' errors, shown in `GET /v1/services`
//! (`missing_image_on`) and logged, so that the operator knows what to do
//! (configure a registry, or load the image there). A single-node Swarm,
//! or one with a registry, is never asked.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Managed, Services};

/// How often the tasks of every managed service are read for the error.
const LOOK_EVERY: Duration = Duration::from_secs(30);

impl Services {
    pub(super) async fn follow_missing_images(self: Arc<Self>, cancel: CancellationToken) {
        if self.registry.is_some() {
            return;
        }
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            match self.swarm.node_count().await {
                Ok(count) if count > 1 => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list the Swarm's nodes");
                    continue;
                }
            }
            let managed: Vec<Arc<Managed>> = self.managed().values().cloned().collect();
            for m in managed {
                match self.swarm.nodes_lacking_image(&m.name, &m.run_image).await {
                    Ok(lacking) => {
                        let mut missing = m.missing_on();
                        if !lacking.is_empty() && *missing != lacking {
                            tracing::warn!(service = %m.name, app = %m.app, path = %m.path, image = %m.run_image, nodes = ?lacking, "these Swarm nodes lack the service's image, which is on no registry: set FERRITE_SERVICE_REGISTRY so that every node pulls it, or load it on them");
                        }
                        *missing = lacking;
                    }
                    Err(e) => {
                        tracing::debug!(service = %m.name, error = %e, "cannot read the service's tasks")
                    }
                }
            }
        }
    }
}
