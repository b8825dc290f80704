//! Calls a route's service cannot take yet. While a service has no ready
//! task (at zero replicas, or its first task starting), a sync call to it
//! runs on this node instead, in a container of the route's own image by
//! the route's format, as a route without a service would (the executor's
//! cold or hot arm), and the service is scaled up beside it; once the
//! service has a ready task, calls go to it. Swarm takes the better part
//! of a second to place and start a task (docs/benchmarks.md), a container
//! of an image the node has a fraction of that, and none at all when one
//! is kept ready as a standby.
//!
//! Only routes whose image is a plain function image: the node made the
//! service's image from it, so it has it, and it runs here exactly as it
//! would in a container of its own. An image that is a service image
//! already (it serves HTTP itself) runs only as the service. Nor routes
//! with placement constraints: they say where the function may run, and
//! this node may not be such a place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_model::{Format, Route};

use super::meter::InFlight;
use super::{Managed, ServiceSettings, Services};

/// How long a standby is kept without being asked for again: a few ticks
/// of the autoscaler, which asks every tick while the route is at zero.
const STANDBY_FOR: Duration = Duration::from_secs(3);

/// A call running on this node for a route's service: counted among the
/// service's calls in flight while it runs, so that the autoscaler sees
/// the demand.
pub(crate) struct StandIn {
    managed: Arc<Managed>,
}

impl StandIn {
    /// Count the call among the service's (`ran_here`), and as in flight
    /// until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.managed
            .ran_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.managed.meter.enter()
    }
}

/// `route` as its service keeps it, when calls may run on this node while
/// the service has no ready task: the node runs them, the route's image is
/// not the one the tasks run as it is (`run_image` was derived from it),
/// and no constraint limits where it runs.
pub(super) fn local_route(
    settings: &ServiceSettings,
    route: &Route,
    run_image: &str,
) -> Option<Route> {
    let constrained = route
        .service
        .as_ref()
        .is_some_and(|spec| !spec.constraints.is_empty());
    (settings.stand_in && run_image != route.image && !constrained).then(|| route.clone())
}

impl Services {
    /// When `route`'s service has no ready task and a call may run on this
    /// node meanwhile: scale the service up (not waiting for it) and say
    /// so. `None` sends the call to the service, which waits for a task as
    /// before: a service not made yet, one moving to a rebuilt image, or a
    /// route that cannot run here.
    pub(crate) fn stand_in(self: &Arc<Self>, route: &Route) -> Option<StandIn> {
        let key = (route.app_name.clone(), route.path.clone());
        let managed = self.managed().get(&key).cloned()?;
        let local = managed.local.as_ref()?;
        let moving = managed.renewing.load(std::sync::atomic::Ordering::Acquire)
            || !self
                .engine
                .image_is_current(&route.image, &managed.source_id);
        if local.image != route.image
            || local.format != route.format
            || moving
            || !managed.addresses.borrow().is_empty()
        {
            return None;
        }
        let services = self.clone();
        let activating = managed.clone();
        self.tasks
            .spawn(async move { services.activate(&activating).await });
        tracing::debug!(service = %managed.name, app = %route.app_name, path = %route.path, "no ready task: the call runs on this node");
        Some(StandIn { managed })
    }

    /// Every tick: keep a container ready for each route at zero replicas
    /// whose calls run on this node meanwhile in a fresh container
    /// (`format: default`), at most `standby` routes (the first by service
    /// name, so that the same ones keep theirs from tick to tick).
    pub(super) fn keep_standbys(&self, managed: &[Arc<Managed>]) {
        if self.settings.standby == 0 {
            return;
        }
        let mut at_zero: Vec<&Arc<Managed>> = managed
            .iter()
            .filter(|m| {
                m.local
                    .as_ref()
                    .is_some_and(|r| r.format == Format::Default)
                    && m.control().replicas == 0
            })
            .collect();
        at_zero.sort_by(|a, b| a.name.cmp(&b.name));
        let until = Instant::now() + STANDBY_FOR;
        for m in at_zero.into_iter().take(self.settings.standby) {
            if let Some(route) = &m.local {
                self.engine.keep_standby(route, until);
            }
        }
    }
}
