//! One autoscaling decision per service however many nodes serve it. Every
//! tick each node publishes, per service, the average in flight it measured
//! over the last tick; one node at a time holds the autoscaler's lease and
//! scales every service from the sum of the fresh shares, exactly as a
//! single node would from all the load, and publishes its decisions for the
//! others to show. Through the queue's Redis, or the store's PostgreSQL
//! without one ([`ferrite_queue::shared`]); a node without either (SQLite:
//! one node) decides alone, as before.
//!
//! Nodes that do not hold the lease still feed the sum to their own
//! autoscaler (with the holder's replicas as the current ones), never
//! applying what it says: the node that takes the lease over has the same
//! windows and panic as the holder had, so its first decision is the one
//! the holder would have made.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrite_model::Millis;
use ferrite_queue::shared::{Loads, Shared};
use ferrite_swarm::WatchdogKey;
use serde::{Deserialize, Serialize};

use super::autoscale::{Cause, Decision};
use super::{Control, Managed, Services};

/// A node's published load counts this long: three ticks, so a node that
/// stops publishing is left out of the sum within three seconds and a
/// late tick does not drop its share.
pub(super) const LOAD_TTL: Duration = Duration::from_secs(3);
/// The lease's time to live: a holder that dies costs at most this long
/// without decisions (replicas stay as they are meanwhile).
pub(super) const LEASE_TTL: Duration = Duration::from_secs(5);
/// Between publishing its load and reading the others': every node
/// publishes at the start of a second by its clock, so half a second later
/// the others' loads of the same second are there (clocks kept within a
/// fraction of a second, as NTP does).
const READ_AFTER: Duration = Duration::from_millis(500);

/// Until the next whole second of the system clock: nodes sample the same
/// seconds, so the shares they sum cover the same interval (a client moving
/// from one node to the other is counted once, not in both).
pub(super) fn to_next_second() -> Duration {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(1) - Duration::from_nanos(u64::from(since_epoch.subsec_nanos()))
}

/// This node's view of what the nodes share.
pub(crate) struct SharedLoad {
    shared: Shared,
    node: String,
    /// The holder seen at the last tick.
    holder: Mutex<Option<String>>,
    /// The last exchange failed: logged once, not every tick.
    broken: AtomicBool,
}

/// What one tick learned from the other nodes.
pub(super) struct Round {
    /// This node holds the lease (by its own clock): it scales.
    pub decides: bool,
    /// The lease just came to this node.
    pub taken: bool,
    pub holder: Option<String>,
    /// The node's id, to tell its own share from the others'.
    node: String,
    /// Every node's fresh load; `None` when this node decides alone.
    loads: Option<Loads>,
    /// The holder's decisions, by service, on the other nodes.
    decisions: BTreeMap<String, Published>,
}

/// A service's load as this node last saw it, for `GET /v1/services`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Share {
    pub holder: Option<String>,
    pub decides: bool,
    /// This node's average in flight over the last tick.
    pub node: f64,
    /// The sum over every node publishing.
    pub total: f64,
    /// How many nodes published a share (this one included).
    pub nodes: usize,
}

/// The holder's decision about one service, as the others read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Published {
    /// Replicas the holder asked of Swarm.
    pub replicas: u32,
    pub wanted: u32,
    pub reason: String,
    pub cause: String,
    pub stable: f64,
    pub panic: f64,
    pub panicking: bool,
    /// The last decision that changed the replicas: replicas, reason, when.
    pub last_change: Option<(u32, String, i64)>,
    /// The service's watchdog key, for the nodes that cannot read it from
    /// the service (workers: [`super::relay`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<WatchdogKey>,
}

impl Published {
    pub(super) fn of(control: &Control, key: WatchdogKey) -> Option<Published> {
        let d = control.latest.as_ref()?;
        Some(Published {
            replicas: control.replicas,
            wanted: d.replicas,
            reason: d.reason.clone(),
            cause: d.cause.as_str().to_string(),
            stable: d.stable_concurrency,
            panic: d.panic_concurrency,
            panicking: d.panicking,
            last_change: control
                .last_change
                .as_ref()
                .map(|(d, at)| (d.replicas, d.reason.clone(), at.0)),
            key: Some(key),
        })
    }

    /// Show the holder's decision here as this node's own.
    pub(super) fn apply(&self, control: &mut Control) {
        control.replicas = self.replicas;
        let decision = |replicas: u32, reason: &str| Decision {
            replicas,
            reason: reason.to_string(),
            cause: Cause::parse(&self.cause).unwrap_or(Cause::Demand),
            stable_concurrency: self.stable,
            panic_concurrency: self.panic,
            panicking: self.panicking,
        };
        control.latest = Some(decision(self.wanted, &self.reason));
        control.last_change = self
            .last_change
            .as_ref()
            .map(|(replicas, reason, at)| (decision(*replicas, reason), Millis(*at)));
    }
}

/// The sum of `shares` (node -> average) with `own` as `node`'s share
/// (just measured: fresher than what the server holds of it), and how many
/// nodes it sums.
pub(super) fn total(shares: Option<&BTreeMap<String, f64>>, node: &str, own: f64) -> (f64, usize) {
    let others = shares
        .into_iter()
        .flatten()
        .filter(|(n, v)| n.as_str() != node && v.is_finite() && **v >= 0.0);
    others.fold((own, 1), |(sum, n), (_, v)| (sum + v, n + 1))
}

impl Round {
    /// A node that shares nothing: it decides from its own load.
    pub(super) fn alone() -> Round {
        Round {
            decides: true,
            taken: false,
            holder: None,
            node: String::new(),
            loads: None,
            decisions: BTreeMap::new(),
        }
    }

    /// The load of `service` to decide from, given this node's `own`.
    pub(super) fn share(&self, service: &str, own: f64) -> Share {
        let (total, nodes) = match &self.loads {
            Some(loads) => total(loads.get(service), &self.node, own),
            None => (own, 1),
        };
        Share {
            holder: self.holder.clone(),
            decides: self.decides,
            node: own,
            total,
            nodes,
        }
    }

    /// The services some node published a load of.
    pub(super) fn services(&self) -> impl Iterator<Item = &String> {
        self.loads.iter().flat_map(|loads| loads.keys())
    }

    /// The holder's decision about `service`, on a node that does not hold
    /// the lease.
    pub(super) fn published(&self, service: &str) -> Option<&Published> {
        self.decisions.get(service)
    }
}

impl SharedLoad {
    /// Share through the change bus's server (`url`), as `node`, among the
    /// nodes of installation `owner`.
    pub(super) async fn open(
        url: &str,
        owner: &str,
        node: &str,
        timeout: Duration,
    ) -> Result<SharedLoad, ferrite_queue::QueueError> {
        let shared = Shared::open(url, owner, node, timeout).await?;
        tracing::info!(
            server = shared.server(),
            node,
            "services are scaled by one node at a time, from every node's load"
        );
        Ok(SharedLoad {
            shared,
            node: node.to_string(),
            holder: Mutex::new(None),
            broken: AtomicBool::new(false),
        })
    }

    /// Publish this node's `loads` (service, average), take or renew the
    /// lease, and read the others' loads of the same second (and the holder's decisions). A
    /// round that failed decides nothing: `None`.
    pub(super) async fn exchange(&self, loads: &[(String, f64)]) -> Option<Round> {
        match self.try_exchange(loads).await {
            Ok(round) => {
                if self.broken.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        server = self.shared.server(),
                        "sharing services' load works again"
                    );
                }
                Some(round)
            }
            Err(e) => {
                if !self.broken.swap(true, Ordering::Relaxed) {
                    tracing::warn!(server = self.shared.server(), error = %e, "cannot share services' load: no node scales them until it can (a call still scales a service from zero)");
                }
                self.moved(None);
                None
            }
        }
    }

    async fn try_exchange(
        &self,
        loads: &[(String, f64)],
    ) -> Result<Round, ferrite_queue::QueueError> {
        self.shared.publish_loads(loads).await?;
        tokio::time::sleep(READ_AFTER).await;
        let lease = self.shared.lease(LEASE_TTL).await?;
        let all = self.shared.loads(LOAD_TTL).await?;
        // By this node's clock, counted from before it asked: past it, the
        // lease may be another's already.
        let decides = lease.held_until.is_some_and(|until| Instant::now() < until);
        let decisions = if decides {
            BTreeMap::new()
        } else {
            self.shared
                .decisions()
                .await?
                .into_iter()
                .filter_map(|(k, text)| Some((k, serde_json::from_str(&text).ok()?)))
                .collect()
        };
        let taken = self.moved(lease.holder.clone()) && decides;
        Ok(Round {
            decides,
            taken,
            holder: lease.holder,
            node: self.node.clone(),
            loads: Some(all),
            decisions,
        })
    }

    /// Whether this node held the lease at the last tick.
    pub(super) fn holds(&self) -> bool {
        let holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        holder.as_deref() == Some(self.node.as_str())
    }

    /// Note the holder seen now; whether it changed.
    fn moved(&self, holder: Option<String>) -> bool {
        let mut last = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if *last == holder {
            return false;
        }
        let was_mine = last.as_deref() == Some(self.node.as_str());
        let mine = holder.as_deref() == Some(self.node.as_str());
        if mine {
            tracing::info!(node = %self.node, previous = ?last, "this node took the autoscaler's lease: it scales the services");
            crate::metrics::autoscaler_lease("taken");
        } else if was_mine {
            tracing::warn!(node = %self.node, holder = ?holder, "this node lost the autoscaler's lease: it no longer scales the services");
            crate::metrics::autoscaler_lease("lost");
        } else {
            tracing::info!(holder = ?holder, previous = ?last, "the autoscaler's lease moved");
        }
        *last = holder;
        mine
    }

    /// Publish the holder's decisions, kept one lease long.
    pub(super) async fn publish(&self, decisions: &[(String, Published)]) {
        let texts: Vec<(String, String)> = decisions
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), serde_json::to_string(p).ok()?)))
            .collect();
        if let Err(e) = self.shared.publish_decisions(&texts, LEASE_TTL).await {
            tracing::debug!(error = %e, "cannot publish the autoscaler's decisions");
        }
    }

    /// Give the lease up (at shutdown), so another node takes it at once.
    pub(super) async fn release(&self) {
        if let Err(e) = self.shared.release().await {
            tracing::debug!(error = %e, "cannot give the autoscaler's lease up");
        }
    }
}

impl Services {
    /// On the holder: manage the services other nodes publish a load of
    /// and this node does not run yet (their route was made through another
    /// node and never called here), so that they are scaled too.
    pub(super) async fn take_up(&self, round: &Round) {
        let unknown: Vec<String> = {
            let managed = self.managed();
            round
                .services()
                .filter(|name| !managed.values().any(|m| &m.name == *name))
                .cloned()
                .collect()
        };
        if unknown.is_empty() {
            return;
        }
        let owned = match self.swarm.list_owned(&self.settings.owner).await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this installation's services");
                return;
            }
        };
        for service in owned.iter().filter(|s| unknown.contains(&s.name)) {
            let key = (service.app.clone(), service.path.clone());
            if self.failed().contains_key(&key) {
                // Its failure is shown; a change or a call tries again.
                continue;
            }
            let (app, route) = match (
                self.store.get_app(&service.app).await,
                self.store.get_route(&service.app, &service.path).await,
            ) {
                (Ok(app), Ok(route)) => (app, route),
                _ => continue,
            };
            if route.service.is_none() {
                continue;
            }
            tracing::info!(service = %service.name, app = %service.app, path = %service.path, "taking up a service other nodes serve, to scale it");
            if let Err(e) = self.ensure(&app, &route).await {
                tracing::warn!(service = %service.name, error = %e, "cannot take the service up");
            }
        }
    }

    /// The lease just came to this node: read the replicas Swarm has, which
    /// another node (or activations anywhere) set.
    pub(super) async fn read_replicas(&self) {
        let owned = match self.swarm.list_owned(&self.settings.owner).await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the services' replicas");
                return;
            }
        };
        let managed: Vec<Arc<Managed>> = self.managed().values().cloned().collect();
        for m in managed {
            if let Some(service) = owned.iter().find(|s| s.name == m.name) {
                m.control().replicas = u32::try_from(service.replicas).unwrap_or(u32::MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::autoscale::{AutoscaleSettings, Autoscaler, Bounds};
    use super::*;

    fn shares(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn the_total_sums_every_node_with_this_one_as_just_measured() {
        let published = shares(&[("a", 4.0), ("b", 6.0)]);
        // a's published 4.0 is older than the 5.0 it just measured.
        assert_eq!(total(Some(&published), "a", 5.0), (11.0, 2));
        // A node not published yet counts itself.
        assert_eq!(total(Some(&published), "c", 1.0), (11.0, 3));
        assert_eq!(total(None, "a", 2.5), (2.5, 1));
        // Nonsense from the server is left out.
        let odd = shares(&[("b", f64::NAN), ("c", -1.0), ("d", 2.0)]);
        assert_eq!(total(Some(&odd), "a", 1.0), (3.0, 2));
    }

    fn scaler(t0: Instant) -> Autoscaler {
        Autoscaler::new(AutoscaleSettings::with_stable_window(60 * S), t0)
    }

    const S: Duration = Duration::from_secs(1);

    fn bounds() -> Bounds {
        Bounds {
            min: 1,
            max: 10,
            target: 10.0,
            scale_to_zero_after: 30 * S,
        }
    }

    #[test]
    fn the_summed_load_asks_what_one_node_with_all_of_it_would() {
        let t0 = Instant::now();
        let (mut summed, mut one, mut half) = (scaler(t0), scaler(t0), scaler(t0));
        let (mut r_summed, mut r_one, mut r_half) = (2, 2, 2);
        for i in 1..=120 {
            let now = t0 + i * S;
            // Two nodes with 17.5 in flight each; a's share as it just
            // measured it, b's as published.
            let published = shares(&[("a", 17.0), ("b", 17.5)]);
            let (sum, nodes) = total(Some(&published), "a", 17.5);
            assert_eq!(nodes, 2);
            summed.record(now, sum);
            one.record(now, 35.0);
            half.record(now, 17.5);
            r_summed = summed.decide(now, r_summed, &bounds()).replicas;
            r_one = one.decide(now, r_one, &bounds()).replicas;
            r_half = half.decide(now, r_half, &bounds()).replicas;
        }
        assert_eq!((r_summed, r_one, r_half), (4, 4, 2));
    }

    #[test]
    fn a_node_taking_the_lease_over_decides_as_the_holder_would_have() {
        // Both nodes feed the same totals to their autoscaler, the other
        // with the holder's replicas as the current ones.
        let t0 = Instant::now();
        let (mut holder, mut other) = (scaler(t0), scaler(t0));
        let load = |i: u32| match i {
            0..30 => 15.0,
            30..33 => 80.0,
            _ => 20.0,
        };
        let mut replicas = 2;
        for i in 1..=200 {
            let now = t0 + i * S;
            holder.record(now, load(i));
            other.record(now, load(i));
            // From 41 s on the holder is dead (in the burst's panic), and
            // the other decides: as the holder would have.
            let d = other.decide(now, replicas, &bounds());
            assert_eq!(holder.decide(now, replicas, &bounds()), d, "at {i} s");
            if i == 41 {
                // A node starting afresh would forget the panic and scale
                // down at once.
                let mut fresh = scaler(now);
                fresh.record(now, load(i));
                let f = fresh.decide(now, replicas, &bounds());
                assert!(d.panicking && !f.panicking, "{d:?} {f:?}");
                assert!(f.replicas < d.replicas, "{d:?} {f:?}");
            }
            replicas = d.replicas;
        }
        assert_eq!(replicas, 2);
    }

    #[test]
    fn a_round_alone_decides_from_this_node_only() {
        let round = Round::alone();
        assert!(round.decides);
        let share = round.share("svc", 3.0);
        assert_eq!((share.total, share.nodes), (3.0, 1));
    }

    #[test]
    fn the_holders_decision_reads_back_as_it_was_made() {
        let t0 = Instant::now();
        let decision = Decision {
            replicas: 4,
            reason: "stable: 35.0 in flight".to_string(),
            cause: Cause::Demand,
            stable_concurrency: 35.0,
            panic_concurrency: 38.0,
            panicking: false,
        };
        let holder = Control {
            autoscaler: super::super::autoscale::Autoscaler::new(
                super::super::autoscale::AutoscaleSettings::with_stable_window(
                    Duration::from_secs(60),
                ),
                t0,
            ),
            replicas: 4,
            last_change: Some((decision.clone(), Millis(1_700_000_000_000))),
            latest: Some(decision.clone()),
            share: None,
        };
        let published =
            Published::of(&holder, WatchdogKey::generate().unwrap()).expect("a decision");
        let text = serde_json::to_string(&published).unwrap();
        let mut other = Control {
            autoscaler: super::super::autoscale::Autoscaler::new(
                super::super::autoscale::AutoscaleSettings::with_stable_window(
                    Duration::from_secs(60),
                ),
                t0,
            ),
            replicas: 1,
            last_change: None,
            latest: None,
            share: None,
        };
        serde_json::from_str::<Published>(&text)
            .unwrap()
            .apply(&mut other);
        assert_eq!(other.replicas, 4);
        assert_eq!(other.latest, Some(decision.clone()));
        assert_eq!(other.last_change, holder.last_change);
        // The key travels, and is shown nowhere it could be logged.
        let back: Published = serde_json::from_str(&text).unwrap();
        assert_eq!(back.key, published.key);
        assert!(!format!("{back:?}").contains(published.key.as_ref().unwrap().expose()));
    }
}
