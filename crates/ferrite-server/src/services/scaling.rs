//! The services' autoscaling loop: every tick each service's concurrency is
//! sampled and its replicas decided (the arithmetic is [`super::autoscale`]'s),
//! and a call to a service with no task scales it up at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_model::Millis;
use ferrite_swarm::SwarmError;
use tokio_util::sync::CancellationToken;

use super::autoscale::{Cause, Decision};
use super::shared_load::{self, Published, Round};
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
    /// and scale those whose decision changed them. With load shared
    /// between nodes, the decision is made from every node's load, and
    /// applied only by the node that holds the lease (`shared_load`).
    pub(super) async fn autoscale(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = async {
                match &self.shared {
                    Some(_) => tokio::time::sleep(shared_load::to_next_second()).await,
                    None => {
                        tick.tick().await;
                    }
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => {
                    if let Some(shared) = &self.shared {
                        shared.release().await;
                    }
                    return;
                }
                _ = next => {}
            }
            let now = Instant::now();
            let all: Vec<(Arc<Managed>, f64)> = self
                .managed()
                .values()
                .map(|m| (m.clone(), m.meter.take_average(now)))
                .collect();
            // This node's own business, whoever decides (and before the
            // exchange, which may skip the rest of the round).
            let managed: Vec<Arc<Managed>> = all.iter().map(|(m, _)| m.clone()).collect();
            self.keep_standbys(&managed);
            let round = match &self.shared {
                Some(shared) => {
                    let loads: Vec<(String, f64)> =
                        all.iter().map(|(m, a)| (m.name.clone(), *a)).collect();
                    match shared.exchange(&loads).await {
                        Some(round) => round,
                        // Nobody knows the whole load: replicas stay.
                        None => continue,
                    }
                }
                None => Round::alone(),
            };
            if round.taken {
                self.read_replicas().await;
            }
            if round.decides && self.shared.is_some() {
                self.take_up(&round).await;
            }
            let mut published = Vec::new();
            for (managed, average) in all {
                let share = round.share(&managed.name, average);
                let (decision, current) = {
                    let mut control = managed.control();
                    if !round.decides {
                        if let Some(holders) = round.published(&managed.name) {
                            holders.apply(&mut control);
                        }
                    }
                    control.autoscaler.record(now, share.total);
                    control.share = Some(share);
                    let current = control.replicas;
                    let bounds = managed.bounds();
                    let decision = control.autoscaler.decide(now, current, &bounds);
                    if round.decides {
                        control.latest = Some(decision.clone());
                    }
                    (decision, current)
                };
                if !round.decides {
                    // Kept in step with the holder, never applied.
                    continue;
                }
                let wanted = decision.replicas;
                if wanted != current {
                    self.scale(&managed, current, decision).await;
                }
                let running = managed.addresses.borrow().len();
                crate::metrics::service_replicas(&managed.app, &managed.path, wanted, running);
                let key = managed.key();
                if let Some(p) = Published::of(&managed.control(), key) {
                    published.push((managed.name.clone(), p));
                }
            }
            if let (Some(shared), true) = (&self.shared, round.decides) {
                shared.publish(&published).await;
            }
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
