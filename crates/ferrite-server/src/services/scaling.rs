//! The services' autoscaling loop: every tick each service's concurrency is
//! sampled and its replicas decided (the arithmetic is [`super::autoscale`]'s),
//! and a call to a service with no task scales it up at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_model::Millis;
use ferrite_swarm::SwarmError;
use tokio_util::sync::CancellationToken;

use super::autoscale::{Cause, Decision};
use super::{Managed, Services};

/// How often each service's concurrency is sampled and its replicas decided.
const TICK: Duration = Duration::from_secs(1);

impl Services {
    /// Set the replicas of `managed` from `from` to the decision's because
    /// of `decision`.
    async fn scale(&self, managed: &Managed, from: u32, decision: Decision) {
        let replicas = decision.replicas;
        match self.swarm.scale(&managed.name, u64::from(replicas)).await {
            Ok(()) => {
                tracing::info!(service = %managed.name, replicas, reason = %decision.reason, "scaled");
                self.watcher.changed(&managed.name);
                let mut control = managed.control();
                crate::metrics::autoscaler_decision(
                    &managed.app,
                    &managed.path,
                    from,
                    replicas,
                    decision.cause.as_str(),
                );
                control.replicas = replicas;
                control.last_change = Some((decision, Millis::now()));
            }
            Err(SwarmError::NotFound(_)) => {
                // Removed with its route through another node: stop managing it.
                tracing::info!(service = %managed.name, "service gone; no longer managed here");
                crate::metrics::service_replicas(&managed.app, &managed.path, 0, 0);
                self.managed()
                    .remove(&(managed.app.clone(), managed.path.clone()));
                self.watcher.unwatch(&managed.name);
            }
            Err(e) => {
                tracing::warn!(service = %managed.name, replicas, error = %e, "cannot scale");
            }
        }
    }

    /// Every tick: sample each service's concurrency, decide its replicas,
    /// and scale those whose decision changed them.
    pub(super) async fn autoscale(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let all: Vec<Arc<Managed>> = self.managed().values().cloned().collect();
            let now = Instant::now();
            for managed in &all {
                let average = managed.meter.take_average(now);
                let (decision, current) = {
                    let mut control = managed.control();
                    control.autoscaler.record(now, average);
                    let current = control.replicas;
                    let bounds = managed.bounds();
                    let decision = control.autoscaler.decide(now, current, &bounds);
                    control.latest = Some(decision.clone());
                    (decision, current)
                };
                let wanted = decision.replicas;
                if wanted != current {
                    self.scale(managed, current, decision).await;
                }
                let running = managed.addresses.borrow().len();
                crate::metrics::service_replicas(&managed.app, &managed.path, wanted, running);
            }
            self.keep_standbys(&all);
        }
    }

    /// A call arrived for a service with no task: scale it up now rather
    /// than at the next tick. Only the first such call asks Swarm.
    pub(super) async fn activate(&self, managed: &Managed) {
        let decision = {
            let mut control = managed.control();
            control.autoscaler.note_demand(Instant::now());
            if control.replicas > 0 {
                None
            } else {
                let replicas = managed.spec.min_replicas.max(1);
                // Claimed before Swarm answers, so concurrent calls wait
                // for this scale instead of asking again.
                control.replicas = replicas;
                Some(Decision {
                    replicas,
                    reason: "a call arrived with no replica running".to_string(),
                    cause: Cause::Activation,
                    stable_concurrency: 0.0,
                    panic_concurrency: 0.0,
                    panicking: false,
                })
            }
        };
        match decision {
            Some(decision) => self.scale(managed, 0, decision).await,
            // Scaled already (or being scaled): make sure we look often.
            None => self.watcher.changed(&managed.name),
        }
    }
}
