//! What a route's service runs, and keeping it current: the service image
//! prepared from the route's image (derived when that is a plain function
//! image, reused while the source is the same image), services moved to a
//! new derived image when their source image is rebuilt (the engine's one
//! follower of image events tells), and derived images no service runs
//! any more removed. With a registry configured (FERRITE_SERVICE_REGISTRY),
//! the service image is pushed there and the service names it by digest,
//! so that any node of the Swarm can pull it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ferrite_engine::{Credentials, ImageMoved};
use ferrite_model::Route;
use ferrite_swarm::derived::{self, Derive, Prepared};
use ferrite_swarm::registry::ServiceRegistry;
use ferrite_swarm::SwarmError;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{ServiceSettings, Services};

/// The registry of `settings`, with the credentials DOCKER_AUTH (or the
/// docker config file) holds for its host.
pub(super) fn registry(
    settings: &ServiceSettings,
    docker_auth: Option<&str>,
) -> Result<Option<ServiceRegistry>, SwarmError> {
    let Some(address) = settings.registry.clone() else {
        return Ok(None);
    };
    let credentials = Credentials::load(docker_auth)?.for_image(&format!("{address}/x"));
    if credentials.is_none() {
        tracing::info!(registry = %address, "no credentials for the service image registry: pushing and pulling without");
    }
    Ok(Some(ServiceRegistry {
        address,
        credentials,
    }))
}

/// How often unused derived images that could not be removed (their old
/// tasks' containers still there) are tried again; nothing is asked of
/// the engine when none are left.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl Services {
    /// The image `route`'s service runs (building it when needed).
    /// Derives are made one at a time (the caller holds `changing`), so two
    /// routes of one source build it once: the second finds it.
    pub(super) async fn prepare(&self, route: &Route) -> Result<Prepared, SwarmError> {
        let derive = Derive {
            source: &route.image,
            format: route.format.as_str(),
            watchdog_image: &self.settings.watchdog_image,
            owner: &self.settings.owner,
        };
        let mut prepared = derived::prepare(self.swarm.docker(), &derive).await?;
        if prepared.built {
            tracing::info!(app = %route.app_name, path = %route.path, source = %route.image, image = %prepared.image, "service image derived from the route's image");
        }
        // Pushed at every change and adoption: a push of layers the
        // registry holds already is a few requests, and one that failed
        // before is tried again.
        if let Some(registry) = &self.registry {
            prepared.image = registry.push(self.swarm.docker(), &prepared.image).await?;
        }
        Ok(prepared)
    }

    /// Follow the images the managed services are made from, so that a
    /// rebuilt one moves its services (see [`Services::follow_moves`]).
    pub(super) fn follow_sources(&self) {
        let sources: HashSet<String> = self.managed().values().map(|m| m.image.clone()).collect();
        self.engine.follow_images(sources);
    }

    /// Remove the derived images no managed service runs (bounded work per
    /// pass). Only once every stored route was taken up at start, so that
    /// an image of a route not managed yet is never taken for unused.
    pub(super) async fn remove_unused_images(&self) {
        if !self.adopted.load(Ordering::Acquire) {
            return;
        }
        let keep: HashSet<String> = self
            .managed()
            .values()
            .flat_map(|m| names_of(&m.run_image))
            .collect();
        match derived::remove_unused(self.swarm.docker(), &self.settings.owner, &keep).await {
            Ok(unused) => self.unused_left.store(unused.left > 0, Ordering::Release),
            Err(e) => tracing::warn!(error = %e, "cannot remove unused service images"),
        }
    }

    /// Move services to a new derived image as soon as their source image
    /// is rebuilt (the engine's image events), without waiting for a call;
    /// and remove the unused derived images a pass had to leave.
    pub(super) async fn follow_moves(self: Arc<Self>, cancel: CancellationToken) {
        let mut moves = self.engine.image_moves();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let moved = tokio::select! {
                () = cancel.cancelled() => return,
                moved = moves.recv() => moved,
                _ = sweep.tick() => {
                    if self.unused_left.load(Ordering::Acquire) {
                        let _changing = self.changing.lock().await;
                        self.remove_unused_images().await;
                    }
                    continue;
                }
            };
            match moved {
                Ok(ImageMoved { name, id }) => {
                    tracing::debug!(image = %name, image_id = %id, "a service route's image moved");
                }
                // Moves were missed: every service is checked below anyway.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
            self.renew_stale().await;
        }
    }

    /// Make every managed service whose source image is no longer the one
    /// it was made from match its route again (a new derived image, a
    /// rolling update).
    async fn renew_stale(&self) {
        let stale: Vec<(String, String)> = self
            .managed()
            .iter()
            .filter(|(_, m)| !self.engine.image_is_current(&m.image, &m.source_id))
            .map(|(key, _)| key.clone())
            .collect();
        for (app, path) in stale {
            let found = match self.store.get_app(&app).await {
                Ok(found) => self.store.get_route(&app, &path).await.map(|r| (found, r)),
                Err(e) => Err(e),
            };
            match found {
                Ok((app, route)) if route.service.is_some() => {
                    if let Err(e) = self.ensure(&app, &route).await {
                        tracing::warn!(app = %app.name, path = %route.path, error = %e, "cannot move the service to its rebuilt image");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(app, path, error = %e, "cannot load a service route whose image moved")
                }
            }
        }
    }
}

/// The names the engine may know the image a service runs by: a registry
/// reference `reg/x:t@sha256:d` is the pushed image `reg/x:t` on this node,
/// and `reg/x@sha256:d` where a task pulled it by digest.
fn names_of(run_image: &str) -> Vec<String> {
    match run_image.split_once('@') {
        Some((named, digest)) => {
            let last = named.rsplit('/').next().unwrap_or(named);
            let repo = match last.rsplit_once(':') {
                Some((_, tag)) => &named[..named.len() - tag.len() - 1],
                None => named,
            };
            vec![named.to_string(), format!("{repo}@{digest}")]
        }
        None => vec![run_image.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::names_of;

    #[test]
    fn a_registry_reference_is_known_by_its_tag_and_its_digest() {
        assert_eq!(names_of("ferrite/x-service:t"), vec!["ferrite/x-service:t"]);
        assert_eq!(
            names_of("127.0.0.1:5000/x-service:t@sha256:ab"),
            vec![
                "127.0.0.1:5000/x-service:t",
                "127.0.0.1:5000/x-service@sha256:ab"
            ]
        );
    }
}
